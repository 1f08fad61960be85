// What a registry does while Redis is unreachable, on a fake clock handed to
// the registry (ioredis keeps its real timers, so real outages happen for real).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { createRedisClient, waitReady } from '../lib/redis/client.ts'
import { createSessionRegistry, type SessionRegistry, type SessionRegistryOptions } from '../lib/sessions/registry.ts'
import type { Clock } from '../lib/sessions/contract.ts'
import { EventEmitter, once } from 'node:events'
import { Writable } from 'node:stream'
import { fakeClock, flushedOn, revokedOn, session } from './sessions-helper.ts'

const K = randomBytes(32)

interface Logs {
  lines: string[]
  stream: Writable
  /** Resolves once a line matches; rejects after `withinMs`. */
  line: (pattern: RegExp, withinMs?: number) => Promise<void>
}

function logCapture (): Logs {
  const lines: string[] = []
  const written = new EventEmitter()
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(chunk.toString())
      written.emit('line')
      done()
    }
  })
  return {
    lines,
    stream,
    async line (pattern, withinMs = 5000) {
      const signal = AbortSignal.timeout(withinMs)
      while (!lines.some((l) => pattern.test(l))) await once(written, 'line', { signal })
    }
  }
}

interface Instance { registry: SessionRegistry, client: Redis, subscriber: Redis, logs: Logs }

async function instance (t: Test, redis: RedisServer, options: SessionRegistryOptions & { clock?: Clock, url?: string } = {}): Promise<Instance> {
  const { clock, url, ...rest } = options
  const commandTimeout = rest.commandTimeout ?? 1000
  const client = await createRedisClient({ url: redis.url, commandTimeout }) as unknown as Redis
  const subscriber = await createRedisClient({ url: url ?? redis.url, commandTimeout }) as unknown as Redis
  t.teardown(() => client.disconnect())
  if (!await waitReady(client, 5000)) throw new Error('Redis not ready')
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream } })
  t.teardown(() => app.close())
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: 'out:', ...rest }, { client, subscriber, keys: [K], clock, log: app.log })
  t.teardown(() => registry.close())
  return { registry, client, subscriber, logs }
}

t.test('Redis down: the last view is trusted for outageTrust seconds, then checks answer 503; a revocation is never forgotten', async (t) => {
  const redis = await startRedis(t)
  const writer = await instance(t, redis)
  const fc = fakeClock()
  const b = await instance(t, redis, { outageTrust: 5, heartbeatInterval: 500, clock: fc.clock })
  await flushedOn(b.registry)
  const cached = await writer.registry.register(session('alice'))
  const unseen = await writer.registry.register(session('alice'))
  const revoked = await writer.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(cached.id), false)
  const heard = revokedOn(b.registry, revoked.id)
  await writer.registry.revoke(revoked.id, 'user')
  await heard

  await redis.kill()
  fc.tick(5000)
  t.equal(await b.registry.isRevoked(cached.id), false, 'within outageTrust the last view answers')
  t.equal(await b.registry.isRevoked(revoked.id), true)
  await t.rejects(b.registry.isRevoked(unseen.id), { code: 'FSS_STORE_UNAVAILABLE', statusCode: 503 }, 'a session the view never saw cannot be vouched for')
  fc.tick(1)
  await t.rejects(b.registry.isRevoked(cached.id), { code: 'FSS_STORE_UNAVAILABLE', statusCode: 503 }, 'past outageTrust: 503, never a guess')
  t.equal(await b.registry.isRevoked(revoked.id), true, 'revoked is final, so it needs no Redis')
  t.match(b.registry.counters().view, { unavailable: 2 })
  t.match(await b.registry.health(), { kind: 'redis', healthy: false, detail: /Redis unreachable/ })
  await t.rejects(b.registry.revoke(cached.id, 'user'), { code: 'FSS_STORE_UNAVAILABLE' })
  await t.rejects(b.registry.isRevoked(cached.id), { code: 'FSS_STORE_UNAVAILABLE' }, 'a failed revocation marks nothing revoked')

  const flushed = flushedOn(b.registry)
  await redis.restart()
  await flushed
  t.ok(await waitReady(b.client, 10_000))
  t.ok(await waitReady(writer.client, 10_000))
  // The test server keeps no data, so the session is gone: it reads as
  // revoked (fail closed), never as an error.
  t.equal(await b.registry.isRevoked(cached.id), true)
  const fresh = await writer.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(fresh.id), false)
  const hits = b.registry.counters().view.hits
  t.equal(await b.registry.isRevoked(fresh.id), false)
  t.equal(b.registry.counters().view.hits, hits + 1, 'subscribed again: memory answers again')
  const lines = b.logs.lines.join('\n')
  t.equal(lines.match(/session revocation feed lost/g)?.length, 1, 'the loss is logged once, not per reconnect attempt')
  t.match(lines, /subscribed again; the view was flushed/)
})

