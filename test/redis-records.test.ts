// Records read back from Redis are checked like any token: a token record or a
// refresh hand-off that opens with the keyring but is not the expected shape
// (not JSON, null, a wrong type, an absurd expiry, extra fields) reads as "no
// token" with a counter, never a 500 and never a token that lives for
// centuries. A hand-off that cannot be used counts its refresh token as used
// up: no instance sends it again. Real Redis, real OIDC server, root plugin.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import sessionSuite from '../index.ts'
import secretKeys from '../plugins/secret-keys.ts'
import session from '../plugins/session.ts'
import redisTokenStore from '../plugins/redis-token-store.ts'
import oauthTokens from '../plugins/oauth-tokens.ts'
import { deriveStoreKeys, seal } from '../lib/redis/seal.ts'
import { handoffKey } from '../lib/redis/fleet-refresh.ts'
import { isStoredToken } from '../lib/oauth/token.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'

const key = randomBytes(32)
const storeKeys = deriveStoreKeys([key])
let redis: RedisServer
let oidc: OidcServer
let raw: Redis
t.before(async () => {
  [redis, oidc] = await Promise.all([startRedis(t), startOidcServer()])
  raw = new Redis(redis.url)
})
t.teardown(async () => {
  await raw.quit()
  await oidc.stop()
})

interface Rig { app: FastifyInstance, origin: string, logs: LogCapture, prefix: string }

let apps = 0
async function start (t: Test, prefix = `rec${++apps}:`): Promise<Rig> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env: { SESSION_SECRET_KEY: key.toString('hex') } },
    oauth: {
      provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token },
      clientId: 'records',
      clientSecret: 'records-secret',
      callbackUri: `${origin}/callback`,
      timeout: 2000,
      refreshBackoff: 5
    },
    redis: { url: redis.url, keyPrefix: prefix, commandTimeout: 1000 }
  })
  app.get('/api/token', async (request) => ({ ok: typeof await request.tokens.accessToken() === 'string' }))
  app.get('/api/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  app.post('/api/store', async (request) => {
    await request.tokens.store(request.body)
    return { stored: true }
  })
  await app.ready()
  return { app, origin, logs, prefix }
}

async function storeToken (rig: Rig, token: Record<string, unknown>): Promise<HttpBrowser> {
  const b = new HttpBrowser(rig.origin)
  const res = await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(token) })
  if (res.status !== 200) throw new Error(`store answered ${res.status}`)
  return b
}

async function onlyRecord (prefix: string): Promise<string> {
  const keys = await raw.keys(`${prefix}tok:*`)
  if (keys.length !== 1) throw new Error(`expected one record, found ${keys.length}`)
  return keys[0]
}

const nowS = (): number => Math.floor(Date.now() / 1000)
const good = (): Record<string, unknown> => ({ access_token: 'rec-at-' + randomBytes(12).toString('hex'), token_type: 'Bearer', expires_at: nowS() + 3600, expires_in: 3600 })

t.test('a token record that opens but is not a valid token reads as no token, counted, never a 500', async (t) => {
  const rig = await start(t)
  const b = await storeToken(rig, good())
  const recKey = await onlyRecord(rig.prefix)
  const counters = rig.app.redisTokenStore.counters
  const bad: Array<[string, string]> = [
    ['not JSON', 'access_token=x'],
    ['truncated JSON', '{"access_token":'],
    ['null', 'null'],
    ['a number', '5'],
    ['a string', '"token"'],
    ['an array', JSON.stringify([good()])],
    ['an empty object', '{}'],
    ['an extra field', JSON.stringify({ ...good(), user: 'x' })],
    ['expires_at centuries ahead', JSON.stringify({ ...good(), expires_at: 9_999_999_999 })],
    ['expires_at in milliseconds', JSON.stringify({ ...good(), expires_at: Date.now() })],
    ['expires_at a string', JSON.stringify({ ...good(), expires_at: String(nowS() + 60) })],
    ['token_type bearer (never stored that way)', JSON.stringify({ ...good(), token_type: 'bearer' })],
    ['an empty access_token', JSON.stringify({ ...good(), access_token: '' })],
    ['CR LF in the access_token', JSON.stringify({ ...good(), access_token: 'a\r\nX-Injected: 1' })]
  ]
  for (const [what, plaintext] of bad) {
    const before = counters.rejectedRecords
    await raw.set(recKey, seal(storeKeys, plaintext, recKey), 'KEEPTTL')
    const meta = await b.request('/api/meta')
    t.equal(meta.status, 200, what)
    t.same(meta.json(), { meta: null }, `${what}: no token`)
    const token = await b.request('/api/token')
    t.equal(token.status, 401, `${what}: a login is asked for`)
    t.equal(token.json().code, 'FSS_TOKEN_MISSING')
    t.equal(counters.rejectedRecords, before + 2, `${what}: counted on each read`)
  }
  t.ok(rig.logs.lines.some((l) => l.includes('"event":"token-record-invalid"')), 'logged with an event name')
  rig.logs.assertNoSecrets(t, ['X-Injected', 'rec-at-'])
})

