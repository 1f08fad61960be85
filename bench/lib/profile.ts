// `--profile`: runs one of the suite's servers (#4 token read, #7a counter)
// under `node --cpu-prof` for one load run and summarises where its CPU time
// went, by package and by function (self time). The .cpuprofile opens in
// Chrome DevTools.
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { repoRoot, startServer } from './children.ts'
import { login } from './throughput.ts'
import { runLoad } from './load.ts'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface CpuProfile { nodes: ProfileNode[], startTime: number, samples: number[], timeDeltas: number[] }

/** Where a frame's code lives: a package, a file of this repo, node internals, a builtin or the VM. */
function owner (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? '(v8: gc, program)' : '(native builtins)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]
  if (url.startsWith('node:')) return 'node core'
  if (url.startsWith('file://')) return relative(repoRoot, new URL(url).pathname)
  return url
}

/** Self time by owner and by function, counting only samples inside [fromUs, toUs] (the load run). */
export function summarise (profile: CpuProfile, fromUs: number, toUs: number, top = 12): { byOwner: Array<[string, number]>, byFunction: Array<[string, number]>, totalMs: number } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (at >= fromUs && at <= toUs) self.set(id, (self.get(id) ?? 0) + delta)
  })
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  for (const [id, us] of self) {
    const frame = (nodes.get(id) as ProfileNode).callFrame
    total += us
    // idle time is the server waiting for the load generator, not work
    if (frame.functionName === '(idle)') continue
    const where = owner(frame.url, frame.functionName)
    byOwner.set(where, (byOwner.get(where) ?? 0) + us)
    // tsx output is one line per module, so a line number there says nothing
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url === '' || frame.lineNumber === 0 ? '' : ':' + (frame.lineNumber + 1)}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, v / 1000])
  return { byOwner: sorted(byOwner), byFunction: sorted(byFunction), totalMs: total / 1000 }
}

export interface ProfileTarget { id: string, mode: string, path: string, what: string, duration: number, connections: number, log: (line: string) => void }

export async function profileRow ({ id, mode, path: route, what, duration, connections, log }: ProfileTarget): Promise<string[]> {
  const dir = join(repoRoot, 'bench', 'out', `profile-${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`)
  await mkdir(dir, { recursive: true })
  const started = await startServer('bench/servers/suite.ts', { env: { BENCH_MODE: mode }, profileDir: dir })
    .catch((err: Error) => ({ ok: false as const, reason: err.message }))
  if (!started.ok) return [`Profile of #${id}: n/a (${started.reason})`]
  const window = { from: 0, to: 0 }
  try {
    const cookie = await login(started.server.url, '/bench/login')
    // a warm-up first, so the summary shows steady state, not module loading and JIT
    const load = { url: started.server.url + route, connections, cookie, followCookies: true }
    await runLoad({ ...load, duration: 1 })
    window.from = (await started.server.stats()).monotonicUs
    const result = await runLoad({ ...load, duration })
    window.to = (await started.server.stats()).monotonicUs
    log(`profiled #${id}: ${Math.round(result.rps)} req/s under the profiler`)
  } finally {
    await started.server.stop()
  }
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) return [`Profile of #${id}: no .cpuprofile written in ${relative(repoRoot, dir)}`]
  const path = join(dir, file)
  log(`CPU profile written to ${path}`)
  const { byOwner, byFunction, totalMs } = summarise(JSON.parse(await readFile(path, 'utf8')) as CpuProfile, window.from, window.to)
  const pct = (ms: number): string => `${(100 * ms / totalMs).toFixed(1)} %`
  return [
    `## CPU profile of #${id} (${what}): ${duration} s of load after a 1 s warm-up`,
    '',
    `File: \`${relative(repoRoot, path)}\` (local only: bench/out/ is git-ignored; open it in Chrome DevTools → Performance). Self time during the measured load only, as a share of all its samples (idle counted in the total, not listed):`,
    '',
    '| where | self ms | share |',
    '|---|---:|---:|',
    ...byOwner.map(([k, ms]) => `| ${k} | ${ms.toFixed(0)} | ${pct(ms)} |`),
    '',
    '| function | self ms | share |',
    '|---|---:|---:|',
    ...byFunction.map(([k, ms]) => `| \`${k.replace(/\|/g, '\\|')}\` | ${ms.toFixed(0)} | ${pct(ms)} |`),
    ''
  ]
}
