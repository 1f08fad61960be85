// Row 9: time from `register` to `ready` for the suite (keyring + session),
// in a fresh process, for one key source (BENCH_KEY_SOURCE):
//   env       a key in an environment variable
//   file      an existing key file
//   generate  first start: no key anywhere, the file is generated
// The first registration in the process is the cold figure a deploy sees;
// the next BENCH_ITERATIONS ones are warm.
import Fastify from 'fastify'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { report, unavailable } from './ipc.ts'
import type { SessionSuiteOptions } from '../../index.ts'

const source = process.env.BENCH_KEY_SOURCE ?? 'env'
const iterations = Number(process.env.BENCH_ITERATIONS ?? 10)
const root = await import('../../index.ts').catch((err: Error) => err)
if (root instanceof Error) await unavailable(`index.ts does not load: ${root.message}`)
const sessionSuite = (root as typeof import('../../index.ts')).default

const dir = await mkdtemp(join(tmpdir(), 'fss-bench-startup-'))
const envKey = randomBytes(32).toString('base64url')
let generation = 0

function options (): SessionSuiteOptions {
  if (source === 'env') return { secret: { envVars: ['BENCH_SESSION_KEY'], env: { BENCH_SESSION_KEY: envKey } }, session: { secure: false }, health: false }
  // `file` reuses one path (created by an untimed start first); `generate` gets a new path each time
  const keyFile = source === 'file' ? join(dir, 'secret.key') : join(dir, `gen-${generation++}`, 'secret.key')
  return { secret: { envVars: [], env: {}, keyFile }, session: { secure: false }, health: false }
}

async function once (): Promise<number> {
  const app = Fastify({ logger: false })
  const opts = options()
  const t0 = performance.now()
  await app.register(sessionSuite, opts)
  await app.ready()
  const ms = performance.now() - t0
  await app.close()
  return ms
}

try {
  if (source === 'file') {
    // the file an earlier start would have left (one base64url key, 0600 in a
    // 0700 folder), written by hand so that no suite code runs before the cold start
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFile(join(dir, 'secret.key'), randomBytes(32).toString('base64url') + '\n', { mode: 0o600 })
  }
  const cold = await once()
  const warm: number[] = []
  for (let i = 0; i < iterations; i++) warm.push(await once())
  await rm(dir, { recursive: true, force: true })
  await report({ source, cold, warm })
} catch (err) {
  await rm(dir, { recursive: true, force: true })
  await unavailable(`start-up failed: ${(err as Error).message}`)
}
