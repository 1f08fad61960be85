// Rows 1–7: every server runs in its own process; after a warm-up each round
// measures every server once, in an order rotated per round, so that drift
// (thermal, a noisy neighbour, GC of the harness) hits all rows alike.
import { startServer, type ServerHandle } from './children.ts'
import { runLoad, mergeCookies, type LoadResult } from './load.ts'
import type { ThroughputCase } from './cases.ts'
import { mergeSlices } from './slices.ts'

export interface ThroughputSettings {
  warmup: number
  /** seconds per row and round, measured as `slices` equal parts */
  duration: number
  /**
   * Parts each row's time in a round is cut into, measured one row after the
   * other and summed (default 1): every row's figure then spans the whole
   * round, so a slow spell of the machine (the hypervisor taking CPU) falls
   * on every row of the round alike instead of on whichever row ran in it.
   */
  slices?: number
  rounds: number
  connections: number
  log: (line: string) => void
}

/** One round of one row: the load's figures and the server's CPU time per response. */
export interface Round extends LoadResult {
  /** µs of server CPU (user + system) per response: the work, whatever share of the cores the server got */
  cpuPerResponse: number
}

export interface Measured {
  spec: ThroughputCase
  /** set when the case could not run (a suite plugin not written yet) */
  unavailable?: string
  rounds: Round[]
  rps: number
  p99: number
  cookieBytes: number
  cookieCount: number
  non2xx: number
  errors: number
  responses: number
  withSetCookie: number
}

export function median (values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Logs in through the server's bench route and returns the Cookie header it set. */
export async function login (url: string, path: string): Promise<string> {
  const res = await fetch(url + path, { redirect: 'manual' })
  await res.arrayBuffer()
  if (res.status >= 400) throw new Error(`${path} answered ${res.status}`)
  const cookie = mergeCookies('', res.headers.getSetCookie())
  if (cookie === '') throw new Error(`${path} set no cookie`)
  return cookie
}

interface Running { spec: ThroughputCase, server?: ServerHandle, cookie?: string, unavailable?: string, rounds: Round[] }

export async function measureThroughput (cases: ThroughputCase[], settings: ThroughputSettings): Promise<Measured[]> {
  const running: Running[] = []
  try {
    // start one at a time: start-up is CPU heavy and the machine may have two cores
    for (const spec of cases) {
      // a suite part that is missing or broken makes its row n/a, not the run
      const started = await startServer(spec.server, { env: spec.env }).catch((err: Error) => ({ ok: false as const, reason: err.message }))
      if (!started.ok) {
        settings.log(`#${spec.id}: n/a (${started.reason})`)
        running.push({ spec, unavailable: started.reason, rounds: [] })
        continue
      }
      const entry: Running = { spec, server: started.server, rounds: [] }
      if (spec.login !== undefined) entry.cookie = await login(started.server.url, spec.login)
      running.push(entry)
    }
    for (const r of running) {
      if (r.spec.cookieFrom === undefined || r.server === undefined) continue
      const from = running.find((o) => o.spec.id === r.spec.cookieFrom)
      if (from?.cookie === undefined) {
        // the row that logs in was not picked (--only) or could not run
        settings.log(`#${r.spec.id}: n/a (needs #${r.spec.cookieFrom}'s cookie)`)
        await r.server.stop()
        delete r.server
        r.unavailable = `needs the cookie of #${r.spec.cookieFrom}, which was not measured`
      } else {
        r.cookie = from.cookie
      }
    }
    const active = running.filter((r) => r.server !== undefined)
    const load = (r: Running, duration: number): Promise<LoadResult> => runLoad({
      url: (r.server as ServerHandle).url + r.spec.path,
      duration,
      connections: settings.connections,
      cookie: r.cookie,
      followCookies: r.spec.followCookies
    })
    for (const r of active) {
      settings.log(`warm-up #${r.spec.id} (${settings.warmup} s)`)
      await load(r, settings.warmup)
    }
    const slices = settings.slices ?? 1
    for (let round = 0; round < settings.rounds; round++) {
      const order = active.map((_, i) => active[(i + round) % active.length])
      const parts = new Map<Running, Array<LoadResult & { cpuUs: number }>>(order.map((r) => [r, []]))
      for (let slice = 0; slice < slices; slice++) {
        for (const r of order) {
          const server = r.server as ServerHandle
          const before = await server.stats()
          const result = await load(r, settings.duration / slices)
          const after = await server.stats()
          parts.get(r)?.push({ ...result, cpuUs: after.cpuUs - before.cpuUs })
        }
      }
      for (const r of order) {
        const measured = mergeSlices(parts.get(r) ?? [])
        r.rounds.push(measured)
        settings.log(`round ${round + 1}/${settings.rounds} #${r.spec.id}: ${Math.round(measured.rps)} req/s, p99 ${measured.p99} ms, ${measured.cpuPerResponse.toFixed(1)} µs CPU/response`)
      }
    }
  } finally {
    await Promise.all(running.map((r) => r.server?.stop()))
  }
  return running.map(({ spec, unavailable, rounds, cookie }) => {
    const sum = (pick: (r: Round) => number): number => rounds.reduce((total, r) => total + pick(r), 0)
    return {
      spec,
      unavailable,
      rounds,
      rps: median(rounds.map((r) => r.rps)),
      p99: median(rounds.map((r) => r.p99)),
      cookieBytes: cookie?.length ?? 0,
      cookieCount: cookie === undefined ? 0 : cookie.split('; ').length,
      non2xx: sum((r) => r.non2xx),
      errors: sum((r) => r.errors),
      responses: sum((r) => r.responses),
      withSetCookie: sum((r) => r.withSetCookie)
    }
  })
}
