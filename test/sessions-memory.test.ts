import t from 'tap'
import { createMemorySessionStore } from '../lib/sessions/memory-store.ts'
import { createSessionRegistry } from '../lib/sessions/registry.ts'
import { createSessionId } from '../lib/sessions/id.ts'
import { LruMap } from '../lib/sessions/lru.ts'
import fc from 'fast-check'
import { fakeClock, session, storeContract } from './sessions-helper.ts'

t.test('the memory store keeps the store contract', async (t) => {
  storeContract(t, async (t, clock) => {
    const store = createMemorySessionStore({ absoluteTimeout: 3600, touchInterval: 60, maxSessions: 100, clock })
    t.teardown(() => store.close())
    return store
  })
})

t.test('a full memory store ends its least recently used session, and says so', async (t) => {
  const store = createMemorySessionStore({ absoluteTimeout: 3600, touchInterval: 60, maxSessions: 2 })
  t.equal(store.kind, 'memory')
  const oldest = await store.register(session('alice', { sid: 'p1' }))
  const used = await store.register(session('bob'))
  t.equal(await store.isRevoked(oldest.id), false, 'reading alice makes bob the least recently used')
  const third = await store.register(session('carol'))
  t.equal(await store.isRevoked(used.id), true, 'bob was ended to stay within maxSessions')
  t.same(await store.list('bob'), [], 'and left no index entry behind')
  t.equal(await store.isRevoked(oldest.id), false)
  t.equal(await store.isRevoked(third.id), false)
  t.equal(store.counters().revoked.evicted, 1)
  await store.register(session('dave'))
  t.equal(await store.isRevoked(oldest.id), true, 'alice is now the least recently used')
  t.same(await store.revokeBySid('idp', 'p1'), [], 'an evicted session is not reported revoked by its sid')
  t.equal(store.counters().revoked.evicted, 2)
  await store.close()
  t.equal(await store.isRevoked(third.id), true, 'close forgets everything')
})

t.test('a memory session ends at its absolute timeout', async (t) => {
  const fc = fakeClock()
  const store = createMemorySessionStore({ absoluteTimeout: 120, touchInterval: 60, maxSessions: 10, clock: fc.clock })
  const a = await store.register(session('alice', { sid: 's' }))
  fc.tick(60_000)
  t.equal(await store.touch(a.id), true, 'touching does not extend it')
  fc.tick(59_999)
  t.equal(await store.isRevoked(a.id), false)
  fc.tick(1)
  t.equal(await store.isRevoked(a.id), true, 'gone at createdAt + absoluteTimeout')
  t.same(await store.list('alice'), [])
  t.same(await store.revokeBySid('idp', 's'), [], 'expired, so nothing to revoke')
  t.equal(store.counters().revoked.backchannel, 0, 'expiry is not counted as a revocation')
  const b = await store.register(session('alice'))
  fc.tick(120_000)
  t.same(await store.list('alice'), [], 'list drops expired sessions')
  t.equal(await store.revoke(b.id, 'user'), false)
})

t.test('the memory registry checks the store on every request: nothing to go stale', async (t) => {
  const registry = createSessionRegistry({ store: 'memory', maxSessions: 5, viewSize: 5 })
  t.teardown(() => registry.close())
  t.equal(registry.kind, 'memory')
  t.same(await registry.health(), { kind: 'memory', healthy: true, detail: 'in memory: sessions are known to this process only' })
  const a = await registry.register(session('alice'))
  t.equal(await registry.isRevoked(a.id), false)
  t.equal(await registry.isRevoked(a.id), false)
  t.equal(await registry.revoke(a.id, 'logout'), true)
  t.equal(await registry.isRevoked(a.id), true)
  const counters = registry.counters()
  t.match(counters, { registered: 1, revoked: { logout: 1 }, view: { hits: 0, misses: 3 } }, 'every check asked the store in memory: nothing to remember beside it')
  t.notOk('feed' in counters, 'no feed without Redis')
})

