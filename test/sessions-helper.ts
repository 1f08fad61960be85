// Shared by the session registry tests: a fake clock the registry can be
// handed (nothing global is faked, so ioredis keeps its real timers), and the
// contract both stores keep, run against each.
import type { Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { once } from 'node:events'
import { createSessionId } from '../lib/sessions/id.ts'
import type { Clock, RegisterInput, SessionRegistryStore } from '../lib/sessions/contract.ts'
import type { SessionRegistry } from '../lib/sessions/registry.ts'

export const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
export const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'

export interface FakeClock {
  clock: Clock
  tick: (ms: number) => void
  now: () => number
}

export function fakeClock (start = Date.now()): FakeClock {
  const c = FakeTimers.createClock(start)
  return {
    clock: {
      now: () => c.now,
      setInterval: (fn, ms) => c.setInterval(fn, ms),
      clearInterval: (handle) => c.clearInterval(handle as FakeTimers.TimerId)
    },
    tick: (ms) => { c.tick(ms) },
    now: () => c.now
  }
}

export function session (sub: string, extra: Partial<RegisterInput> = {}): RegisterInput {
  return { id: createSessionId(), sub, provider: 'idp', userAgent: CHROME, ...extra }
}

/** Resolves with the ids `registry` hears announced, once `id` is among them; rejects after `withinMs`. */
export async function revokedOn (registry: SessionRegistry, id: string, withinMs = 1000): Promise<string[]> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`no invalidation for the session within ${withinMs} ms`)), withinMs)
  try {
    // Bounded by the abort above; each event is one revocation message.
    for (;;) {
      const [ids] = await once(registry.events, 'revoked', { signal: controller.signal }) as [string[]]
      if (ids.includes(id)) return ids
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves on the registry's next flush (a (re)subscription of its feed); rejects after `withinMs`. */
export async function flushedOn (registry: SessionRegistry, withinMs = 10_000): Promise<void> {
  await once(registry.events, 'flushed', { signal: AbortSignal.timeout(withinMs) })
}

/** What every store promises; `make` builds a fresh, empty store on `clock` with a 60 s touch interval. */
export function storeContract (t: Test, make: (t: Test, clock: Clock) => Promise<SessionRegistryStore>): void {
  t.test('a registered session reads back, is listed for its user, and is live', async (t) => {
    const fc = fakeClock()
    const store = await make(t, fc.clock)
    const input = session('alice', { sid: 'idp-sid-1' })
    const record = await store.register(input)
    t.same(record, {
      id: input.id, sub: 'alice', provider: 'idp', sid: 'idp-sid-1', createdAt: fc.now(), lastSeenAt: fc.now(), expiresAt: fc.now() + 3600_000, device: 'Chrome on Linux'
    })
    t.same(await store.get(input.id), record)
    t.same(await store.list('alice'), [record])
    t.same(await store.list('bob'), [], 'another user sees none of it')
    t.equal(await store.isRevoked(input.id), false)
    const noSid = await store.register(session('alice', { userAgent: undefined }))
    t.notOk('sid' in noSid, 'no sid given, none kept')
    t.equal(noSid.device, 'Unknown device', 'no User-Agent: no guess')
    t.equal(store.counters().registered, 2)
  })

  t.test('register refuses a malformed or reused id and names a bad field, never its value', async (t) => {
    const store = await make(t, fakeClock().clock)
    await t.rejects(store.register({ ...session('alice'), id: 'not-an-id' }), { code: 'FSS_SESSION_ID_INVALID' })
    await t.rejects(store.register(null as unknown as RegisterInput), { code: 'FSS_SESSION_ID_INVALID' })
    const input = session('alice')
    await store.register(input)
    await t.rejects(store.register({ ...input, sub: 'mallory' }), { code: 'FSS_SESSION_RECORD_INVALID', message: /id/ })
    t.equal((await store.get(input.id))?.sub, 'alice', 'the first registration stands')
    // One past a qualified subject's bound: a provider name, a colon and a 255-character sub.
    const long = 's'.repeat(289)
    const err = await store.register({ ...session('x'), sub: long }).catch((e: Error) => e) as Error & { code: string }
    t.equal(err.code, 'FSS_SESSION_RECORD_INVALID')
    t.match(err.message, /sub/)
    t.notMatch(err.message, long)
    await t.rejects(store.register({ ...session('x'), extra: 1 } as RegisterInput), { code: 'FSS_SESSION_RECORD_INVALID', message: /extra/ })
    await t.rejects(store.register({ ...session('x'), provider: '' }), { code: 'FSS_SESSION_RECORD_INVALID', message: /provider/ })
    t.same(await store.list('x'), [], 'nothing half-registered')
  })

  t.test('revoke ends one session for good and says whether it did', async (t) => {
    const store = await make(t, fakeClock().clock)
    const a = await store.register(session('alice', { sid: 's1' }))
    const b = await store.register(session('alice'))
    t.equal(await store.revoke(a.id, 'user'), true)
    t.equal(await store.get(a.id), null)
    t.equal(await store.isRevoked(a.id), true)
    t.same((await store.list('alice')).map((r) => r.id), [b.id])
    t.same(await store.revokeBySid('idp', 's1'), [], 'its sid no longer reaches it')
    t.equal(await store.revoke(a.id, 'user'), false, 'a second revoke finds nothing')
    await t.rejects(store.register({ id: a.id, sub: 'alice', provider: 'idp' }), { code: 'FSS_SESSION_RECORD_INVALID' }, 'a revoked id cannot be registered again')
    t.equal(await store.isRevoked(a.id), true)
    t.equal(await store.revoke(createSessionId(), 'user'), false, 'an unknown id is not reported revoked')
    await t.rejects(store.revoke('../etc', 'user'), { code: 'FSS_SESSION_ID_INVALID' })
    t.equal(store.counters().revoked.user, 1, 'counted once, by reason')
  })

  t.test('revokeAll with except ends every other session of the user, and only theirs', async (t) => {
    const store = await make(t, fakeClock().clock)
    const current = await store.register(session('alice'))
    const others = [await store.register(session('alice', { userAgent: IPHONE })), await store.register(session('alice'))]
    const bob = await store.register(session('bob'))
    const ended = await store.revokeAll('alice', { except: current.id, reason: 'others' })
    t.same(ended.sort(), others.map((r) => r.id).sort())
    t.same((await store.list('alice')).map((r) => r.id), [current.id], 'the current device stays')
    t.equal(await store.isRevoked(current.id), false)
    t.equal(await store.isRevoked(bob.id), false, "another user's session is untouched")
    t.same(await store.revokeAll('alice', { except: current.id, reason: 'others' }), [], 'nothing left to end')
    t.same(await store.revokeAll('alice', { reason: 'admin' }), [current.id], 'without except, every session')
    t.same(await store.revokeAll('nobody', { reason: 'admin' }), [])
    t.match(store.counters().revoked, { others: 2, admin: 1 })
  })

  t.test('revokeBySid ends the sessions of one provider session, and no other', async (t) => {
    const store = await make(t, fakeClock().clock)
    const first = await store.register(session('alice', { sid: 'shared' }))
    const second = await store.register(session('alice', { sid: 'shared' }))
    const otherSid = await store.register(session('alice', { sid: 'other' }))
    const otherProvider = await store.register(session('alice', { sid: 'shared', provider: 'idp2' }))
    t.same((await store.revokeBySid('idp', 'shared')).sort(), [first.id, second.id].sort())
    t.equal(await store.isRevoked(otherSid.id), false)
    t.equal(await store.isRevoked(otherProvider.id), false, 'a sid is scoped to its provider')
    t.same(await store.revokeBySid('idp', 'shared'), [])
    t.same(await store.revokeBySid('idp', 'never'), [])
    t.equal(store.counters().revoked.backchannel, 2)
  })

  t.test('touch writes lastSeenAt at most once per interval', async (t) => {
    const fc = fakeClock()
    const store = await make(t, fc.clock)
    const { id, createdAt } = await store.register(session('alice'))
    t.equal(store.touchDue(id), false, 'just registered: no touch due')
    t.equal(await store.touch(id), false, 'just registered: nothing to write')
    fc.tick(59_999)
    t.equal(store.touchDue(id), false, 'within the interval: none due')
    t.equal(await store.touch(id), false, 'within the interval')
    fc.tick(1)
    t.equal(store.touchDue(id), true, 'one interval later: due')
    t.equal(await store.touch(id), true, 'one interval later')
    t.equal(store.touchDue(id), false, 'written: none due')
    t.equal((await store.get(id))?.lastSeenAt, createdAt + 60_000)
    t.equal(await store.touch(id), false, 'not again until the next interval')
    fc.tick(61_000)
    t.equal(await store.touch(id), true)
    t.equal((await store.get(id))?.createdAt, createdAt, 'createdAt never moves')
    t.equal(await store.touch(createSessionId()), false, 'an unknown session is not created')
    t.equal(await store.touch('bad'), false)
    t.equal(store.touchDue('bad'), false, 'a malformed id is never due')
    await store.revoke(id, 'logout')
    fc.tick(61_000)
    t.equal(await store.touch(id), false, 'a revoked session is not brought back')
    t.equal(await store.get(id), null)
  })

  t.test('list shows the most recently seen first', async (t) => {
    const fc = fakeClock()
    const store = await make(t, fc.clock)
    const old = await store.register(session('alice'))
    fc.tick(1000)
    const recent = await store.register(session('alice', { userAgent: IPHONE }))
    t.same((await store.list('alice')).map((r) => r.id), [recent.id, old.id])
    fc.tick(60_000)
    await store.touch(old.id)
    t.same((await store.list('alice')).map((r) => r.device), ['Chrome on Linux', 'Safari on iOS'], 'touched: now first')
  })

  t.test('a malformed id reads as not live, never as an error', async (t) => {
    const store = await make(t, fakeClock().clock)
    for (const bad of ['', 'x', 'A'.repeat(22), '*', undefined as unknown as string]) {
      t.equal(await store.get(bad), null)
      t.equal(await store.isRevoked(bad), true)
    }
  })
}
