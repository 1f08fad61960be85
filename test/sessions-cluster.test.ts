// The session registry on a real Redis Cluster (three primaries, three
// replicas): a user's index and records share one slot, revocations go out
// with SPUBLISH on the bucket's channel and reach every instance's feed
// (which holds one connection per primary), and after a primary is killed
// the feed finds the promoted replica and hears revocations again.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Redis, type Cluster } from 'ioredis'
import { startRedisCluster, ask, type RedisCluster } from './fixtures/redis-cluster.ts'
import { connectRedis } from '../lib/redis/connection.ts'
import { waitReady } from '../lib/redis/client.ts'
import { allBuckets, registryKeys } from '../lib/sessions/redis-keys.ts'
import { clusterSubscriberOptions, createClusterSubscriber, keySlot } from '../lib/sessions/cluster-subscriber.ts'
import { createSessionRegistry, type SessionRegistry, type SessionRegistryDeps } from '../lib/sessions/registry.ts'
import { flushedOn, revokedOn, session } from './sessions-helper.ts'

const K = randomBytes(32)
let cluster: RedisCluster
t.before(async () => { cluster = await startRedisCluster(t) })

interface Instance { registry: SessionRegistry, client: Cluster }

/** One app instance's registry on its own Cluster connection; resolves once its feed is subscribed on every shard. */
async function instance (t: Test, prefix: string): Promise<Instance> {
  const connection = await connectRedis({ cluster: [cluster.nodes[0]] }, 1000)
  const client = connection.client as unknown as Cluster
  client.on('error', () => {})
  t.teardown(() => connection.close())
  if (!await waitReady(connection.client, 10_000)) throw new Error('Cluster not ready')
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: prefix }, { client: client as unknown as SessionRegistryDeps['client'], keys: [K] })
  t.teardown(() => registry.close())
  await flushedOn(registry)
  return { registry, client }
}

const slotOf = async (key: string): Promise<number> => await ask(cluster.nodes[0].port, 'CLUSTER', 'KEYSLOT', key) as number

t.test('the slot of every bucket channel, and of odd keys, is the one Redis computes', async (t) => {
  const keys = registryKeys('fss:')
  const odd = ['', 'plain', '{}', 'a{}b', '{a}{b}', 'open{only', '}{x}', '{user1000}.following', 'ü{é}']
  const channels = allBuckets().map(keys.bucketChannel)
  t.equal(channels.length, 4096)
  const all = [...channels, ...odd]
  // One connection, one pipeline: 4105 questions in a few round trips.
  const raw = new Redis({ host: '127.0.0.1', port: cluster.nodes[0].port, maxRetriesPerRequest: 0 })
  t.teardown(() => raw.disconnect())
  const pipeline = raw.pipeline()
  for (const key of all) pipeline.call('CLUSTER', 'KEYSLOT', key)
  const slots = ((await pipeline.exec()) ?? []).map(([, slot]) => slot)
  t.equal(slots.length, all.length)
  t.same(all.filter((key, n) => keySlot(key) !== slots[n]), [], 'keySlot agrees with CLUSTER KEYSLOT')
})

t.test('a user\'s index, records and channel share one slot', async (t) => {
  const keys = registryKeys('cl:')
  for (const sub of ['alice', 'bob', 'x'.repeat(255)]) {
    const { bucket, index } = keys.user(sub)
    const slot = await slotOf(index)
    t.equal(await slotOf(keys.record(bucket, 'AAAAAAAAAAAAAAAAAAAAAA')), slot, 'record')
    t.equal(await slotOf(keys.bucketChannel(bucket)), slot, 'channel')
  }
})

t.test('a revocation on A reaches B within one second, whichever shard holds the user', async (t) => {
  const [a, b] = [await instance(t, 'rv:'), await instance(t, 'rv:')]
  // Users on every shard: their buckets' slots are spread over the three primaries.
  const users = Array.from({ length: 12 }, (_, n) => `user-${n}`)
  const sessions = await Promise.all(users.map((u) => a.registry.register(session(u))))
  for (const s of sessions) t.equal(await b.registry.isRevoked(s.id), false, 'live on B (asked Redis)')
  const ranges = await ask(cluster.nodes[0].port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  const owner = (slot: number): number | undefined => ranges.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2][1]
  const keys = registryKeys('rv:')
  t.equal(new Set(users.map((u) => owner(keySlot(keys.user(u).index)))).size, 3, 'the users span all three primaries')
  for (const s of sessions) {
    const heard = revokedOn(b.registry, s.id, 1000)
    t.equal(await a.registry.revoke(s.id, 'user'), true)
    t.same(await heard, [s.id], 'B heard it within one second')
    const before = b.registry.counters().view.misses
    t.equal(await b.registry.isRevoked(s.id), true)
    t.equal(b.registry.counters().view.misses, before, 'answered from memory')
  }
  t.equal(b.registry.counters().feed?.invalidations, sessions.length)

  const current = await a.registry.register(session('carol'))
  const others = [await b.registry.register(session('carol')), await b.registry.register(session('carol'))]
  const heard = revokedOn(b.registry, others[1].id, 1000)
  t.same((await a.registry.revokeAll('carol', { except: current.id, reason: 'others' })).sort(), others.map((s) => s.id).sort())
  t.same((await heard).sort(), others.map((s) => s.id).sort(), 'one message for both')
  t.same((await b.registry.list('carol')).map((s) => s.id), [current.id])
  t.match(await b.registry.health(), { kind: 'redis', healthy: true })
})

