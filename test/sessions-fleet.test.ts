// Several registries on one real Redis, each with its own connections, as
// separate app instances would have them.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { createRedisClient, waitReady } from '../lib/redis/client.ts'
import { createSessionRegistry, type SessionRegistry, type SessionRegistryOptions } from '../lib/sessions/registry.ts'
import { createSessionId } from '../lib/sessions/id.ts'
import { flushedOn, revokedOn, session } from './sessions-helper.ts'
import type { Redis } from 'ioredis'

let redis: RedisServer
t.before(async () => { redis = await startRedis(t) })

const K = randomBytes(32)
let prefixes = 0

interface Instance { registry: SessionRegistry, client: Redis, subscriber: Redis }

/** One app instance's registry; resolves once its feed is subscribed. */
async function instance (t: Test, prefix: string, options: SessionRegistryOptions = {}): Promise<Instance> {
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  const subscriber = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  if (!await waitReady(client, 5000)) throw new Error('Redis not ready')
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: prefix, ...options }, { client, subscriber, keys: [K] })
  t.teardown(() => registry.close())
  await flushedOn(registry)
  return { registry, client, subscriber }
}

async function fleet (t: Test, n: number): Promise<SessionRegistry[]> {
  const prefix = `fleet${++prefixes}:`
  const all: SessionRegistry[] = []
  for (let i = 0; i < n; i++) all.push((await instance(t, prefix)).registry)
  return all
}

t.test('a session revoked on A is refused on B and C within one second, answered from memory', async (t) => {
  const [a, b, c] = await fleet(t, 3)
  const s = await a.register(session('alice'))
  for (const other of [b, c]) {
    t.equal(await other.isRevoked(s.id), false, 'first check asks Redis')
    t.equal(await other.isRevoked(s.id), false, 'then memory answers')
  }
  const before = { b: b.counters().view, c: c.counters().view }
  const seen = [revokedOn(b, s.id, 1000), revokedOn(c, s.id, 1000)]
  t.equal(await a.revoke(s.id, 'user'), true)
  t.same(await Promise.all(seen), [[s.id], [s.id]], 'B and C heard it within one second')
  t.equal(await a.isRevoked(s.id), true, 'A knows at once')
  for (const [name, other] of [['b', b], ['c', c]] as const) {
    t.equal(await other.isRevoked(s.id), true, `${name} refuses it`)
    const view = other.counters().view
    t.equal(view.misses, before[name].misses, `${name} asked Redis nothing`)
    t.equal(view.hits, before[name].hits + 1)
    t.equal(other.counters().feed?.invalidations, 1)
  }
  t.equal(a.counters().revoked.user, 1)
  t.equal(b.counters().revoked.user, 0, 'counted where it was done')
})

t.test('revokeAll with except on one instance keeps the current device on every instance', async (t) => {
  const [a, b] = await fleet(t, 2)
  const current = await a.register(session('alice'))
  const others = [await b.register(session('alice')), await b.register(session('alice'))]
  for (const s of [current, ...others]) t.equal(await b.isRevoked(s.id), false)
  const seen = revokedOn(b, others[1].id, 1000)
  const ended = await a.revokeAll('alice', { except: current.id, reason: 'others' })
  t.same(ended.sort(), others.map((s) => s.id).sort())
  t.same((await seen).sort(), ended.sort(), 'one message announced both')
  t.equal(await b.isRevoked(others[0].id), true)
  t.equal(await b.isRevoked(others[1].id), true)
  t.equal(await b.isRevoked(current.id), false, 'the current device stays signed in')
  t.same((await b.list('alice')).map((s) => s.id), [current.id])
})

t.test('a back-channel logout on one instance ends the provider session on the others', async (t) => {
  const [a, b, c] = await fleet(t, 3)
  const s = await a.register(session('alice', { sid: 'op-sid-1' }))
  const kept = await a.register(session('alice', { sid: 'op-sid-2' }))
  t.equal(await b.isRevoked(s.id), false)
  const seen = revokedOn(b, s.id, 1000)
  t.same(await c.revokeBySid('idp', 'op-sid-1'), [s.id])
  await seen
  t.equal(await b.isRevoked(s.id), true)
  t.equal(await c.isRevoked(s.id), true)
  t.equal(await b.isRevoked(kept.id), false)
  t.equal(c.counters().revoked.backchannel, 1)
})

