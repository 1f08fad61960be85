// Row 8, the refresh storm: N clients, each holding an expired token with its
// own refresh token, fire K requests each, all at once, at the suite backed by
// the real OAuth server. Single-flight means one token-endpoint call per
// distinct refresh token, however many requests carry it.
import { performance } from 'node:perf_hooks'
import { startServer } from './children.ts'
import { login, median } from './throughput.ts'
import { startOidcProvider } from './oidc.ts'
import type { Row } from './report.ts'

export interface StormSettings { clients: number, requestsPerClient: number, log: (line: string) => void }

const LABEL = 'refresh storm: expired tokens, all clients at once, real OAuth server'

export async function refreshStorm (settings: StormSettings): Promise<{ row: Row, extra: string[] }> {
  const target = 'exactly 1 call per refresh token'
  const provider = await startOidcProvider()
  const started = await startServer('bench/servers/suite.ts', { env: { BENCH_MODE: 'storm', BENCH_ISSUER: provider.issuer } })
    .catch((err: Error) => ({ ok: false as const, reason: err.message }))
  if (!started.ok) {
    await provider.stop()
    return { row: { id: '8', label: LABEL, comparisons: [{ measured: '', target }], notes: [], unavailable: started.reason }, extra: [] }
  }
  const { server } = started
  try {
    const cookies: string[] = []
    for (let i = 0; i < settings.clients; i++) cookies.push(await login(server.url, '/bench/login?expired=1'))
    settings.log(`storm: ${settings.clients} clients × ${settings.requestsPerClient} requests`)
    const latencies: number[] = []
    const statuses: Record<string, number> = {}
    const stormStart = performance.now()
    await Promise.all(cookies.flatMap((cookie) => Array.from({ length: settings.requestsPerClient }, async () => {
      const t0 = performance.now()
      const res = await fetch(`${server.url}/me`, { headers: { cookie } })
      await res.arrayBuffer()
      latencies.push(performance.now() - t0)
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
    })))
    const stormMs = performance.now() - stormStart
    const calls = [...provider.refreshCalls.values()]
    const total = calls.reduce((a, b) => a + b, 0)
    const exactlyOnce = calls.length === settings.clients && calls.every((c) => c === 1)
    const sorted = [...latencies].sort((a, b) => a - b)
    const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]
    const statusText = Object.entries(statuses).map(([s, n]) => `${n}× ${s}`).join(', ')
    return {
      row: {
        id: '8',
        label: LABEL,
        p99,
        comparisons: [{ measured: `${total} calls for ${calls.length} refresh tokens (max ${Math.max(0, ...calls)} per token)`, target, met: exactlyOnce }],
        notes: [`${settings.clients} clients × ${settings.requestsPerClient} requests`, `storm ${stormMs.toFixed(0)} ms, median ${median(latencies).toFixed(1)} ms`, statusText]
      },
      extra: [`Refresh storm: ${settings.clients} clients × ${settings.requestsPerClient} concurrent requests, ${total} token-endpoint refresh calls for ${settings.clients} distinct refresh tokens; responses ${statusText}; whole storm ${stormMs.toFixed(0)} ms.`]
    }
  } finally {
    await server.stop()
    await provider.stop()
  }
}
