import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { createRedisClient, waitReady } from '../lib/redis/client.ts'
import { deriveStoreKeys, open, seal } from '../lib/redis/seal.ts'
import { createRedisSessionStore, type RedisSessionStore } from '../lib/sessions/redis-store.ts'
import { deriveRegistryKeys, registryKeys } from '../lib/sessions/redis-keys.ts'
import { createSessionId } from '../lib/sessions/id.ts'
import type { Clock, SessionRecord } from '../lib/sessions/contract.ts'
import { captureLogs } from './helper.ts'
import { fakeClock, session, storeContract } from './sessions-helper.ts'

let redis: RedisServer
let raw: Redis
t.before(async () => {
  redis = await startRedis(t)
  raw = new Redis(redis.url)
  t.teardown(() => raw.quit())
})

const K1 = randomBytes(32)
const K2 = randomBytes(32)
let prefixes = 0

interface Made { store: RedisSessionStore, client: Redis, prefix: string }

async function makeStore (t: Test, opts: { clock?: Clock, keys?: Buffer[], prefix?: string, commandTimeout?: number, log?: ReturnType<typeof captureLogs> } = {}): Promise<Made> {
  const client = await createRedisClient({ url: redis.url, commandTimeout: opts.commandTimeout ?? 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  if (!await waitReady(client, 5000)) throw new Error('Redis not ready')
  const prefix = opts.prefix ?? `t${++prefixes}:`
  let log
  if (opts.log !== undefined) {
    const app = Fastify({ logger: { level: 'warn', stream: opts.log.stream } })
    t.teardown(() => app.close())
    log = app.log
  }
  const store = createRedisSessionStore({
    client, keys: opts.keys ?? [K1], prefix, absoluteTimeout: 3600, touchInterval: 60, commandTimeout: opts.commandTimeout ?? 1000, clock: opts.clock, log
  })
  t.teardown(() => store.close())
  return { store, client, prefix }
}

t.test('the Redis store keeps the store contract', async (t) => {
  storeContract(t, async (t, clock) => (await makeStore(t, { clock })).store)
})

t.test("one user's keys share a hash tag, names show no sub or sid, records are sealed, and all expire with the session", async (t) => {
  const { store, prefix } = await makeStore(t)
  t.equal(store.kind, 'redis')
  const record = await store.register(session('alice@example.com', { sid: 'idp-session-XYZ' }))
  const keys = (await raw.keys(`${prefix}*`)).sort()
  t.equal(keys.length, 4, 'record, user index, id locator, sid set')
  const names = registryKeys(prefix)
  const { bucket, index } = names.user('alice@example.com')
  const recordKey = names.record(bucket, record.id)
  t.same(keys, [names.locator(record.id), names.sid('idp', 'idp-session-XYZ'), index, recordKey].sort())
  t.equal(/\{([^}]*)\}/.exec(index)?.[1], bucket, 'the index carries the bucket as its hash tag')
  t.equal(/\{([^}]*)\}/.exec(recordKey)?.[1], bucket, 'and so does the record: one slot for one user')
  for (const key of keys) {
    t.notMatch(key, /alice|XYZ/, `${key} names no user and no provider session`)
    const pttl = await raw.pttl(key)
    t.ok(pttl > 3_500_000 && pttl <= 3_600_000, `${key} expires with the session's absolute timeout`)
  }
  t.equal(await raw.get(names.locator(record.id)), bucket)
  const sealed = await raw.get(recordKey) as string
  t.notMatch(sealed, /alice|XYZ|Chrome/, 'the record is ciphertext')
  t.same(JSON.parse(open(deriveRegistryKeys([K1]), sealed, recordKey)?.plaintext ?? 'null'), record)
  t.equal(open(deriveStoreKeys([K1]), sealed, recordKey), null, "the token store's subkey cannot open it")
  t.equal(await raw.zscore(index, record.id), String(record.expiresAt), 'the index is scored by expiry')
})