t.test('a restarted instance does not resurrect revoked sessions', async (t) => {
  const prefix = `fleet${++prefixes}:`
  const a = await instance(t, prefix)
  const first = await instance(t, prefix)
  const s = await a.registry.register(session('alice'))
  const live = await a.registry.register(session('alice'))
  t.equal(await first.registry.isRevoked(s.id), false)
  await a.registry.revoke(s.id, 'user')
  await first.registry.close()
  const restarted = await instance(t, prefix)
  t.equal(await restarted.registry.isRevoked(s.id), true, 'a fresh view asks Redis, which has no record')
  t.equal(await restarted.registry.isRevoked(live.id), false)
  t.same((await restarted.registry.list('alice')).map((r) => r.id), [live.id])
  await t.rejects(restarted.registry.register({ id: s.id, sub: 'alice', provider: 'idp' }), { code: 'FSS_SESSION_RECORD_INVALID' }, 'nor can its id be registered again')
})

t.test('an instance that missed invalidations while disconnected flushes its view when it subscribes again', async (t) => {
  const prefix = `fleet${++prefixes}:`
  const a = await instance(t, prefix)
  const b = await instance(t, prefix)
  const s = await a.registry.register(session('alice'))
  const kept = await a.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(s.id), false)
  t.equal(await b.registry.isRevoked(kept.id), false)
  b.subscriber.disconnect()
  t.equal(await a.registry.revoke(s.id, 'user'), true, 'announced while B is not listening: lost to B')
  const flushed = flushedOn(b.registry)
  b.subscriber.connect().catch(() => {})
  await flushed
  t.equal(b.registry.counters().feed?.invalidations, 0, 'B never heard of the revocation')
  t.equal(b.registry.counters().view.flushes, 2, 'subscribed twice, flushed twice')
  const misses = b.registry.counters().view.misses
  t.equal(await b.registry.isRevoked(s.id), true, 'yet refuses the session: its view was flushed and Redis asked')
  t.equal(await b.registry.isRevoked(kept.id), false)
  t.equal(b.registry.counters().view.misses, misses + 2)
  t.same(await b.registry.health(), { kind: 'redis', healthy: true, detail: 'Redis reachable, revocation feed subscribed' })
})

t.test('touch, list and get through the registry; lastSeenAt is written once per interval across instances', async (t) => {
  const [a, b] = await fleet(t, 2)
  const s = await a.register(session('alice'))
  t.same(await b.get(s.id), s)
  t.same(await b.list('alice'), [s])
  t.equal(await b.touch(s.id), false, 'seen moments ago')
})

t.test('the per-request check waits for Redis only when the view cannot vouch', async (t) => {
  const [a, b] = await fleet(t, 2)
  const s = await a.register(session('alice'))
  t.equal(a.check(s.id), false, 'registered here: answered at once')
  const asked = b.check(s.id)
  t.type(asked, Promise, 'B has never seen it: Redis is asked')
  t.equal(await asked, false)
  t.equal(b.check(s.id), false, 'then B answers at once')
  const heard = revokedOn(b, s.id, 1000)
  await a.revoke(s.id, 'user')
  await heard
  t.equal(b.check(s.id), true, 'the revocation heard: answered at once')
  const unknown = b.check(createSessionId())
  t.type(unknown, Promise)
  t.equal(await unknown, true, 'an id Redis does not know is revoked')
})

t.test('the registry opens its own subscriber connection by default, and closes it', async (t) => {
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  // The command connection fails fast until it is ready: wait for it, as the plugin does.
  if (!await waitReady(client, 5000)) throw new Error('Redis not ready')
  const registry = createSessionRegistry({ store: 'redis' }, { client, keys: [K] })
  await flushedOn(registry)
  const s = await registry.register(session('alice'))
  t.equal(await registry.isRevoked(s.id), false)
  t.equal(registry.counters().view.hits, 1, 'registered here: known live at once')
  t.same(await client.pubsub('NUMSUB', 'fss:sess:revoked'), ['fss:sess:revoked', 1], "one subscriber on the default prefix's channel")
  await registry.close()
  t.equal(client.status, 'ready', 'the shared command connection stays open')
  t.match(await registry.health(), { healthy: false, detail: /not subscribed/ }, 'its own subscriber is closed')
})