t.test('the memory registry answers the per-request check at once, without a promise', async (t) => {
  const fc = fakeClock()
  const registry = createSessionRegistry({ store: 'memory', touchInterval: 60 }, { clock: fc.clock })
  t.teardown(() => registry.close())
  const a = await registry.register(session('alice'))
  t.equal(registry.check(a.id), false, 'live, answered synchronously')
  t.equal(registry.check(createSessionId()), true, 'never registered: revoked, synchronously')
  t.equal(registry.check('not an id'), true)
  fc.tick(60_000)
  t.equal(registry.check(a.id), false, 'a touch is due: started, not waited for')
  t.equal((await registry.get(a.id))?.lastSeenAt, a.createdAt + 60_000, 'the touch wrote lastSeenAt')
  await registry.revoke(a.id, 'user')
  t.equal(registry.check(a.id), true, 'revoked, answered synchronously')
  t.match(registry.counters().view, { hits: 0, misses: 4, entries: 0 }, 'the store answered every well-formed id; the view keeps no copy')
})

t.test('LruMap stays within its bound and forgets the least recently used', async (t) => {
  const map = new LruMap<string, number>(2)
  t.equal(map.set('a', 1), undefined)
  map.set('b', 2)
  t.equal(map.get('a'), 1)
  t.same(map.set('c', 3), ['b', 2], 'b was least recently used')
  t.equal(map.size, 2)
  t.equal(map.set('a', 10), undefined, 'replacing an entry forgets nothing')
  t.equal(map.get('missing'), undefined)
  t.equal(map.deleteWhere((v) => v > 5), 1)
  t.equal(map.delete('c'), true)
  t.equal(map.size, 0)
  map.set('x', 1)
  map.clear()
  t.equal(map.size, 0)
  t.equal(map.get(createSessionId()), undefined)
})

t.test('LruMap evicts exactly as a reference LRU, whatever the sequence of operations (fast-check)', async (t) => {
  // the reference: an array, most recent last
  const op = fc.oneof(
    fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 5 }), value: fc.integer() }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('peek' as const), key: fc.integer({ min: 0, max: 5 }) })
  )
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
    const map = new LruMap<number, number>(max)
    let ref: Array<[number, number]> = []
    for (const o of ops) {
      const at = ref.findIndex(([k]) => k === o.key)
      if (o.kind === 'get') {
        const expected = at === -1 ? undefined : ref[at][1]
        if (at !== -1) ref = [...ref.slice(0, at), ...ref.slice(at + 1), ref[at]]
        if (map.get(o.key) !== expected) return false
      } else if (o.kind === 'peek') {
        if (map.peek(o.key) !== (at === -1 ? undefined : ref[at][1])) return false
      } else if (o.kind === 'delete') {
        if (at !== -1) ref.splice(at, 1)
        if (map.delete(o.key) !== (at !== -1)) return false
      } else {
        if (at !== -1) ref.splice(at, 1)
        ref.push([o.key, o.value])
        const evicted = ref.length > max ? ref.shift() : undefined
        const got = map.set(o.key, o.value)
        if (JSON.stringify(got) !== JSON.stringify(evicted)) return false
      }
      if (map.size !== ref.length) return false
    }
    return true
  }), { numRuns: 2000 })
  t.pass('2000 sequences agree')
})

t.test('LruMap: reading the newest entry again keeps the order; reading another moves it', async (t) => {
  const map = new LruMap<string, number>(3)
  map.set('a', 1)
  map.set('b', 2)
  map.set('c', 3)
  t.equal(map.get('c'), 3)
  t.equal(map.get('c'), 3, 'the newest, read twice')
  t.same(map.set('d', 4), ['a', 1], 'the oldest goes first')
  t.equal(map.get('b'), 2, 'b becomes the newest')
  t.equal(map.get('b'), 2)
  t.same(map.set('e', 5), ['c', 3], 'c, not b: b was read after c was')
  t.equal(map.delete('e'), true)
  map.set('f', 6)
  t.same(map.set('g', 7), ['d', 4])
  t.same(map.set('h', 8), ['b', 2], 'b was the newest until f and g came')
})
