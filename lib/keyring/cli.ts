// The CLI's logic: keygen, rotate, check. Same code paths as the plugin
// (loadKeyring, readKeyFile, rotateKeyFile), so `check` passing means the app
// will start with the same key. bin/cli.ts only wires it to the process, so
// tests can run every branch in-process as well as through the real binary.
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { KEY_BYTES, encodeKey } from './format.ts'
import { loadKeyring, defaultKeyFile, DEFAULT_APP_NAME } from './load.ts'
import { rotateKeyFile } from './rotate.ts'

export const USAGE = `Usage: fastify-session-suite <command> [options]

Commands:
  keygen                         print a new random 32-byte key (base64url)
  rotate [--file P] [--keep N]   put a new key in front of the key file, keep N old ones (default 2)
  check  [--file P]              show where the key comes from, its fingerprint and any problem

Options:
  --file P      key file (default: <per-OS config dir>/<app>/secret.key)
  --app NAME    app name for the default key file (default: ${DEFAULT_APP_NAME})
  --env NAMES   comma-separated variables \`check\` reads before the file (default: SESSION_SECRET_KEY)
  --keep N      old keys to keep when rotating (default: 2)
`

export interface CliIO {
  /** where `check` reads the key variables (the default key file follows the process's XDG_CONFIG_HOME/HOME, as in the plugin) */
  env: Record<string, string | undefined>
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
}

type Out = (line: string) => void

async function check (file: string | undefined, app: string | undefined, envVars: string[], env: CliIO['env'], out: Out): Promise<void> {
  // With --file, only that file is checked; otherwise resolve exactly as the plugin does.
  const ring = await loadKeyring({ appName: app, keyFile: file, envVars: file === undefined ? envVars : [], env, create: false })
  const { info } = ring
  out(`source: ${info.source}`)
  out(`fingerprint: ${info.fingerprint}`)
  out(`keys: ${info.count}`)
  if (info.file !== undefined) out(`permissions: ${info.file.mode}`)
  for (const c of info.candidates) out(`candidate ${c.source}: ${c.status}`)
  for (const w of info.warnings) out(`warning: ${w}`)
  out('ok')
}

/** Runs one CLI invocation; resolves to the exit code (0 ok, 1 problem, 2 usage). */
export async function main (argv: string[], io: CliIO): Promise<number> {
  const out: Out = (line) => { io.stdout.write(line + '\n') }
  const err: Out = (line) => { io.stderr.write(line + '\n') }
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { file: { type: 'string' }, keep: { type: 'string' }, app: { type: 'string' }, env: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
    })
  } catch (e) {
    err((e as Error).message)
    err(USAGE)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    // Asked for: stdout, so `--help | less` works. Usage after a mistake goes to stderr.
    out(USAGE)
    return 0
  }
  const [command] = positionals
  const file = values.file === undefined ? undefined : resolve(values.file)
  try {
    switch (command) {
      case 'keygen':
        // The one place a key value is ever printed, on purpose: to stdout, for the operator.
        out(encodeKey(randomBytes(KEY_BYTES)))
        return 0
      case 'rotate': {
        // Number('') is 0, which would drop every old key: only plain digits count, anything else is rejected by rotateKeyFile.
        const keep = values.keep === undefined ? undefined : /^\d+$/.test(values.keep) ? Number(values.keep) : Number.NaN
        const r = await rotateKeyFile(file ?? defaultKeyFile(values.app), { keep })
        out(r.created ? `created ${r.path}` : `rotated ${r.path}`)
        out(`fingerprint: ${r.fingerprint}`)
        out(`keys: ${r.count}${r.dropped > 0 ? ` (dropped ${r.dropped} old)` : ''}`)
        out('restart the app to start sealing with the new key; old keys still open existing sessions')
        return 0
      }
      case 'check':
        await check(file, values.app, (values.env ?? 'SESSION_SECRET_KEY').split(',').filter(Boolean), io.env, out)
        return 0
      default:
        err(command === undefined ? 'missing command' : `unknown command: ${command}`)
        err(USAGE)
        return 2
    }
  } catch (e) {
    // Everything the keyring throws is FSS_* (or a Node fs error): all carry a code.
    // FSS_* messages name the file or variable and the fix, never a key.
    const error = e as Error & { code: string }
    err(`problem: ${error.code}: ${error.message}`)
    return 1
  }
}
