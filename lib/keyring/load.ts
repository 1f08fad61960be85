// Resolution: environment variables in order (X, then X_FILE, with
// X_PREVIOUS appended), then the key file, then a freshly generated key file.
// The first source that yields a key wins; every candidate is recorded.
import { readFile, stat } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import envPaths from 'env-paths'
import { errors } from '../errors.ts'
import { fingerprint } from '../digest.ts'
import { decodeMaterial, decodeSecret } from './format.ts'
import { createKeyFile, directoryWarnings, formatMode, ioError, readKeyFile } from './key-file.ts'

export const DEFAULT_APP_NAME = 'fastify-session-suite'
export const DEFAULT_ENV_VARS = ['SESSION_SECRET_KEY']

export interface KeyringOptions {
  appName?: string
  envVars?: string[]
  keyFile?: string
  env?: Record<string, string | undefined>
  /** false: report a missing key file instead of creating one (the CLI's `check`) */
  create?: boolean
}

export interface KeyringInfo {
  /** `env:NAME`, `env-file:NAME`, `file:PATH` or `generated:PATH` */
  source: string
  count: number
  /** first 8 hex characters of SHA-256 of the newest key */
  fingerprint: string
  bits: 256
  warnings: string[]
  file?: { path: string, mode: string }
  candidates: Array<{ source: string, status: string }>
}

export interface Keyring { info: KeyringInfo, keys: Buffer[] }

/** `<per-OS config dir>/<appName>/secret.key`, e.g. ~/.config/fastify-session-suite/secret.key on Linux. */
export function defaultKeyFile (appName = DEFAULT_APP_NAME): string {
  let config: string
  try {
    ({ config } = envPaths(appName, { suffix: '' }))
  } catch {
    // env-paths refuses a name that is not a plain file name (`..`, `a/b`), which
    // would put the key file outside the config folder.
    throw new errors.FSS_OPTIONS_INVALID('appName', 'must be a plain folder name, without `/`, `\\` or a lone `.` or `..`')
  }
  return join(config, 'secret.key')
}

type Candidate = KeyringInfo['candidates'][number]

interface EnvHit { source: string, keys: Buffer[], warnings: string[] }

const isSet = (v: string | undefined): v is string => v !== undefined && v.trim() !== ''

/**
 * Whether an X_FILE value may be repeated in messages. Operators paste the key
 * itself into X_FILE by mistake; base64 keys can start with '/', so only an
 * absolute path that no key encoding could produce is shown.
 */
function showablePath (path: string): boolean {
  return isAbsolute(path) && decodeMaterial(path.trim()) === undefined
}

async function readEnvFile (name: string, path: string, warnings: string[]): Promise<string> {
  try {
    // Docker and Kubernetes mount secrets as symlinks, often 0444/0644 and
    // root-owned: follow them and only warn, unlike our own key file.
    const st = await stat(path)
    if ((st.mode & 0o007) !== 0) warnings.push(`${name} points to ${path}, which others can read (mode ${formatMode(st.mode)})`)
    return await readFile(path, 'utf8')
  } catch (err) {
    if (showablePath(path)) throw ioError(`${path} (from ${name})`, err)
    const base = name.slice(0, -'_FILE'.length)
    throw new errors.FSS_KEY_FILE_IO(`named by ${name}`, `${String((err as NodeJS.ErrnoException).code)}; ${name} does not look like the absolute path of a file (its value is not shown: it may be a key). ` +
      `Set ${name} to the absolute path of the file holding the key, or put the key itself in ${base}`)
  }
}

async function fromEnv (name: string, env: Record<string, string | undefined>, candidates: Candidate[]): Promise<EnvHit | undefined> {
  const fileVar = `${name}_FILE`
  const prevVar = `${name}_PREVIOUS`
  const warnings: string[] = []
  let hit: EnvHit | undefined
  const value = env[name]
  if (isSet(value)) {
    hit = { source: `env:${name}`, keys: [decodeSecret(value, name)], warnings }
    candidates.push({ source: `env:${name}`, status: 'used' })
  } else {
    candidates.push({ source: `env:${name}`, status: value === undefined ? 'unset' : 'empty' })
  }
  const path = env[fileVar]
  if (!isSet(path)) {
    candidates.push({ source: `env-file:${fileVar}`, status: path === undefined ? 'unset' : 'empty' })
  } else if (hit !== undefined) {
    candidates.push({ source: `env-file:${fileVar}`, status: `ignored: env:${name} is set` })
    warnings.push(`both ${name} and ${fileVar} are set; ${name} wins`)
  } else {
    const text = await readEnvFile(fileVar, path, warnings)
    // A mounted secret may hold a keyring: one key per line, newest first.
    const lines = text.split('\n').filter((l) => l.trim() !== '')
    const source = `${fileVar} (${path})`
    if (lines.length === 0) throw new errors.FSS_SECRET_WEAK(source)
    hit = { source: `env-file:${fileVar}`, keys: lines.map((l, i) => decodeSecret(l, i === 0 ? source : `${source} line ${i + 1}`)), warnings }
    candidates.push({ source: `env-file:${fileVar}`, status: 'used' })
  }
  const previous = env[prevVar]
  if (isSet(previous)) {
    if (hit === undefined) {
      candidates.push({ source: `env:${prevVar}`, status: `ignored: neither ${name} nor ${fileVar} is set` })
    } else {
      const parts = previous.split(',').map((p) => p.trim()).filter((p) => p !== '')
      hit.keys.push(...parts.map((p, i) => decodeSecret(p, `${prevVar}[${i}]`)))
      candidates.push({ source: `env:${prevVar}`, status: `used: ${parts.length} older key(s)` })
    }
  }
  return hit
}

function info (source: string, keys: Buffer[], warnings: string[], candidates: Candidate[], file?: KeyringInfo['file']): KeyringInfo {
  return { source, count: keys.length, fingerprint: fingerprint(keys[0]), bits: 256, warnings, ...(file && { file }), candidates }
}

/** Resolves the keyring. Throws FSS_* errors that name the variable or file and the fix, never a key. */
export async function loadKeyring (opts: KeyringOptions = {}): Promise<Keyring> {
  const env = opts.env ?? process.env
  const candidates: Candidate[] = []
  for (const name of opts.envVars ?? DEFAULT_ENV_VARS) {
    const hit = await fromEnv(name, env, candidates)
    if (hit !== undefined) {
      return { info: info(hit.source, hit.keys, hit.warnings, candidates), keys: hit.keys }
    }
  }
  const path = resolve(opts.keyFile ?? defaultKeyFile(opts.appName))
  const existing = await readKeyFile(path)
  if (existing !== undefined) {
    candidates.push({ source: `file:${path}`, status: 'used' })
    const warnings = await directoryWarnings(path)
    return { info: info(`file:${path}`, existing.keys, warnings, candidates, { path, mode: existing.mode }), keys: existing.keys }
  }
  if (opts.create === false) {
    candidates.push({ source: `file:${path}`, status: 'missing' })
    throw new errors.FSS_KEY_FILE_IO(path, 'no key found in the environment and the file does not exist; start the app once to create it, or run `fastify-session-suite rotate`')
  }
  const made = await createKeyFile(path)
  // The loser of a start-up race reads the winner's file: for it the source is the file.
  const source = made.created ? `generated:${path}` : `file:${path}`
  candidates.push({ source: `file:${path}`, status: made.created ? 'missing: generated' : 'created by another process' })
  const warnings = await directoryWarnings(path)
  return { info: info(source, made.keys, warnings, candidates, { path, mode: made.mode }), keys: made.keys }
}
