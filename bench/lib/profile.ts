// `--profile`: runs one of the suite's servers (#4 token read, #7a counter, …)
// under `node --cpu-prof` for one load run and summarises where its CPU time
// went, by package and by function (self time), and which of the suite's own
// functions the time passed through (total time, callees included). The
// .cpuprofile opens in Chrome DevTools.
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { findSourceMap } from 'node:module'
import { join, relative } from 'node:path'
import { repoRoot, startServer } from './children.ts'
import { login } from './throughput.ts'
import { runLoad } from './load.ts'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, hitCount?: number, children?: number[] }
type CallFrame = ProfileNode['callFrame']
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

/** The suite's own modules (bench servers are left out: importing one starts a server). */
const OWN = /^(lib|plugins|routes)\/.+\.ts$|^index\.ts$/

/** `file:line` in the .ts source for a frame of the suite's own code, else undefined. */
export type Locate = (frame: CallFrame) => string | undefined

/**
 * tsx compiles each module to one line, so a profile's line numbers say
 * nothing there. The harness runs under tsx too: importing the same module
 * here compiles it the same way and registers its source map, which turns the
 * frame's column back into a line of the .ts file.
 */
export async function ownSourceLocator (profile: CpuProfile): Promise<Locate> {
  const maps = new Map<string, ReturnType<typeof findSourceMap>>()
  for (const { callFrame: { url } } of profile.nodes) {
    if (maps.has(url) || !url.startsWith('file://') || !OWN.test(relative(repoRoot, new URL(url).pathname))) continue
    await import(url).catch(() => undefined)
    maps.set(url, findSourceMap(url))
  }
  return (frame) => {
    const entry = maps.get(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
    if (entry === undefined || !('originalLine' in entry)) return undefined
    return `${relative(repoRoot, new URL(entry.originalSource).pathname)}:${entry.originalLine + 1}`
  }
}

export interface Summary {
  byOwner: Array<[string, number]>
  byFunction: Array<[string, number]>
  /** the suite's own functions by total time: their self time plus that of everything they called */
  ownTotal: Array<[string, number]>
  totalMs: number
}

/** Self time by owner and by function, counting only samples inside [fromUs, toUs] (the load run). */
export function summarise (profile: CpuProfile, fromUs: number, toUs: number, locate: Locate = () => undefined, top = 12): Summary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (at >= fromUs && at <= toUs) self.set(id, (self.get(id) ?? 0) + delta)
  })
  const nameOf = (frame: CallFrame): string => {
    const own = locate(frame)
    if (own !== undefined) return `${frame.functionName || '(anonymous)'} ${own}`
    const where = owner(frame.url, frame.functionName)
    return `${frame.functionName || '(anonymous)'} ${where}${frame.url === '' || frame.lineNumber === 0 ? '' : ':' + (frame.lineNumber + 1)}`
  }
  // The own frames on each node's stack, root first (a frame counted once per sample, however deep it recurses).
  const ownOnStack = new Map<number, Set<string>>()
  const root = profile.nodes[0]
  const pending: Array<[ProfileNode, Set<string>]> = root === undefined ? [] : [[root, new Set()]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, above] = next
    const own = locate(node.callFrame) === undefined ? above : new Set(above).add(nameOf(node.callFrame))
    ownOnStack.set(node.id, own)
    for (const child of node.children ?? []) pending.push([nodes.get(child) as ProfileNode, own])
  }
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  const ownTotal = new Map<string, number>()
  let total = 0
  for (const [id, us] of self) {
    const frame = (nodes.get(id) as ProfileNode).callFrame
    total += us
    // idle time is the server waiting for the load generator, not work
    if (frame.functionName === '(idle)') continue
    const where = owner(frame.url, frame.functionName)
    byOwner.set(where, (byOwner.get(where) ?? 0) + us)
    const name = nameOf(frame)
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
    for (const own of ownOnStack.get(id) ?? []) ownTotal.set(own, (ownTotal.get(own) ?? 0) + us)
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, v / 1000])
  return { byOwner: sorted(byOwner), byFunction: sorted(byFunction), ownTotal: sorted(ownTotal), totalMs: total / 1000 }
}

export interface ProfileTarget { id: string, env: Record<string, string>, path: string, login: string, what: string, duration: number, connections: number, log: (line: string) => void }

export async function profileRow ({ id, env, path: route, login: loginPath, what, duration, connections, log }: ProfileTarget): Promise<string[]> {
  const dir = join(repoRoot, 'bench', 'out', `profile-${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`)
  await mkdir(dir, { recursive: true })
  const started = await startServer('bench/servers/suite.ts', { env, profileDir: dir })
    .catch((err: Error) => ({ ok: false as const, reason: err.message }))
  if (!started.ok) return [`Profile of #${id}: n/a (${started.reason})`]
  const window = { from: 0, to: 0 }
  try {
    const cookie = await login(started.server.url, loginPath)
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
  // the main thread's profile (`.0.`) sorts before tsx's loader thread's
  const file = (await readdir(dir)).sort().find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) return [`Profile of #${id}: no .cpuprofile written in ${relative(repoRoot, dir)}`]
  const path = join(dir, file)
  log(`CPU profile written to ${path}`)
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile
  const { byOwner, byFunction, ownTotal, totalMs } = summarise(profile, window.from, window.to, await ownSourceLocator(profile))
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
    '',
    'The suite\'s own functions by total time (their callees included, so the rows overlap):',
    '',
    '| own function | total ms | share |',
    '|---|---:|---:|',
    ...ownTotal.map(([k, ms]) => `| \`${k.replace(/\|/g, '\\|')}\` | ${ms.toFixed(0)} | ${pct(ms)} |`),
    ''
  ]
}
