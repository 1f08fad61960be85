// A bench round measured in slices adds up to one measurement of the same
// length: counts are summed, req/s is over the slices' total time, p99 is the
// worst slice's, CPU is per response over all of them.
import t from 'tap'
import { mergeSlices } from '../bench/lib/slices.ts'

const slice = (requests: number, seconds: number, p99: number, cpuUs: number, extra: Partial<{ non2xx: number, errors: number, withSetCookie: number }> = {}) => ({
  requests, seconds, rps: requests / seconds, p99, non2xx: extra.non2xx ?? 0, errors: extra.errors ?? 0, responses: requests, withSetCookie: extra.withSetCookie ?? 0, cpuUs
})

t.test('slices merge into one round', async (t) => {
  const merged = mergeSlices([slice(1000, 0.5, 4, 30_000, { withSetCookie: 50 }), slice(3000, 0.5, 2, 60_000, { non2xx: 1, errors: 2 }), slice(2000, 1, 7, 30_000)])
  t.same(merged, { requests: 6000, seconds: 2, rps: 3000, p99: 7, non2xx: 1, errors: 2, responses: 6000, withSetCookie: 50, cpuPerResponse: 20 })
  t.same(mergeSlices([slice(500, 0.5, 3, 10_000)]), { requests: 500, seconds: 0.5, rps: 1000, p99: 3, non2xx: 0, errors: 0, responses: 500, withSetCookie: 0, cpuPerResponse: 20 }, 'one slice is itself')
  t.same(mergeSlices([]), { requests: 0, seconds: 0, rps: 0, p99: 0, non2xx: 0, errors: 0, responses: 0, withSetCookie: 0, cpuPerResponse: 0 }, 'no slice: nothing, no NaN')
  t.equal(mergeSlices([slice(0, 1, 0, 0), slice(100, 1, 1, 500)]).rps, 50, 'a slice that got no answer still counts its time')
})
