// The payload rules at their exact boundaries, on a fixed clock: each limit is
// asserted in the last second it allows and the first second it refuses.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import fc from 'fast-check'
import { checkPayload, buildPayload, withoutTimes, nowSeconds, CLOCK_SKEW, ISSUED, OWN_ISSUED, CREATED, RESERVED } from '../lib/session/payload.ts'

const NOW = 1_800_000_000
const IDLE = 3600
const ABSOLUTE = 7200

function clock (t: Test): void {
  const c = FakeTimers.install({ now: NOW * 1000 + 999, toFake: ['Date'] })
  t.teardown(() => c.uninstall())
}

const check = (fields: Record<string, unknown>, legacy?: unknown) => checkPayload({ ...fields }, legacy, IDLE, ABSOLUTE)

t.test('the field names, the reserved set and the skew are fixed values', async (t) => {
  t.same([ISSUED, OWN_ISSUED, CREATED], ['__ts', '__i', '__c'])
  t.same([...RESERVED].sort(), ['__c', '__i', '__ts'])
  t.equal(CLOCK_SKEW, 60)
})

t.test('nowSeconds floors the clock to whole seconds', async (t) => {
  clock(t)
  t.equal(nowSeconds(), NOW)
})

t.test('idle: valid in the last second before issuedAt + idleTimeout, refused from that second on', async (t) => {
  clock(t)
  const created = NOW - IDLE - 10
  t.same(check({ a: 1, __i: NOW - IDLE + 1, __c: created }), { data: { a: 1 }, createdAt: created, issuedAt: NOW - IDLE + 1 })
  t.equal(check({ __i: NOW - IDLE, __c: created }), 'idle')
})

t.test('absolute: valid in the last second before createdAt + absoluteTimeout, refused in that exact second', async (t) => {
  clock(t)
  t.same(check({ __i: NOW, __c: NOW - ABSOLUTE + 1 }), { data: {}, createdAt: NOW - ABSOLUTE + 1, issuedAt: NOW })
  t.equal(check({ __i: NOW, __c: NOW - ABSOLUTE }), 'absolute')
  t.equal(check({ __i: NOW, __c: NOW - ABSOLUTE - 1 }), 'absolute')
})

t.test('future: up to 60 s ahead is tolerated, 61 s is not, for either time', async (t) => {
  clock(t)
  t.equal(typeof check({ __i: NOW + 60, __c: NOW + 60 }), 'object')
  t.equal(check({ __i: NOW + 61, __c: NOW }), 'future')
  t.equal(check({ __i: NOW + 61, __c: NOW + 61 }), 'future')
  t.equal(check({ __i: NOW + 60, __c: NOW + 61 }), 'future')
})

t.test('creation after issue is refused; equal times are fine', async (t) => {
  clock(t)
  t.equal(typeof check({ __i: NOW, __c: NOW }), 'object')
  t.equal(check({ __i: NOW - 1, __c: NOW }), 'timestamp')
})

t.test('times must be integers ≥ 0; __i, when present, is never replaced by __ts', async (t) => {
  clock(t)
  for (const bad of [-1, 0.5, '1', null, true, NaN, Infinity, [NOW], { n: NOW }]) {
    t.equal(check({ __i: bad, __c: NOW }, NOW), 'timestamp', `__i ${JSON.stringify(bad)}`)
    t.equal(check({ __i: NOW, __c: bad }), 'timestamp', `__c ${JSON.stringify(bad)}`)
    t.equal(check({ __c: NOW }, bad), 'timestamp', `legacy __ts ${JSON.stringify(bad)}`)
  }
  t.equal(check({ __c: NOW }), 'timestamp', 'neither __i nor __ts')
  // Zero is a valid time (epoch): refused here only because it is long past.
  t.same(checkPayload({ __i: 0, __c: 0 }, undefined, 2 * NOW, 2 * NOW), { data: {}, createdAt: 0, issuedAt: 0 })
})

t.test('a payload without __i (previous release) is read on its __ts', async (t) => {
  clock(t)
  t.same(check({ u: 'x', __c: NOW - 5 }, NOW - 1), { data: { u: 'x' }, createdAt: NOW - 5, issuedAt: NOW - 1 })
  t.equal(check({ __c: NOW - IDLE - 5 }, NOW - IDLE), 'idle')
})

t.test('the data keeps user fields and loses only the internal ones', async (t) => {
  clock(t)
  const data: Record<string, unknown> = { a: 1, b: { c: 2 }, __i: NOW, __c: NOW }
  const opened = checkPayload(data, undefined, IDLE, ABSOLUTE)
  t.same(opened, { data: { a: 1, b: { c: 2 } }, createdAt: NOW, issuedAt: NOW })
})

t.test('buildPayload: internal fields last, so user data cannot shadow them (fast-check)', async (t) => {
  fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.nat(), fc.nat(), (data, created, issued) => {
    const built = buildPayload(data, created, issued)
    t.equal(built.__ts, issued)
    t.equal(built.__i, issued)
    t.equal(built.__c, created)
    for (const k of Object.keys(data)) if (!RESERVED.has(k)) t.same(built[k], data[k])
  }), { numRuns: 200 })
})

t.test('withoutTimes: the payload less its three times, own __proto__ fields kept as fields, the payload untouched (fast-check)', async (t) => {
  const withProto = fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', ISSUED, OWN_ISSUED, CREATED)), fc.jsonValue())
  fc.assert(fc.property(withProto, fc.nat(), fc.nat(), (data, created, issued) => {
    const payload = buildPayload(data, created, issued)
    const before = Object.entries(payload)
    const stripped = withoutTimes(payload)
    t.same(Object.entries(payload), before, 'the payload keeps its fields')
    t.same(Object.entries(stripped), before.filter(([k]) => !RESERVED.has(k)), 'every other field, in order')
    t.equal(Object.getPrototypeOf(stripped), Object.prototype, 'a plain object: an own __proto__ field did not set its prototype')
  }), { numRuns: 300 })
  const parsed = JSON.parse('{"__proto__":{"x":1},"a":2,"__i":5}') as Record<string, unknown>
  t.same(Object.keys(withoutTimes(parsed)), ['__proto__', 'a'])
})
