// Session control across a fleet: app instances sharing a real Redis, logins
// through the real OIDC provider, and logout tokens signed by its real keys.
// A session revoked on one instance is refused on the others within one
// second (the revocation event is awaited, bounded), its Redis token record is
// gone, a restarted instance does not bring it back, and every bad logout
// token is refused with nothing revoked.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import sessionSuite from '../index.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'
import { CLIENT_ID, foreignKeyToken, providerToken, unsignedToken, type ClaimEdits } from './oidc-helper.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../lib/oidc/logout-token.ts'
import FakeTimers from '@sinonjs/fake-timers'

const env = { SESSION_SECRET_KEY: randomBytes(32).toString('hex') }
const PREFIX = 'fl:'

let redis: RedisServer
let oidc: OidcServer
let raw: Redis
t.before(async () => {
  [redis, oidc] = await Promise.all([startRedis(t), startOidcServer()])
  raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await raw.connect()
})
t.teardown(async () => {
  raw.disconnect()
  await oidc.stop()
})

interface Instance { app: FastifyInstance, origin: string, logs: LogCapture }

/** One app instance: the whole suite, tokens and session records in the shared Redis. */
async function instance (t: Test): Promise<Instance> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env },
    oauth: {
      provider: { issuer: oidc.issuer },
      clientId: CLIENT_ID,
      clientSecret: 'fleet-client-secret',
      scope: ['openid'],
      callbackUri: `${origin}/callback`,
      timeout: 2000
    },
    redis: { url: redis.url, keyPrefix: PREFIX, commandTimeout: 300 },
    sessions: { store: 'redis', keyPrefix: PREFIX, commandTimeout: 300 }
  })
  // A session a service registers itself (no OAuth login, so no token record).
  app.post<{ Querystring: { sub: string, sid: string } }>('/test/register', async (request) => {
    const { id } = await app.sessions.registerLogin(request, { sub: request.query.sub, provider: 'default', sid: request.query.sid })
    return { id }
  })
  app.get('/test/me', async (request) => ({ token: await request.tokens.metadata() !== null, id: app.sessions.currentId(request) ?? null }))
  app.get('/test/id', async (request) => ({ id: app.sessions.currentId(request) ?? null }))
  await app.ready()
  // The feed is subscribed once it has flushed the (empty) view.
  await subscribed(app)
  return { app, origin, logs }
}