t.test('records that fail to decode read as absent, are counted, and never throw', async (t) => {
  const logs = captureLogs()
  const { store, prefix } = await makeStore(t, { log: logs })
  const names = registryKeys(prefix)
  const keys = deriveRegistryKeys([K1])
  const valid = await store.register(session('alice'))
  const { bucket } = names.user('alice')

  const cases: Array<[string, (key: string, record: SessionRecord) => string]> = [
    ['garbage', () => 'garbage'],
    ['not sealed', (_key, record) => JSON.stringify(record)],
    ['sealed null', (key) => seal(keys, 'null', key)],
    ['sealed text that is not JSON', (key) => seal(keys, '{"id":', key)],
    ['wrong types', (key, record) => seal(keys, JSON.stringify({ ...record, createdAt: 'yesterday' }), key)],
    ['a missing field', (key, { device: _device, ...record }) => seal(keys, JSON.stringify(record), key)],
    ['an extra field', (key, record) => seal(keys, JSON.stringify({ ...record, admin: true }), key)],
    ['another session\'s record', (key, record) => seal(keys, JSON.stringify({ ...record, id: createSessionId() }), key)],
    ['a user of another bucket', (key, record) => seal(keys, JSON.stringify({ ...record, sub: otherBucketSub(bucket) }), key)],
    ['sealed for another key name', (_key, record) => seal(keys, JSON.stringify(record), names.record(bucket, valid.id))],
    ['sealed by a key not in the ring', (key, record) => seal(deriveRegistryKeys([K2]), JSON.stringify(record), key)]
  ]
  let expected = 0
  for (const [name, corrupt] of cases) {
    const record = await store.register(session('alice'))
    const key = names.record(bucket, record.id)
    await raw.set(key, corrupt(key, record), 'KEEPTTL')
    t.equal(await store.get(record.id), null, `${name}: get reads absent`)
    t.equal(await store.isRevoked(record.id), true, `${name}: not live`)
    t.equal(await store.touch(record.id), false, `${name}: touch writes nothing`)
    t.equal(await store.revoke(record.id, 'user'), false, `${name}: not reported revoked`)
    expected += 3
    t.equal(store.counters().undecodable, expected, `${name}: counted`)
  }
  t.same((await store.list('alice')).map((r) => r.id), [valid.id], 'list shows only the readable session')
  t.equal(store.counters().undecodable, expected + cases.length)
  t.equal(store.counters().revoked.user, 0)

  // The locator and the index are read with the same care.
  const badLocator = await store.register(session('alice'))
  await raw.set(names.locator(badLocator.id), '{zz}', 'KEEPTTL')
  t.equal(await store.get(badLocator.id), null, 'a malformed locator reads absent')
  const goneRecord = await store.register(session('alice'))
  await raw.del(names.record(bucket, goneRecord.id))
  t.equal(await store.get(goneRecord.id), null, 'a locator without a record reads absent')
  const before = store.counters().undecodable
  await raw.zadd(names.user('alice').index, String(Date.now() + 3_600_000), 'not-a-session-id')
  // list goes by the user's index, not the locator, so it still finds the record behind a bad locator.
  t.same((await store.list('alice')).map((r) => r.id).sort(), [valid.id, badLocator.id].sort(), 'only readable sessions are listed')
  t.ok(store.counters().undecodable > before, 'the malformed index entry is counted')
  await raw.sadd(names.sid('idp', 'corrupt'), 'not-a-session-id')
  t.same(await store.revokeBySid('idp', 'corrupt'), [])

  // revokeAll ends what is live and clears every unreadable entry from the index.
  const ended = await store.revokeAll('alice', { reason: 'admin' })
  t.same(ended.sort(), [valid.id, badLocator.id].sort(), 'the live sessions (a bad locator does not hide a record from its user)')
  t.equal(await raw.zcard(names.user('alice').index), 0, 'the index is empty: nothing unreadable lingers in it')
  t.same(await store.revokeAll('alice', { reason: 'admin' }), [])
  await raw.zadd(names.user('alice').index, String(Date.now() + 3_600_000), 'junk')
  t.same(await store.revokeAll('alice', { reason: 'admin' }), [], 'an index of nothing but junk ends nothing')
  t.equal(await raw.zcard(names.user('alice').index), 0, 'and is cleared')
  const lines = logs.lines.join('\n')
  t.match(lines, /session-record-unreadable/)
  t.notMatch(lines, /alice/, 'the log names what failed, never whose')
})

function otherBucketSub (bucket: string): string {
  const names = registryKeys('x:')
  for (let i = 0; i < 100; i++) if (names.user(`u${i}`).bucket !== bucket) return `u${i}`
  throw new Error('unreachable: 100 subs in one bucket')
}

function sameBucketSubs (): [string, string] {
  const names = registryKeys('x:')
  const seen = new Map<string, string>()
  // 4096 buckets: a collision comes within a few hundred subs.
  for (let i = 0; i < 10_000; i++) {
    const sub = `user-${i}`
    const bucket = names.user(sub).bucket
    const earlier = seen.get(bucket)
    if (earlier !== undefined) return [earlier, sub]
    seen.set(bucket, sub)
  }
  throw new Error('no bucket collision in 10000 subs')
}

