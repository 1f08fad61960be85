// Shared test helpers: an app builder that closes in teardown, a log capture
// that sees every line pino writes, and the leak check every suite runs on it.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Env for a child process started with `node --import tsx`: tsx's source maps
 * do not reach tap's coverage, so such a child would report every line of
 * every file it loads as covered, masking real gaps in the merged report.
 * Children run for behaviour; coverage comes from in-process tests.
 */
export const NO_CHILD_COVERAGE = { _TAPJS_PROCESSINFO_COVERAGE_: '0' } as const

type Test = { teardown: (fn: () => unknown) => void, fail: (msg: string) => void, pass: (msg: string) => void }

export interface LogCapture {
  lines: string[]
  stream: Writable
  /** Fails the test when any captured line contains any of the secrets (raw or in the given encodings). */
  assertNoSecrets: (t: Test, secrets: Array<string | Buffer | undefined | null>) => void
}

export function captureLogs (): LogCapture {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      lines.push(chunk.toString())
      cb()
    }
  })
  return {
    lines,
    stream,
    assertNoSecrets (t, secrets) {
      const all = lines.join('\n')
      for (const forms of secrets.flatMap(secretForms)) {
        if (all.includes(forms)) {
          t.fail(`a secret (${forms.length} chars) appears in the captured logs`)
          return
        }
      }
      t.pass(`no secret in ${lines.length} captured log lines`)
    }
  }
}

/** A secret as it could appear in text: as is, hex, base64, base64url, URI-encoded. */
export function secretForms (secret: string | Buffer | undefined | null): string[] {
  if (secret === undefined || secret === null) return []
  const buf = typeof secret === 'string' ? Buffer.from(secret) : secret
  const forms = new Set<string>()
  if (typeof secret === 'string' && secret.length >= 8) {
    forms.add(secret)
    forms.add(encodeURIComponent(secret))
  }
  if (buf.length >= 8) {
    forms.add(buf.toString('hex'))
    forms.add(buf.toString('base64').replace(/=+$/, ''))
    forms.add(buf.toString('base64url'))
  }
  return [...forms].filter((f) => f.length >= 8)
}

export async function build (t: Test, opts: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(opts)
  t.teardown(() => app.close())
  return app
}

export async function tempDir (t: Test, prefix = 'fss-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface ChildResult { code: number | null, stdout: string, stderr: string }

/** Runs a TypeScript entry as a real process through tsx (no coverage: see NO_CHILD_COVERAGE) and collects its output. */
export async function runTsx (script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...env, ...NO_CHILD_COVERAGE }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += d })
  child.stderr.on('data', (d) => { stderr += d })
  // 'close' (not 'exit'): fires once the process has exited AND its output is fully read.
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}