t.test('a hung Redis: unanswered heartbeats stop vouching; an answered one vouches again, without a flush', async (t) => {
  const redis = await startRedis(t)
  const writer = await instance(t, redis)
  const fc = fakeClock()
  const b = await instance(t, redis, { outageTrust: 2, heartbeatInterval: 500, commandTimeout: 300, clock: fc.clock })
  await flushedOn(b.registry)
  const s = await writer.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(s.id), false)

  fc.tick(500)
  await b.subscriber.ping() // replies come in order: the heartbeat's came first
  fc.tick(2000)
  const before = b.registry.counters().view
  t.equal(await b.registry.isRevoked(s.id), false)
  t.match(b.registry.counters().view, { hits: before.hits + 1, misses: before.misses }, 'answered from memory: the heartbeat moved the trust window on')

  redis.pause()
  t.teardown(() => redis.resume())
  fc.tick(500) // a heartbeat Redis will not answer
  await t.rejects(b.subscriber.ping(), 'the subscriber connection is hung too')
  fc.tick(1)
  await t.rejects(b.registry.isRevoked(s.id), { code: 'FSS_STORE_UNAVAILABLE' }, 'past outageTrust, a check costs one command timeout and fails')
  t.equal(b.registry.counters().feed?.subscriptions, 1, 'the connection never dropped')

  redis.resume()
  fc.tick(500)
  await b.subscriber.ping()
  const after = b.registry.counters().view
  t.equal(await b.registry.isRevoked(s.id), false)
  t.match(b.registry.counters().view, { hits: after.hits + 1, misses: after.misses }, 'an answered heartbeat vouches again')
  t.equal(b.registry.counters().view.flushes, 1, 'nothing was missed, so nothing was flushed')
})

t.test('a subscription Redis refuses (ACL): every check asks Redis, and /health says why', async (t) => {
  const redis = await startRedis(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  // Redis 7 gives a new ACL user no channels unless granted.
  await admin.call('ACL', 'SETUSER', 'nochannels', 'on', '>pw', '~*', '+@all', 'resetchannels')
  const writer = await instance(t, redis)
  const b = await instance(t, redis, { url: `redis://nochannels:pw@127.0.0.1:${redis.port}` })
  await b.logs.line(/could not subscribe/)
  t.match(b.logs.lines.join('\n'), /NOPERM/)
  t.match(await b.registry.health(), { healthy: false, detail: /not subscribed/ })
  const s = await writer.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(s.id), false)
  t.equal(await b.registry.isRevoked(s.id), false)
  await writer.registry.revoke(s.id, 'user')
  t.equal(await b.registry.isRevoked(s.id), true, 'never stale: nothing was believed without Redis')
  t.match(b.registry.counters().view, { hits: 0, misses: 3 })
  t.ok((b.registry.counters().feed?.subscribeFailures ?? 0) >= 1, 'the refusal is counted')
  t.equal(b.logs.lines.filter((l) => /could not subscribe/.test(l)).length, 1, 'logged once per run of failures, not once per retry')

  // The channel granted: the next heartbeat's retry subscribes, without a reconnect.
  const flushed = flushedOn(b.registry)
  await admin.call('ACL', 'SETUSER', 'nochannels', 'allchannels')
  await flushed
  await b.logs.line(/subscribed again/)
  t.match(await b.registry.health(), { healthy: true })
  const s2 = await writer.registry.register(session('alice'))
  t.equal(await b.registry.isRevoked(s2.id), false)
  t.equal(await b.registry.isRevoked(s2.id), false)
  t.equal(b.registry.counters().view.hits, 1, 'subscribed: memory answers again')
})