t.test('a subscriber that cannot reach the cluster keeps trying, and ends for good on disconnect', async (t) => {
  let asked = 0
  const sub = createClusterSubscriber({
    channels: ['x{a}', 'y{b}'],
    slots: async () => {
      asked++
      if (asked === 1) throw new Error('no node answers')
      // A slot map that leaves the channels' slots unserved.
      return [[0, 0, ['127.0.0.1', 1]]]
    },
    connect: async () => { throw new Error('not reached') },
    retryDelay: () => 5
  })
  const errors: string[] = []
  sub.on('error', (err: Error) => { errors.push(err.message) })
  await t.rejects(sub.subscribe('ignored'), /cluster subscriber connecting/)
  await t.rejects(sub.ping(), /cluster subscriber connecting/)
  for (let i = 0; i < 200 && errors.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.match(errors, ['no node answers', /^slot \d+ has no primary$/, /^slot \d+ has no primary$/])
  sub.disconnect()
  t.equal(sub.status, 'end')
})

t.test('a subscriber ended while it connects closes what it opened and never reports ready', async (t) => {
  const connection = await connectRedis({ cluster: [cluster.nodes[0]] }, 1000)
  t.teardown(() => connection.close())
  t.ok(await waitReady(connection.client, 10_000))
  const base = clusterSubscriberOptions(connection.client, ['solo{abc}'], 1000)
  let opened: Redis | undefined
  let closing: (ended: Promise<unknown>) => void = () => {}
  const closed = new Promise<Promise<unknown>>((resolve) => { closing = resolve })
  const sub = createClusterSubscriber({
    ...base,
    async connect (host, port) {
      const shard = await base.connect(host, port)
      opened = shard as unknown as Redis
      closing(once(opened, 'end', { signal: AbortSignal.timeout(10_000) }))
      // Ended between connecting and subscribing.
      sub.disconnect()
      return shard
    }
  })
  let ready = false
  sub.on('ready', () => { ready = true })
  // Bounded by the test's timeout (connect is called once the slot map is read) and the abort signal.
  await t.resolves(async () => await await closed)
  t.equal(opened?.status, 'end', 'the connection it opened is closed')
  t.equal(sub.status, 'end')
  t.equal(ready, false)
})

t.test('a primary killed: the feed finds the promoted replica, hears revocations again; what the failover undid is counted', async (t) => {
  const [a, b] = [await instance(t, 'fo:'), await instance(t, 'fo:')]
  const keys = registryKeys('fo:')
  const [victim] = await cluster.shards()
  const ranges = await ask(cluster.nodes[0].port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  const onVictim = (sub: string): boolean => {
    const slot = keySlot(keys.user(sub).index)
    return ranges.some(([lo, hi, [, port]]) => slot >= lo && slot <= hi && port === victim.primary.port)
  }
  const users = Array.from({ length: 200 }, (_, n) => `fo-user-${n}`).filter(onVictim).slice(0, 11)
  t.equal(users.length, 11, 'users whose records live on the primary about to die')
  const sessions = await Promise.all(users.map((u) => a.registry.register(session(u))))
  const last = sessions.pop() as { id: string }
  // Revoked just before the kill: announced, and maybe not yet on the replica.
  const revokedBefore = await Promise.all(sessions.map((s) => a.registry.revoke(s.id, 'user')))
  t.ok(revokedBefore.every(Boolean))
  const flushes = b.registry.counters().view.flushes
  const resubscribed = flushedOn(b.registry, 30_000)
  const killedAt = performance.now()
  await cluster.kill(victim.primary.port)
  await resubscribed
  const resubscribedAfterMs = Math.round(performance.now() - killedAt)
  t.equal(b.registry.counters().view.flushes, flushes + 1, 'B flushed its view once, on subscribing again')
  await cluster.waitRole(victim.replicas[0].port, 'master')

  // Revoking may answer 503 until the client has the new slot map: bounded retries.
  let revoked = false
  let errors = 0
  for (let i = 0; i < 100 && !revoked; i++) {
    const heard = revokedOn(b.registry, last.id, 1000)
    try {
      revoked = await a.registry.revoke(last.id, 'user')
      t.same(await heard, [last.id], 'after the failover, B hears a revocation within one second')
    } catch (err) {
      heard.catch(() => {})
      t.equal((err as { code?: string }).code, 'FSS_STORE_UNAVAILABLE')
      errors++
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  t.ok(revoked, 'revoked on the promoted replica')
  // What the new primary holds of the revocations made just before the kill.
  const undone = (await Promise.all(sessions.map((s) => a.registry.get(s.id)))).filter((r) => r !== null).length
  t.comment(JSON.stringify({ topology: 'cluster', feed: { resubscribedAfterMs, revokeErrorsAfterResubscribe: errors, revocationsUndone: undone, of: sessions.length } }))
  for (const s of sessions) t.equal(await b.registry.isRevoked(s.id), true, 'B, which heard them, keeps refusing them')
  await cluster.restart(victim.primary.port)
  await cluster.waitStable()
})
