import t from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { startRedis, freePort } from './fixtures/redis-server.ts'
import { redisApp } from './fixtures/redis-app.ts'
import { createRedisClient, guard, waitReady, reconnectDelay } from '../lib/redis/client.ts'
import redisTokenStore from '../plugins/redis-token-store.ts'
import secretKeys from '../plugins/secret-keys.ts'

const K = randomBytes(32)
const tok = { access_token: 'at-' + randomBytes(24).toString('base64url'), token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) + 3600 }

t.test('Redis down: token routes answer 503 with a code, other routes serve, /health fails; all recover when Redis returns', async (t) => {
  const redis = await startRedis(t)
  const { app, logs } = await redisApp(t, [K], { url: redis.url, keyPrefix: 'out:', commandTimeout: 300 })
  const first = await app.inject({ method: 'POST', url: '/token', payload: tok })
  const cookies = { session: first.cookies.find((c) => c.name === 'session')?.value ?? '' }
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)

  await redis.kill()
  const down = await app.inject({ url: '/token', cookies })
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'FSS_STORE_UNAVAILABLE')
  t.equal((await app.inject({ method: 'POST', url: '/token', payload: tok, cookies })).json().code, 'FSS_STORE_UNAVAILABLE')
  t.equal((await app.inject({ url: '/public' })).statusCode, 200, 'routes without tokens keep serving')
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 503)
  t.match(health.json().checks.find((c: { name: string }) => c.name === 'redis'), { status: 'fail' })

  await redis.restart()
  t.ok(await waitReady(app.redisTokenStore.client, 10_000), 'ioredis reconnected by itself')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  // No persistence in the test server: the record is gone, the session reads as "log in again", not an error.
  t.same((await app.inject({ url: '/token', cookies })).json(), { token: null })
  const again = await app.inject({ method: 'POST', url: '/token', payload: tok, cookies })
  t.equal(again.statusCode, 200)
  t.same((await app.inject({ url: '/token', cookies })).json(), { token: tok })
  t.ok(logs.lines.some((l) => l.includes('Redis unavailable')), 'the outage is logged once')
  t.ok(logs.lines.some((l) => l.includes('Redis available again')))
  logs.assertNoSecrets(t, [tok.access_token, cookies.session])
})

t.test('a hung Redis (accepts, never answers) costs one command timeout, not a hung request', async (t) => {
  const redis = await startRedis(t)
  const { app } = await redisApp(t, [K], { url: redis.url, keyPrefix: 'hang:', commandTimeout: 300 })
  redis.pause()
  t.teardown(() => redis.resume())
  const res = await app.inject({ url: '/token', cookies: {} })
  t.equal(res.statusCode, 200, 'no reference in the session: Redis is not asked')
  const stored = await app.inject({ method: 'POST', url: '/token', payload: tok })
  t.equal(stored.statusCode, 503)
  t.equal(stored.json().code, 'FSS_STORE_UNAVAILABLE')
  const health = await app.redisTokenStore.health()
  t.same(health.healthy, false)
  redis.resume()
  t.ok(await waitReady(app.redisTokenStore.client, 10_000))
})

t.test('start-up with Redis unreachable: the app starts, unhealthy, and serves routes without tokens', async (t) => {
  const port = await freePort()
  const { app, logs } = await redisApp(t, [K], { url: `redis://127.0.0.1:${port}`, startupWait: 200 })
  t.equal((await app.inject({ url: '/public' })).statusCode, 200)
  t.equal((await app.inject({ url: '/health' })).statusCode, 503)
  t.equal((await app.redisTokenStore.health()).healthy, false)
  t.ok(logs.lines.some((l) => l.includes('not reachable at start-up')))
})

t.test('a shared client is used as is and left open on close', async (t) => {
  const redis = await startRedis(t)
  const shared = new Redis(redis.url)
  t.teardown(() => shared.quit())
  await waitReady(shared, 5000)
  const { app } = await redisApp(t, [K], { client: shared, keyPrefix: 'shared:' })
  t.equal(app.redisTokenStore.client, shared)
  t.equal((await app.inject({ method: 'POST', url: '/token', payload: tok })).statusCode, 200)
  t.equal((await shared.keys('shared:tok:*')).length, 1)
  await app.close()
  t.equal(shared.status, 'ready')
})

