// The root plugin with `redis` + `oauth`: a real redis-server, a real OIDC
// provider, a real HTTP server and a cookie-jar client. The login's token goes
// to Redis (sealed), the cookie carries a reference only, /health reports
// Redis, and a Redis outage is a 503 with a code on token routes only.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import sessionSuite, { secretKeys, session, redisTokenStore, oauthTokens, type SessionSuiteOptions } from '../index.ts'
import { waitReady } from '../lib/redis/client.ts'
import { lockKey } from '../lib/redis/lock.ts'
import { fingerprint } from '../lib/digest.ts'
import { build, captureLogs, secretForms, type LogCapture } from './helper.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'

const key = randomBytes(32)
const CLIENT_SECRET = 'root-redis-client-secret'
const env = { SESSION_SECRET_KEY: key.toString('hex') }

interface Rig { app: FastifyInstance, origin: string, logs: LogCapture, redis: RedisServer, oidc: OidcServer, raw: Redis }

/** Listens first: the callback URI must name the port before the suite registers. */
async function start (t: Test): Promise<Rig> {
  const [redis, oidc] = await Promise.all([startRedis(t), startOidcServer()])
  t.teardown(() => oidc.stop())
  const raw = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  await raw.connect()
  t.teardown(() => raw.disconnect())
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env },
    oauth: {
      provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token },
      clientId: 'root-redis',
      clientSecret: CLIENT_SECRET,
      scope: ['openid', 'profile'],
      callbackUri: `${origin}/callback`,
      timeout: 2000
    },
    redis: { url: redis.url, keyPrefix: 'rr:', commandTimeout: 300 }
  })
  app.get('/api/token', async (request) => ({ fp: fingerprint(await request.tokens.accessToken()) }))
  app.get('/api/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  // An expired token with a refresh token: the next accessToken() refreshes through the fleet lock.
  app.post('/api/expire', async (request) => {
    const meta = await request.tokens.metadata()
    await request.tokens.store({ access_token: 'expired-access-' + randomBytes(12).toString('hex'), token_type: 'Bearer', expires_at: 1000, refresh_token: 'refresh-' + randomBytes(12).toString('hex') })
    return { had: meta !== null }
  })
  app.get('/public', async () => ({ ok: true }))
  await app.ready()
  return { app, origin, logs, redis, oidc, raw }
}

const redisCheck = (body: { checks: Array<{ name: string }> }) => body.checks.find((c) => c.name === 'redis')

t.test('a login through the root plugin keeps the token in Redis, sealed, and the cookie small', async (t) => {
  const { origin, logs, oidc, raw } = await start(t)
  const b = new HttpBrowser(origin)
  const { callback } = await b.login()
  t.equal(callback.status, 302, 'the callback redirects after storing the token')

  const cookies = await b.jar.getCookies(origin + '/')
  const session = cookies.filter((c) => c.key.startsWith('__Host-session'))
  t.equal(session.length, 1, 'one session cookie, no chunks')
  t.ok(session[0].value.length < 300, `the cookie holds a reference only (${session[0].value.length} chars)`)

  const records = await raw.keys('rr:tok:*')
  t.equal(records.length, 1, 'one token record in Redis')
  const sealed = await raw.get(records[0]) as string
  t.match(sealed, /^v1\.[0-9a-f]{8}\./, 'the record is sealed')
  const issued = oidc.issued()
  t.ok(issued.length >= 2, 'the provider issued a code and tokens')
  t.notOk(issued.flatMap(secretForms).some((f) => sealed.includes(f) || session[0].value.includes(f)), 'neither Redis nor the cookie holds a token value')

  const token = await b.request('/api/token')
  t.equal(token.status, 200, 'the token is read back from Redis')
  t.match(token.json(), { fp: /^[0-9a-f]+$/ })

  // The refresh goes through the fleet lock: its hand-off lands in Redis.
  t.same((await b.request('/api/expire', { method: 'POST' })).json(), { had: true })
  const before = oidc.tokenCalls.refresh_token
  t.equal((await b.request('/api/token')).status, 200)
  t.equal(oidc.tokenCalls.refresh_token, before + 1, 'one refresh at the provider')
  t.equal((await raw.keys('rr:handoff:*')).length, 1, 'the refresh result was handed to the fleet through Redis')

  const health = await b.request('/health')
  t.equal(health.status, 200)
  t.match(redisCheck(health.json()), { name: 'redis', status: 'pass' })

  const logout = await b.request('/logout', { method: 'POST' })
  t.same(logout.json(), { loggedOut: true, revoked: false })
  t.same(await raw.keys('rr:tok:*'), [], 'logout deleted the record')
  logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, key, session[0].value])
})

t.test('Redis down: /health answers 503 and token routes 503 FSS_STORE_UNAVAILABLE; service returns with Redis', async (t) => {
  const { app, origin, logs, redis, oidc } = await start(t)
  const b = new HttpBrowser(origin)
  await b.login()
  const sessionBefore = await b.cookieValues()
  t.equal((await b.request('/api/token')).status, 200)

  await redis.kill()
  const health = await b.request('/health')
  t.equal(health.status, 503)
  t.equal(health.json().status, 'unhealthy')
  t.match(redisCheck(health.json()), { status: 'fail', detail: /token store unreachable/ })
  for (const [url, method] of [['/api/token', 'GET'], ['/api/meta', 'GET'], ['/logout', 'POST']] as const) {
    const res = await b.request(url, { method })
    t.equal(res.status, 503, `${method} ${url}`)
    t.match(res.json(), { statusCode: 503, code: 'FSS_STORE_UNAVAILABLE' }, `${method} ${url} answers with the code`)
  }
  t.same(await b.cookieValues(), sessionBefore, 'a logout that could not reach Redis leaves the session as it was')
  t.same((await b.request('/public')).json(), { ok: true }, 'routes without tokens keep serving')

  await redis.restart()
  t.ok(await waitReady(app.redisTokenStore.client, 10_000), 'the client reconnected by itself')
  t.equal((await b.request('/health')).status, 200)
  // The test server keeps nothing across a restart: the user logs in again, not an error.
  t.match((await b.request('/api/token')).json(), { statusCode: 401, code: 'FSS_TOKEN_MISSING' })
  logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, key, ...sessionBefore])
})