t.test('a record key holding another Redis type reads as no token, counted, never a 503; the next login writes over it', async (t) => {
  const rig = await start(t)
  const counters = rig.app.redisTokenStore.counters
  const kinds: Array<[string, (k: string) => Promise<unknown>]> = [
    ['a hash', (k) => raw.hset(k, 'access_token', 'x')],
    ['a list', (k) => raw.rpush(k, 'x')],
    ['a set', (k) => raw.sadd(k, 'x')],
    ['a sorted set', (k) => raw.zadd(k, 1, 'x')],
    ['a stream', (k) => raw.xadd(k, '*', 'f', 'v')]
  ]
  for (const [what, write] of kinds) {
    const b = await storeToken(rig, good())
    const recKey = await onlyRecord(rig.prefix)
    await raw.del(recKey)
    await write(recKey)
    const before = counters.rejectedRecords
    const meta = await b.request('/api/meta')
    t.same([meta.status, meta.json()], [200, { meta: null }], `${what}: no token`)
    const token = await b.request('/api/token')
    t.same([token.status, token.json().code], [401, 'FSS_TOKEN_MISSING'], `${what}: a login is asked for`)
    t.equal(counters.rejectedRecords, before + 2, `${what}: counted on each read`)
    const again = await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(good()) })
    t.equal(again.status, 200, `${what}: a new token is stored over it`)
    t.equal((await b.request('/api/token')).status, 200, `${what}: and read back`)
    await raw.del(recKey)
  }
})

t.test('property: whatever JSON a record holds, it is a valid token or no token, and never a 5xx', async (t) => {
  const rig = await start(t)
  const b = await storeToken(rig, good())
  const recKey = await onlyRecord(rig.prefix)
  const tokenLike = fc.record({
    access_token: fc.oneof(fc.string(), fc.constant('at')),
    token_type: fc.constantFrom('Bearer', 'bearer', 'MAC'),
    expires_at: fc.oneof(fc.integer({ min: -10, max: 2 ** 40 }), fc.constant(nowS() + 60), fc.double()),
    refresh_token: fc.string(),
    scope: fc.oneof(fc.string(), fc.array(fc.string())),
    extra: fc.jsonValue()
  }, { requiredKeys: [] })
  await fc.assert(fc.asyncProperty(fc.oneof(fc.jsonValue(), tokenLike), async (value) => {
    await raw.set(recKey, seal(storeKeys, JSON.stringify(value), recKey), 'KEEPTTL')
    const res = await b.request('/api/meta')
    if (res.status !== 200) return false
    const meta = res.json().meta
    return isStoredToken(JSON.parse(JSON.stringify(value))) ? meta !== null : meta === null
  }), { numRuns: 150 })
  t.pass('150 records')
})

/** A session whose token is expired, with a refresh token we know (to name its hand-off record). */
async function expiredWith (rig: Rig): Promise<{ b: HttpBrowser, refresh: string }> {
  const refresh = 'rec-rt-' + randomBytes(12).toString('hex')
  const b = await storeToken(rig, { ...good(), expires_at: nowS() - 10, expires_in: 0, refresh_token: refresh })
  return { b, refresh }
}

