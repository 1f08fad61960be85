// A round measured in slices, merged into one measurement (see
// ThroughputSettings.slices). Apart from the harness so that its test loads
// nothing that starts servers or load.
import type { LoadResult } from './load.ts'
import type { Round } from './throughput.ts'

/**
 * One row's round from its slices: counts add up, req/s is the requests over
 * the slices' total time, p99 is the worst slice's (a merged histogram is not
 * kept), and CPU is per response over all of them.
 */
export function mergeSlices (slices: Array<LoadResult & { cpuUs: number }>): Round {
  const sum = (pick: (s: LoadResult & { cpuUs: number }) => number): number => slices.reduce((total, s) => total + pick(s), 0)
  const seconds = sum((s) => s.seconds)
  const requests = sum((s) => s.requests)
  const responses = sum((s) => s.responses)
  return {
    requests,
    seconds,
    rps: seconds > 0 ? requests / seconds : 0,
    p99: Math.max(0, ...slices.map((s) => s.p99)),
    non2xx: sum((s) => s.non2xx),
    errors: sum((s) => s.errors),
    responses,
    withSetCookie: sum((s) => s.withSetCookie),
    cpuPerResponse: sum((s) => s.cpuUs) / Math.max(1, responses)
  }
}
