// The revocation view's ordering rules, driven step by step: its lookup is the
// real Redis store's get(), held at a gate so an invalidation or a flush can
// land while the store is answering.
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { createRedisClient, waitReady } from '../lib/redis/client.ts'
import { createRedisSessionStore, type RedisSessionStore } from '../lib/sessions/redis-store.ts'
import { createRevocationFeed } from '../lib/sessions/feed.ts'
import { createRevocationView, type RevocationView } from '../lib/sessions/view.ts'
import { createSessionRegistry } from '../lib/sessions/registry.ts'
import { createSessionId } from '../lib/sessions/id.ts'
import { fakeClock, session, type FakeClock } from './sessions-helper.ts'

let redis: RedisServer
t.before(async () => { redis = await startRedis(t) })
const K = randomBytes(32)

interface Gated {
  view: RevocationView
  store: RedisSessionStore
  fc: FakeClock
  /** Resolves when a lookup reaches the gate; call the returned function to let it through. */
  atGate: () => Promise<() => void>
}

async function gatedView (t: Test): Promise<Gated> {
  const fc = fakeClock()
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  await waitReady(client, 5000)
  const store = createRedisSessionStore({ client, keys: [K], prefix: 'view:', absoluteTimeout: 3600, touchInterval: 60, commandTimeout: 1000, clock: fc.clock })
  const feed = createRevocationFeed({ subscriber: client.duplicate(), channel: store.channel, heartbeatInterval: 500, clock: fc.clock })
  t.teardown(() => feed.close())
  await new Promise<void>((resolve) => feed.onSubscribed(resolve))
  let arrived: ((open: () => void) => void) | undefined
  const view = createRevocationView({
    async lookup (id) {
      const record = await store.get(id)
      await new Promise<void>((resolve) => arrived?.(resolve))
      return record
    },
    feed,
    maxEntries: 100,
    outageTrust: 5,
    clock: fc.clock
  })
  return {
    view,
    store,
    fc,
    atGate: () => new Promise((resolve) => { arrived = resolve })
  }
}

t.test('a revocation heard while the store answers "live" wins over the answer', async (t) => {
  const { view, store, atGate } = await gatedView(t)
  const s = await store.register(session('alice'))
  const gate = atGate()
  const checking = view.isRevoked(s.id)
  const open = await gate
  view.markRevoked([s.id])
  open()
  t.equal(await checking, true)
  t.equal(await view.isRevoked(s.id), true)
  t.match(view.counters(), { hits: 1, misses: 1 })
})

t.test('an answer read before a flush is not remembered after it', async (t) => {
  const { view, store, atGate } = await gatedView(t)
  const s = await store.register(session('alice'))
  let gate = atGate()
  const checking = view.isRevoked(s.id)
  const open = await gate
  view.flush()
  open()
  t.equal(await checking, false, 'the answer itself stands for this request')
  gate = atGate()
  const again = view.isRevoked(s.id)
  ;(await gate)()
  t.equal(await again, false)
  t.match(view.counters(), { hits: 0, misses: 2, flushes: 1 }, 'but it was asked again')
})

t.test('a live entry is believed only until the session expires', async (t) => {
  const { view, store, fc, atGate } = await gatedView(t)
  const s = await store.register(session('alice'))
  view.markLive(s.id, s.expiresAt)
  t.equal(await view.isRevoked(s.id), false)
  t.match(view.counters(), { hits: 1, misses: 0 })
  fc.tick(3_600_000)
  // The fake clock says expired; real Redis still holds the record, which is fine: the view asks.
  const gate = atGate()
  const checking = view.isRevoked(s.id)
  ;(await gate)()
  await checking
  t.match(view.counters(), { hits: 1, misses: 1 }, 'an expired entry is a miss')
  view.markRevoked([s.id])
  view.markLive(s.id, s.expiresAt + 1)
  t.equal(await view.isRevoked(s.id), true, 'markLive never undoes a revocation')
  t.equal(await view.isRevoked('nope'), true, 'a malformed id is never live')
  const unknown = createSessionId()
  const g2 = atGate()
  const c2 = view.isRevoked(unknown)
  ;(await g2)()
  t.equal(await c2, true, 'an id the store does not have is revoked, and remembered so')
  t.equal(await view.isRevoked(unknown), true)
  t.equal(view.trusted(), false, 'an hour without a heartbeat: no longer trusted')
})

t.test('registry options are checked once, naming the option, and conflicting ones are refused', async (t) => {
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  const cases: Array<[unknown, RegExp]> = [
    [{ store: 'disk' }, /sessions\.store/],
    [{ outageTrust: 0 }, /sessions\.outageTrust/],
    [{ absoluteTimeout: 10 }, /sessions\.absoluteTimeout/],
    [{ keyPrefix: 'a{b}:' }, /sessions\.keyPrefix/],
    [{ heartbeatInterval: 5000, outageTrust: 5 }, /sessions\.heartbeatInterval: must be shorter than outageTrust/],
    [{ touchInteval: 60 }, /sessions/],
    [{ store: 'redis' }, /sessions\.store: 'redis' needs the suite's Redis connection/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => createSessionRegistry(options as never), { code: 'FSS_OPTIONS_INVALID', message }, JSON.stringify(options))
  }
  t.throws(() => createSessionRegistry({ store: 'redis' }, { client }), { code: 'FSS_OPTIONS_INVALID', message: /keyring/ })
  t.throws(() => createSessionRegistry({ store: 'redis' }, { client, keys: [] }), { code: 'FSS_OPTIONS_INVALID', message: /keyring/ })
  const defaults = createSessionRegistry()
  t.equal(defaults.kind, 'memory', 'memory unless told otherwise')
  const s = await defaults.register(session('alice'))
  t.equal(s.expiresAt - s.createdAt, 30 * 86_400_000, 'default absolute timeout: 30 days')
  await defaults.close()
})