t.test('a hand-off record that cannot be used counts its refresh token as used up: 502, tokens cleared, no provider call', async (t) => {
  const rig = await start(t)
  const counters = rig.app.redisTokenStore.counters
  const cases: Array<[string, (hk: string) => string, boolean]> = [
    // [what, sealed record, counted as a rejected record (else: a valid envelope whose token is refused)]
    ['not JSON', (hk) => seal(storeKeys, 'ok', hk), true],
    ['null', (hk) => seal(storeKeys, 'null', hk), true],
    ['an array', (hk) => seal(storeKeys, '[]', hk), true],
    ['{ ok: null }', (hk) => seal(storeKeys, '{"ok":null}', hk), true],
    ['{ ok } beside an extra field', (hk) => seal(storeKeys, JSON.stringify({ ok: good(), also: 1 }), hk), true],
    ['{ failed: 5 }', (hk) => seal(storeKeys, '{"failed":5}', hk), true],
    ['{ failed, spent: "yes" }', (hk) => seal(storeKeys, '{"failed":"FSS_TOKEN_INVALID","spent":"yes"}', hk), true],
    ['sealed for another record (does not open)', (hk) => seal(storeKeys, JSON.stringify({ ok: good() }), hk + 'x'), true],
    ['{ ok: a token with an extra field }', (hk) => seal(storeKeys, JSON.stringify({ ok: { ...good(), user: 'x' } }), hk), false],
    ['{ ok: a token valid for centuries }', (hk) => seal(storeKeys, JSON.stringify({ ok: { ...good(), expires_at: 9_999_999_999 } }), hk), false],
    ['{ ok: a string }', (hk) => seal(storeKeys, '{"ok":"token"}', hk), true]
  ]
  for (const [what, record, counted] of cases) {
    const { b, refresh } = await expiredWith(rig)
    const hk = handoffKey(rig.prefix, refresh)
    await raw.set(hk, record(hk), 'PX', 60_000)
    const calls = oidc.tokenCalls.refresh_token
    const before = counters.rejectedRecords
    const res = await b.request('/api/token')
    t.equal(res.status, 502, what)
    t.equal(res.json().code, 'FSS_TOKEN_INVALID', what)
    // The answer says where the unusable token came from: the envelope, or the token inside it.
    t.equal(res.json().message, `Token rejected: the refresh result handed over by another instance is ${counted ? 'unreadable' : 'not a valid token'}`, what)
    t.same((await b.request('/api/meta')).json(), { meta: null }, `${what}: tokens cleared`)
    t.equal(oidc.tokenCalls.refresh_token, calls, `${what}: the provider was not called`)
    t.equal(counters.rejectedRecords, before + (counted ? 1 : 0), `${what}: counted`)
  }
})

/**
 * An instance that keeps tokens in the session cookie and shares only the
 * refresh lock through Redis (the fleet works with the cookie store too): here
 * a stale cookie really does carry the old pair to another instance.
 */
async function cookieInstance (t: Test, prefix: string): Promise<{ origin: string }> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(secretKeys, { env: { SESSION_SECRET_KEY: key.toString('hex') } })
  await app.register(session, {})
  await app.register(redisTokenStore, { url: redis.url, keyPrefix: prefix, commandTimeout: 1000, failureTtl: 5000 })
  await app.register(oauthTokens, {
    provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token },
    clientId: 'records',
    clientSecret: 'records-secret',
    callbackUri: `${origin}/callback`,
    timeout: 2000,
    refreshBackoff: 5,
    refreshLock: app.redisTokenStore.refreshLock
  })
  app.get('/api/token', async (request) => ({ ok: typeof await request.tokens.accessToken() === 'string' }))
  app.get('/api/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  app.post('/api/store', async (request) => {
    await request.tokens.store(request.body)
    return { stored: true }
  })
  await app.ready()
  return { origin }
}

t.test('a used-up refresh token is handed to the fleet for a day: another instance never sends it again', async (t) => {
  const prefix = `rec${++apps}:`
  const a = await cookieInstance(t, prefix)
  const b = await cookieInstance(t, prefix)
  const refresh = 'rec-rt-' + randomBytes(12).toString('hex')
  const tab = new HttpBrowser(a.origin)
  await tab.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...good(), expires_at: nowS() - 10, expires_in: 0, refresh_token: refresh }) })
  const stale = await tab.jar.getCookieString(tab.origin + '/')
  // The provider refreshed (and rotated), but its answer is unusable.
  oidc.substitute({ patch: (body) => { body.token_type = 'DPoP' } })
  const first = await tab.request('/api/token')
  t.equal(first.json().code, 'FSS_TOKEN_INVALID')
  t.same((await tab.request('/api/meta')).json(), { meta: null }, 'cleared where it failed')
  const hk = handoffKey(prefix, refresh)
  const ttl = await raw.pttl(hk)
  t.ok(ttl > 86_000_000 && ttl <= 86_400_000, `the hand-off lives a day, not the 5 s failureTtl (${ttl} ms)`)
  const calls = oidc.tokenCalls.refresh_token
  // The same browser's old cookie (still the old pair), sent to the other instance.
  const other = new HttpBrowser(b.origin)
  const res = await other.request('/api/token', { headers: { cookie: stale } })
  t.equal(res.status, 502)
  t.equal(res.json().code, 'FSS_TOKEN_INVALID')
  t.same((await other.request('/api/meta')).json(), { meta: null }, 'the other instance clears its copy too')
  t.equal(oidc.tokenCalls.refresh_token, calls, 'no second call from any instance')
})