t.test("a session planted in another user's index is neither listed for nor revoked by that user", async (t) => {
  const { store, prefix } = await makeStore(t)
  const names = registryKeys(prefix)
  const [victim, other] = sameBucketSubs()
  const planted = await store.register(session(victim))
  await store.register(session(other))
  await raw.zadd(names.user(other).index, String(planted.expiresAt), planted.id)
  t.same((await store.list(other)).map((r) => r.sub), [other])
  t.equal(store.counters().undecodable, 1)
  t.equal((await store.revokeAll(other, { reason: 'others' })).length, 1, "only the user's own session ended")
  t.equal(await store.isRevoked(planted.id), false, "the victim's session lives on")
  t.equal(await raw.zscore(names.user(other).index, planted.id), null, 'the planted entry is gone')
})

t.test('a rotated keyring still opens older records, and touch re-seals them with the newest key', async (t) => {
  const fc = fakeClock()
  const old = await makeStore(t, { keys: [K1], clock: fc.clock })
  const record = await old.store.register(session('alice'))
  const rotated = await makeStore(t, { keys: [K2, K1], clock: fc.clock, prefix: old.prefix })
  t.same(await rotated.store.get(record.id), record, 'the previous key still opens it')
  fc.tick(60_000)
  t.equal(await rotated.store.touch(record.id), true)
  const key = registryKeys(old.prefix).record(registryKeys(old.prefix).user('alice').bucket, record.id)
  t.equal((await raw.get(key))?.split('.')[1], deriveRegistryKeys([K2])[0].id, 'now sealed with the newest key')
  const newOnly = await makeStore(t, { keys: [K2], clock: fc.clock, prefix: old.prefix })
  t.equal((await newOnly.store.get(record.id))?.lastSeenAt, record.createdAt + 60_000, 'so the old key can leave the ring')
})

t.test('touch on another instance reads the record before it writes: one write per interval across the fleet', async (t) => {
  const fc = fakeClock()
  const a = await makeStore(t, { clock: fc.clock })
  const b = await makeStore(t, { clock: fc.clock, prefix: a.prefix })
  const { id } = await a.store.register(session('alice'))
  fc.tick(30_000)
  t.equal(await b.store.touch(id), false, 'B has never seen it, but the record is recent')
  fc.tick(30_000)
  t.equal(await a.store.touch(id), true, 'A writes at the interval')
  t.equal(await b.store.touch(id), false, 'B reads it fresh and writes nothing')
})

t.test('revokeAll works through a user with more sessions than one batch', async (t) => {
  const { store, prefix } = await makeStore(t)
  const ids = await Promise.all(Array.from({ length: 520 }, async () => (await store.register(session('busy'))).id))
  const keep = ids[260]
  const ended = await store.revokeAll('busy', { except: keep, reason: 'admin' })
  t.equal(ended.length, 519)
  t.notOk(ended.includes(keep))
  t.same((await store.list('busy')).map((r) => r.id), [keep])
  t.equal(await raw.zcard(registryKeys(prefix).user('busy').index), 1)
  t.equal((await raw.keys(`${prefix}sess:{*`)).length, 2, 'one record and its index remain')
  t.equal((await raw.keys(`${prefix}sess:id:*`)).length, 520, 'the locators stay until expiry, so no ended id can be registered again')
})

t.test('Redis unreachable during a revocation: the caller gets FSS_STORE_UNAVAILABLE and nothing is revoked', async (t) => {
  const a = await makeStore(t, { commandTimeout: 300 })
  const b = await makeStore(t, { prefix: a.prefix })
  const record = await a.store.register(session('alice', { sid: 'sid-1' }))
  const other = await a.store.register(session('alice'))
  redis.pause()
  t.teardown(() => redis.resume())
  await t.rejects(a.store.revoke(record.id, 'user'), { code: 'FSS_STORE_UNAVAILABLE' }, 'a hung Redis costs one command timeout')
  await t.rejects(a.store.revokeAll('alice', { except: other.id, reason: 'others' }), { code: 'FSS_STORE_UNAVAILABLE' })
  await t.rejects(a.store.revokeBySid('idp', 'sid-1'), { code: 'FSS_STORE_UNAVAILABLE' })
  redis.resume()
  t.ok(await waitReady(a.client, 5000))
  t.same(a.store.counters().revoked, { logout: 0, user: 0, others: 0, admin: 0, backchannel: 0, evicted: 0 }, 'no revocation counted')
  t.equal(await b.store.isRevoked(record.id), false, 'the session is still live for every instance')
  t.equal((await b.store.list('alice')).length, 2)

  await redis.kill()
  await t.rejects(a.store.revoke(record.id, 'user'), { code: 'FSS_STORE_UNAVAILABLE' }, 'a dead Redis fails at once')
  await t.rejects(a.store.register(session('alice')), { code: 'FSS_STORE_UNAVAILABLE' })
  await t.rejects(a.store.isRevoked(record.id), { code: 'FSS_STORE_UNAVAILABLE' }, 'the store never guesses')
  await redis.restart()
  t.ok(await waitReady(a.client, 10_000))
  t.ok(await waitReady(raw, 10_000))
})