t.test('the redis option needs oauth and is the only token store', async (t) => {
  const oauth = { provider: { authorizeUrl: 'http://127.0.0.1:9/a', tokenUrl: 'http://127.0.0.1:9/t' }, clientId: 'x', clientSecret: '', callbackUri: 'http://127.0.0.1:9/callback' }
  const store = { get: async () => null, set: async () => {}, delete: async () => {} }
  const cases: Array<[SessionSuiteOptions, RegExp]> = [
    [{ redis: {} }, /option redis: .*needs the oauth option/],
    [{ oauth: { ...oauth, store }, redis: {} }, /option oauth\.store: give either oauth\.store or redis/],
    // The store seals tokens with the keyring; `session.key` skips loading it. Refused by name, up front.
    [{ oauth, session: { key }, secret: undefined, redis: {} }, /option redis: needs the keyring: session\.key cannot be combined with redis/],
    [{ oauth, redis: { url: 'http://127.0.0.1:6379' } }, /option redis\.url/],
    [{ oauth, redis: 'yes' } as unknown as SessionSuiteOptions, /option redis:/],
    // A lock that can expire during one provider call lets a second instance replay the refresh token.
    [{ oauth: { ...oauth, timeout: 3000 }, redis: { lockTtl: 3000 } }, /option redis\.lockTtl: must be above oauth\.timeout \(3000 ms\)/],
    [{ oauth, redis: { lockTtl: 10_000 } }, /option redis\.lockTtl: must be above oauth\.timeout \(10000 ms\)/]
  ]
  for (const [opts, message] of cases) {
    const app = await build(t)
    await t.rejects(Promise.resolve(app.register(sessionSuite, { secret: { env }, ...opts }).ready()), { code: 'FSS_OPTIONS_INVALID', message }, message.source)
  }
})

t.test('the fleet refresh lock outlives one provider call: default oauth.timeout + 5 s', async (t) => {
  const redis = await startRedis(t)
  const raw = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  await raw.connect()
  t.teardown(() => raw.disconnect())
  const oauth = { provider: { authorizeUrl: 'http://127.0.0.1:9/a', tokenUrl: 'http://127.0.0.1:9/t' }, clientId: 'x', clientSecret: 'not-used', callbackUri: 'http://127.0.0.1:9/callback' }
  const cases: Array<[SessionSuiteOptions['oauth'], SessionSuiteOptions['redis'], number]> = [
    [oauth, {}, 15_000], // the default oauth.timeout, 10 s, + 5 s
    [{ ...oauth, timeout: 2000 }, {}, 7000],
    [{ ...oauth, timeout: 2000 }, { lockTtl: 2001 }, 2001] // given and above the timeout: kept
  ]
  for (const [i, [oauthOpts, redisOpts, expected]] of cases.entries()) {
    const app = await build(t)
    await app.register(sessionSuite, { secret: { env }, oauth: oauthOpts, redis: { url: redis.url, keyPrefix: `lt${i}:`, ...redisOpts } })
    await app.ready()
    const release = await app.redisTokenStore.lock.acquire('some-refresh-token')
    t.ok(release !== null)
    const ttl = await raw.pttl(lockKey(`lt${i}:`, 'some-refresh-token'))
    t.ok(ttl > expected - 1000 && ttl <= expected, `lock TTL ${ttl} ms is about ${expected} ms`)
    await release?.()
  }
})

t.test('registered one by one, the plugins keep the same rule and the same default for the lock', async (t) => {
  const redis = await startRedis(t)
  const raw = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  await raw.connect()
  t.teardown(() => raw.disconnect())
  const oauth = { provider: { authorizeUrl: 'http://127.0.0.1:9/a', tokenUrl: 'http://127.0.0.1:9/t' }, clientId: 'x', clientSecret: 'not-used', callbackUri: 'http://127.0.0.1:9/callback' }
  const parts = async (prefix: string, timeout: number, lockTtl?: number): Promise<FastifyInstance> => {
    const app = await build(t)
    await app.register(secretKeys, { env })
    await app.register(session)
    await app.register(redisTokenStore, { url: redis.url, keyPrefix: prefix, ...(lockTtl !== undefined && { lockTtl }) })
    const { store, refreshLock } = app.redisTokenStore
    await app.register(oauthTokens, { ...oauth, timeout, store, refreshLock })
    return app
  }
  // A lock that can expire during one provider call lets a second instance replay the refresh token.
  await t.rejects(parts('one:', 3000, 3000), { code: 'FSS_OPTIONS_INVALID', message: /option redis\.lockTtl: must be above oauth\.timeout \(3000 ms\)/ })
  await t.rejects(parts('two:', 20_000, 15_000), { code: 'FSS_OPTIONS_INVALID', message: /redis\.lockTtl: .*20000 ms/ }, 'a lockTtl fine for the default timeout, too short for this one')

  const app = await parts('three:', 20_000)
  await app.ready()
  const release = await app.redisTokenStore.lock.acquire('some-refresh-token')
  const ttl = await raw.pttl(lockKey('three:', 'some-refresh-token'))
  t.ok(ttl > 24_000 && ttl <= 25_000, `without lockTtl the lock follows oauth.timeout + 5 s: ${ttl} ms`)
  await release?.()
})