t.test('a retry never overlaps a SUBSCRIBE still waiting for its answer', async (t) => {
  const redis = await startRedis(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  await admin.call('ACL', 'SETUSER', 'nochannels', 'on', '>pw', '~*', '+@all', 'resetchannels')
  const fc = fakeClock()
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  await waitReady(client, 5000)
  // Not connected yet when the registry takes it: the connection opens on a later turn of the event loop.
  const subscriber = await createRedisClient({ url: `redis://nochannels:pw@127.0.0.1:${redis.port}`, commandTimeout: 1000 }) as unknown as Redis
  t.equal(subscriber.status, 'connecting')
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: 'overlap:' }, { client, subscriber, keys: [K], clock: fc.clock })
  t.teardown(() => registry.close())
  // The registry's 'ready' listener came first and sent SUBSCRIBE; heartbeats
  // fire before its answer can arrive.
  await new Promise<void>((resolve) => subscriber.once('ready', () => {
    fc.tick(500)
    fc.tick(500)
    resolve()
  }))
  await subscriber.ping()
  t.equal(registry.counters().feed?.subscribeFailures, 1, 'one SUBSCRIBE was sent, and refused')
  fc.tick(500)
  await subscriber.ping()
  t.equal(registry.counters().feed?.subscribeFailures, 2, 'the next heartbeat retried it')
})

t.test('the feed ignores words that are not session ids, and subscribes at once on a ready connection', async (t) => {
  const redis = await startRedis(t)
  const publisher = new Redis(redis.url)
  t.teardown(() => publisher.quit())
  const subscriber = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.ok(await waitReady(subscriber, 5000))
  const client = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as unknown as Redis
  t.teardown(() => client.disconnect())
  await waitReady(client, 5000)
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: 'feed:' }, { client, subscriber, keys: [K] })
  t.teardown(() => registry.close())
  await flushedOn(registry)
  const s = await registry.register(session('alice'))
  await publisher.publish('feed:sess:revoked', 'nothing here')
  const heard = revokedOn(registry, s.id)
  await publisher.publish('feed:sess:revoked', `junk ${s.id} ../../etc`)
  t.same(await heard, [s.id])
  t.same(registry.counters().feed, { messages: 2, invalidations: 1, malformed: 4, subscriptions: 1, subscribeFailures: 0 })
  const ended = once(subscriber, 'end')
  await registry.close()
  await registry.close()
  await ended
  t.equal(subscriber.status, 'end', 'its subscriber connection is closed, and closing twice is harmless')
  t.match(await registry.health(), { healthy: false, detail: /not subscribed/ })
})

t.test('closing a registry during an outage does not wait for Redis', async (t) => {
  const redis = await startRedis(t)
  const b = await instance(t, redis)
  await flushedOn(b.registry)
  await redis.kill()
  await new Promise((resolve) => b.subscriber.once('reconnecting', resolve))
  const timeout = new Promise((_resolve, reject) => setTimeout(() => reject(new Error('close() hung')), 5000).unref())
  await Promise.race([b.registry.close(), timeout])
  t.match(await b.registry.health(), { healthy: false })
  t.equal(b.registry.counters().feed?.subscriptions, 1)
})