t.test('without `url`, the owned client connects to REDIS_URL', async (t) => {
  const redis = await startRedis(t)
  const saved = process.env.REDIS_URL
  process.env.REDIS_URL = redis.url
  t.teardown(() => { restoreEnv(saved) })
  const { app } = await redisApp(t, [K], { keyPrefix: 'env:' })
  restoreEnv(saved)
  t.equal(app.redisTokenStore.client.status, 'ready')
  t.equal((await app.inject({ method: 'POST', url: '/token', payload: tok })).statusCode, 200)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.quit())
  t.equal((await raw.keys('env:tok:*')).length, 1, 'the record landed in the server REDIS_URL names')
})

t.test('without `url` or REDIS_URL, the owned client targets redis://127.0.0.1:6379', async (t) => {
  const saved = process.env.REDIS_URL
  delete process.env.REDIS_URL
  t.teardown(() => { restoreEnv(saved) })
  // Whether a Redis runs on 6379 here is not ours to know: only the target is asserted.
  const { app } = await redisApp(t, [K], { keyPrefix: 'default:', startupWait: 1 })
  restoreEnv(saved)
  t.match((app.redisTokenStore.client as Redis).options, { host: '127.0.0.1', port: 6379, db: 0 })
})

function restoreEnv (saved: string | undefined): void {
  if (saved === undefined) delete process.env.REDIS_URL
  else process.env.REDIS_URL = saved
}

t.test('registration refuses bad options and a missing keyring', async (t) => {
  const bare = Fastify()
  t.teardown(() => bare.close())
  // A declared dependency: Fastify names the missing plugin.
  await t.rejects(async () => { await bare.register(redisTokenStore, { url: 'redis://127.0.0.1:1' }).ready() }, { code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED', message: /fastify-session-suite\/secret-keys/ })
  const withKeys = Fastify()
  t.teardown(() => withKeys.close())
  await withKeys.register(secretKeys, { env: { SESSION_SECRET_KEY: K.toString('hex') } })
  await t.rejects(async () => { await withKeys.register(redisTokenStore, { url: 'http://x', commandTimeout: 0 } as object).ready() }, { code: 'FSS_OPTIONS_INVALID' })
})

t.test('a command Redis refuses is an outage to the caller, with Redis\'s reason kept as the cause', async (t) => {
  const redis = await startRedis(t)
  const { app } = await redisApp(t, [K], { url: redis.url, keyPrefix: 'wrong:' })
  const client = app.redisTokenStore.client as Redis
  await client.rpush('wrong:list', 'x')
  await t.rejects(guard(client, 1000, () => client.get('wrong:list')), { code: 'FSS_STORE_UNAVAILABLE', statusCode: 503, cause: /WRONGTYPE/ })
  t.equal(await guard(client, 1000, () => client.lpop('wrong:list')), 'x', 'a command that succeeds passes its answer through')
})

t.test('reconnect backoff grows and is capped', async (t) => {
  t.equal(reconnectDelay(0), 50)
  t.equal(reconnectDelay(3), 400)
  t.equal(reconnectDelay(50), 2000)
})

t.test('without the ioredis package, creating a client is a coded error naming the package and the install command', async (t) => {
  // A package name that is not installed stands where ioredis would be missing.
  const err = await createRedisClient({ url: 'redis://127.0.0.1:1', commandTimeout: 100 }, 'fss-not-installed-redis-client')
    .then(() => null, (e: Error & { code: string }) => e)
  t.equal(err?.code, 'FSS_REDIS_CLIENT_MISSING')
  t.match(err?.message, /fss-not-installed-redis-client[\s\S]*`npm install fss-not-installed-redis-client`/)
  t.match(err?.cause, { message: /Cannot find package 'fss-not-installed-redis-client'/ }, 'the loader\'s own error is kept as the cause')
})