async function subscribed (app: FastifyInstance): Promise<void> {
  if (app.sessions.counters().feed?.subscriptions !== 0) return
  try {
    await once(app.sessions.events, 'flushed', { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new Error(`feed not subscribed: ${JSON.stringify(app.sessions.counters().feed)} ${redis.output.slice(-5).join(' | ')}`, { cause: err })
  }
}

interface Device { browser: HttpBrowser, id: string }

/** A real login at the provider through `at`: its id_token names `sub` and the provider session `sid`; the callback registers it. */
async function login (at: Instance, sub: string, sid: string): Promise<Device> {
  const claims = (token: { payload: Record<string, unknown> }): void => { Object.assign(token.payload, { sub, sid }) }
  oidc.service.on('beforeTokenSigning', claims)
  const browser = new HttpBrowser(at.origin)
  try {
    const { callback } = await browser.login()
    if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${callback.text}`)
  } finally {
    oidc.service.off('beforeTokenSigning', claims)
  }
  const { id } = (await browser.request('/test/me')).json()
  if (id === null) throw new Error('the login was not registered')
  return { browser, id }
}

async function me (device: Device, at: Instance): Promise<{ token: boolean, id: string | null }> {
  return (await device.browser.request(`${at.origin}/test/me`)).json()
}

/** Resolves with performance.now() once `app` has heard every id in `ids` revoked; rejects after one second. */
async function hear (app: FastifyInstance, ids: string[]): Promise<number> {
  const waiting = new Set(ids)
  const signal = AbortSignal.timeout(1000)
  // Bounded by the abort signal and in count: each event is one revocation message.
  for (let i = 0; i < 100 && waiting.size > 0; i++) {
    const [heard] = await once(app.sessions.events, 'revoked', { signal }) as [string[]]
    for (const id of heard) waiting.delete(id)
  }
  if (waiting.size > 0) throw new Error('not every revocation was heard')
  return performance.now()
}

async function tokenRecords (): Promise<number> {
  return (await raw.keys(`${PREFIX}tok:*`)).length
}

t.test('a session revoked on A is refused on B and C within one second, and its tokens are gone', async (t) => {
  const [a, b, c] = [await instance(t), await instance(t), await instance(t)]
  const laptop = await login(a, 'alice', 'sid-laptop')
  const phone = await login(a, 'alice', 'sid-phone')
  for (const at of [a, b, c]) t.same(await me(phone, at), { token: true, id: phone.id }, 'logged in on every instance')
  const records = await tokenRecords()
  const delays: number[] = []
  const waits = [b, c].map((at) => hear(at.app, [phone.id]))
  const sent = performance.now()
  const del = await laptop.browser.request(`${a.origin}/api/sessions/${phone.id}`, { method: 'DELETE' })
  t.equal(del.status, 200)
  for (const at of await Promise.all(waits)) delays.push(at - sent)
  // An upper bound: from sending the DELETE (the revocation itself is inside that request).
  // Recorded, not asserted beyond the one-second bound hear() enforces.
  t.comment(`revocation heard on B and C ${delays.map((d) => d.toFixed(1)).join(' ms, ')} ms after the DELETE was sent`)
  for (const at of [b, c, a]) t.same(await me(phone, at), { token: false, id: null }, 'the phone is logged out on every instance')
  t.same(await me(laptop, b), { token: true, id: laptop.id }, 'the laptop is not')
  t.equal(await tokenRecords(), records - 1, "the phone's Redis token record is deleted")

  // The delay itself, 20 times: from revoke() on A starting to B and C applying it.
  const samples: number[] = []
  for (let i = 0; i < 20; i++) {
    const { id } = (await new HttpBrowser(a.origin).request('/test/register?sub=carl&sid=s', { method: 'POST' })).json()
    const heard = [b, c].map((at) => hear(at.app, [id]))
    const start = performance.now()
    await a.app.sessions.revoke(id, 'admin')
    for (const at of await Promise.all(heard)) samples.push(at - start)
  }
  samples.sort((x, y) => x - y)
  t.equal(samples.length, 40, 'every revocation was heard on both instances within one second')
  t.comment(`revocation delay A -> B, C over 40 samples: median ${samples[20].toFixed(1)} ms, max ${samples[39].toFixed(1)} ms`)
})

t.test('Redis down during a revocation: the caller learns it failed and nothing is revoked', async (t) => {
  const at = await instance(t)
  const laptop = await login(at, 'dora', 's-l')
  const phone = await login(at, 'dora', 's-p')
  // A session registered without a token record, and an id that was never registered: nothing to delete.
  const bare = new HttpBrowser(at.origin)
  const { id: bareId } = (await bare.request('/test/register?sub=dora&sid=s-b', { method: 'POST' })).json()
  t.equal(await at.app.sessions.revoke(bareId, 'admin'), true)
  t.equal(await at.app.sessions.revoke('AAAAAAAAAAAAAAAAAAAAAA', 'admin'), false)
  redis.pause()
  let health: { checks: Array<{ name: string, status: string }> } | undefined
  let res: Awaited<ReturnType<HttpBrowser['request']>> | undefined
  let direct: { code?: string } | null = null
  try {
    res = await laptop.browser.request(`${at.origin}/api/sessions/${phone.id}`, { method: 'DELETE' })
    direct = await at.app.sessions.revoke(phone.id, 'admin').then(() => null, (err: { code?: string }) => err)
    health = await (await fetch(`${at.origin}/health`)).json() as typeof health
  } finally {
    redis.resume()
  }
  t.same([res?.status, res?.json().code], [503, 'FSS_STORE_UNAVAILABLE'], 'the route answers 503')
  t.equal(direct?.code, 'FSS_STORE_UNAVAILABLE', 'revoke() rejects')
  t.equal(at.app.sessions.counters().revoked.admin, 1, 'nothing more counted as revoked')
  t.equal(health?.checks.find((c) => c.name === 'sessions')?.status, 'fail', '/health says the registry cannot reach Redis')
  t.same(await me(phone, at), { token: true, id: phone.id }, 'the phone is still logged in once Redis answers')
})

t.test('Redis unreachable: the last view is trusted for outageTrust seconds, then the user sees 503 with the cookie kept, and is back when Redis is', async (t) => {
  const at = await instance(t)
  const device = await login(at, 'erin', 's-e')
  t.same(await me(device, at), { token: true, id: device.id })
  // Only Date is faked (the registry's clock): ioredis and the heartbeat keep their real timers.
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  redis.pause()
  let trusted, refused
  try {
    trusted = await device.browser.request(`${at.origin}/api/sessions`)
    // Past outageTrust (5 s) since the feed last heard from Redis: the check asks Redis, which cannot answer.
    clock.tick(6000)
    refused = await device.browser.request(`${at.origin}/test/me`)
  } finally {
    redis.resume()
  }
  t.equal(trusted.status, 503, 'listing needs Redis itself')
  t.same([refused.status, refused.json().code], [503, 'FSS_STORE_UNAVAILABLE'], 'past the trust: 503, never an empty session')
  t.same(refused.setCookies, [], 'the cookie is left as it was')
  t.ok(at.app.sessions.counters().view.unavailable >= 1, 'counted')
  t.same(await me(device, at), { token: true, id: device.id }, 'logged in again as soon as Redis answers')
})

t.test('Redis unreachable within outageTrust: a session the view knows is served from memory', async (t) => {
  const at = await instance(t)
  const device = await login(at, 'finn', 's-f')
  t.same(await me(device, at), { token: true, id: device.id })
  const hits = at.app.sessions.counters().view.hits
  redis.pause()
  let answer
  try {
    // A route that reads the session but nothing in Redis.
    answer = await device.browser.request(`${at.origin}/test/id`)
  } finally {
    redis.resume()
  }
  t.same([answer.status, answer.json()], [200, { id: device.id }], 'answered from the view, without Redis')
  t.equal(at.app.sessions.counters().view.hits, hits + 1)
})

t.test('sign out everywhere else on B keeps this device; a restarted instance does not bring the others back', async (t) => {
  const [a, b] = [await instance(t), await instance(t)]
  const devices = [await login(a, 'bea', 's1'), await login(a, 'bea', 's2'), await login(b, 'bea', 's3')]
  // A copy of a revoked device's cookie, kept past the revocation (the browser drops its own).
  const stale = await devices[1].browser.jar.getCookieString(`${a.origin}/`)
  const heardOnA = hear(a.app, devices.slice(1).map((d) => d.id))
  const res = await devices[0].browser.request(`${b.origin}/api/sessions/revoke-others`, { method: 'POST' })
  t.same(res.json(), { revoked: 2 })
  await heardOnA
  t.same(await me(devices[0], a), { token: true, id: devices[0].id }, 'this device stays logged in')
  for (const d of devices.slice(1)) t.same(await me(d, a), { token: false, id: null }, 'the others are logged out on A')
  await a.app.close()
  const restarted = await instance(t)
  for (const d of devices.slice(1)) t.same(await me(d, restarted), { token: false, id: null }, 'and stay logged out on a fresh instance')
  // The fresh instance's view has never heard of that id: it asks Redis, which says revoked.
  t.same(await (await fetch(`${restarted.origin}/test/me`, { headers: { cookie: stale } })).json(), { token: false, id: null }, 'a kept copy of a revoked cookie reads as logged out on a fresh instance')
  t.same(await me(devices[0], restarted), { token: true, id: devices[0].id })
})

const now = (): number => Math.floor(Date.now() / 1000)
let jtis = 0

function logoutToken (edits: ClaimEdits = {}): Promise<string> {
  return providerToken(oidc, {
    nonce: undefined, exp: now() + 120, jti: `jti-${++jtis}-${randomBytes(4).toString('hex')}`, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...edits
  }, { header: { typ: 'logout+jwt' } })
}

async function backchannel (at: Instance, token: string, type = 'application/x-www-form-urlencoded'): Promise<{ status: number, body: any, cache: string | null }> {
  const res = await fetch(`${at.origin}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: type === 'application/json' ? JSON.stringify({ logout_token: token }) : new URLSearchParams({ logout_token: token }).toString()
  })
  return { status: res.status, body: await res.json(), cache: res.headers.get('cache-control') }
}

t.test('back-channel logout by sid ends that session; by sub every session of the user; a replay on another instance is refused', async (t) => {
  const [a, b] = [await instance(t), await instance(t)]
  const one = await login(a, 'user-1', 'sid-one')
  const two = await login(a, 'user-1', 'sid-two')
  const three = await login(b, 'user-1', 'sid-three')
  const other = await login(b, 'user-2', 'sid-other')
  const bySid = await logoutToken({ sub: undefined, sid: 'sid-one' })
  const res = await backchannel(b, bySid)
  t.same([res.status, res.body, res.cache], [200, { revoked: 1 }, 'no-store'])
  t.same(await me(one, a), { token: false, id: null }, 'the sid session is logged out')
  t.same(await me(two, a), { token: true, id: two.id }, 'the others are not')
  const replay = await backchannel(a, bySid)
  t.same([replay.status, replay.body.error], [400, 'invalid_request'], 'the same token on another instance is a replay')
  t.match(replay.body.error_description, /replayed/)
  const bySub = await backchannel(a, await logoutToken({ sid: undefined }))
  t.same([bySub.status, bySub.body], [200, { revoked: 2 }])
  for (const d of [two, three]) t.same(await me(d, b), { token: false, id: null })
  t.same(await me(other, a), { token: true, id: other.id }, 'another user is untouched')
  t.equal(a.app.sessions.counters().revoked.backchannel + b.app.sessions.counters().revoked.backchannel, 3, 'counted as back-channel')
})

t.test('every bad logout token is a 400 and revokes nothing', async (t) => {
  const at = await instance(t)
  const victim = await login(at, 'user-1', 'sid-victim')
  const claims = (edits: ClaimEdits = {}): Record<string, unknown> => ({
    iss: oidc.issuer, aud: CLIENT_ID, iat: now(), jti: `forged-${++jtis}`, sub: 'user-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...edits
  })
  const used = await logoutToken({ sid: 'sid-nobody', sub: undefined })
  t.equal((await backchannel(at, used)).status, 200, 'a good token for no session is processed')
  const bad: Array<[string, () => Promise<string> | string]> = [
    ['unsigned', () => unsignedToken(claims())],
    ['signed by another key', () => foreignKeyToken(claims(), 'unpublished')],
    ['for another audience', () => logoutToken({ aud: 'someone-else', sub: 'user-1' })],
    ['expired', () => logoutToken({ exp: now() - 60, sub: 'user-1' })],
    ['replayed', () => used],
    ['carrying a nonce', () => logoutToken({ nonce: 'n-1', sub: 'user-1' })],
    ['without the events claim', () => logoutToken({ events: undefined, sub: 'user-1' })],
    ['empty', () => '']
  ]
  for (const [name, make] of bad) {
    const res = await backchannel(at, await make())
    t.same([res.status, res.body.error, res.cache], [400, 'invalid_request', 'no-store'], name)
    t.type(res.body.error_description, 'string')
  }
  const json = await backchannel(at, await logoutToken({ sub: 'user-1' }), 'application/json')
  t.equal(json.status, 415, 'only a form body is accepted')
  t.same(await me(victim, at), { token: true, id: victim.id }, 'nothing was revoked')
  t.equal(at.app.sessions.counters().revoked.backchannel, 0)
})

t.test('/health names the Redis registry and its feed', async (t) => {
  const at = await instance(t)
  const res = await fetch(`${at.origin}/health`)
  const body = await res.json() as { checks: Array<{ name: string }> }
  const check = body.checks.find((c) => c.name === 'sessions')
  t.match(check, { status: 'pass', detail: /^redis: .*subscribed/ })
})

t.test('a back-channel logout that cannot revoke is a 503, revokes nothing, and the provider may retry', async (t) => {
  const at = await instance(t)
  const device = await login(at, 'user-9', 'sid-nine')
  const token = await logoutToken({ sub: undefined, sid: 'sid-nine' })
  // Redis refuses the revocation's script (and only that): the jti is recorded, the revocation fails.
  await raw.call('ACL', 'SETUSER', 'default', '-smembers')
  let failed
  try {
    failed = await backchannel(at, token)
  } finally {
    await raw.call('ACL', 'SETUSER', 'default', '+@all')
  }
  t.same([failed.status, failed.body.code, failed.cache], [503, 'FSS_STORE_UNAVAILABLE', 'no-store'])
  t.same(await me(device, at), { token: true, id: device.id }, 'still logged in')
  const retry = await backchannel(at, token)
  t.same([retry.status, retry.body], [200, { revoked: 1 }], "the provider's retry is not refused as a replay")
  t.same(await me(device, at), { token: false, id: null })
})
