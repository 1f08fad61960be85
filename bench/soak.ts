// `npm run soak -- --duration 60`: bounded full load on the app (the demo when
// it can run under the harness, else bench/servers/suite-app.ts) through the
// real OAuth provider: logins, reads, refreshes of short-lived tokens,
// logouts, tampered and oversize cookies. Reports requests, statuses, 5xx,
// lost sessions, server RSS over time and token-endpoint calls vs refreshes.
import { createServer } from 'node:net'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { parseCommandLine } from './lib/args.ts'
import { guardChildren, startServer } from './lib/children.ts'
import { startOidcProvider } from './lib/oidc.ts'
import { runClient, emptyStats, type ClientContext } from './lib/soak-client.ts'
import { soakReport, type RssSample } from './lib/soak-report.ts'

const USAGE = `Usage: npm run soak -- [options]

Bounded full load on the demo app through a real OAuth provider; reports statuses, 5xx, lost sessions,
server RSS over time and token-endpoint calls per refresh.

Options:
  --duration S         seconds of load (default 60)
  --users N            concurrent simulated users, at most 50 (default 20)
  --max-requests N     stop after this many requests (default 1000000)
  --token-lifetime S   access-token lifetime the provider issues, in seconds (default 6)
  --app demo|suite     demo: examples/demo-app.ts (default); suite: bench/servers/suite-app.ts
  --out FILE           also write the report to this file
  -h, --help           this text
`

const values = parseCommandLine(USAGE, {
  duration: { type: 'string', default: '60' },
  users: { type: 'string', default: '20' },
  'max-requests': { type: 'string', default: '1000000' },
  'token-lifetime': { type: 'string', default: '6' },
  app: { type: 'string', default: 'demo' },
  out: { type: 'string' }
})
const duration = Number(values.duration)
const users = Math.min(50, Number(values.users))
const maxRequests = Number(values['max-requests'])
const tokenLifetime = Number(values['token-lifetime'])

/** A free port on 127.0.0.1: the provider needs the callback URL before the app listens. */
async function freePort (): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  probe.close()
  await once(probe, 'close')
  return port
}

/** A seeded generator, so two soak runs send the same mix. */
function mulberry32 (seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function main (): Promise<void> {
  guardChildren()
  const provider = await startOidcProvider()
  provider.setTokenLifetime(tokenLifetime)
  const port = await freePort()
  const env = { PORT: String(port), BENCH_ISSUER: provider.issuer }
  // the demo turns its debug routes on, which the suite refuses in production
  let started = values.app === 'demo'
    ? await startServer('bench/servers/demo-app.ts', { env: { ...env, NODE_ENV: 'development' } }).catch((err: Error) => ({ ok: false as const, reason: err.message }))
    : { ok: false as const, reason: 'the suite-only app was asked for' }
  let appName = 'examples/demo-app.ts + GET /api/me'
  if (!started.ok) {
    console.error(`[soak] demo app: ${started.reason}; using bench/servers/suite-app.ts`)
    appName = 'bench/servers/suite-app.ts'
    started = await startServer('bench/servers/suite-app.ts', { env }).catch((err: Error) => ({ ok: false as const, reason: err.message }))
  }
  if (!started.ok) {
    console.log(`soak: n/a (${started.reason})`)
    await provider.stop()
    return
  }
  const { server } = started
  const log = (line: string): void => console.error(`[soak] ${line}`)
  log(`app: ${appName}`)
  log(`${users} users for ${duration} s (at most ${maxRequests} requests) against ${server.url}, tokens live ${tokenLifetime} s`)
  const stats = emptyStats()
  const startedAt = Date.now()
  const deadline = startedAt + duration * 1000
  const ctx: ClientContext = { appUrl: server.url, stats, go: () => Date.now() < deadline && stats.requests < maxRequests }
  const rss: RssSample[] = []
  const sample = async (): Promise<void> => {
    const s = await server.stats()
    rss.push({ t: (Date.now() - startedAt) / 1000, rss: s.rss })
  }
  await sample()
  // a missed sample (the server busy past the next tick) only thins the series
  const sampler = setInterval(() => { sample().catch(() => {}) }, 1000)
  try {
    const random = mulberry32(6)
    await Promise.all(Array.from({ length: users }, (_, i) => runClient(ctx, mulberry32(Math.floor(random() * 2 ** 31) + i))))
    clearInterval(sampler)
    await sample()
  } finally {
    clearInterval(sampler)
    await server.stop()
    await provider.stop()
  }
  const report = soakReport({ stats, rss, provider, elapsed: (Date.now() - startedAt) / 1000, users, tokenLifetime, app: appName, command: `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim() })
  console.log(report)
  if (values.out !== undefined) await writeFile(values.out, report + '\n')
}

await main()
