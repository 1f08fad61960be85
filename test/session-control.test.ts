// Session control in one process (the memory registry): the user's own list,
// signing one session out, signing out everywhere else, what a revoked
// session reads as, and the refusals (someone else's id, a malformed one, no
// login, no CSRF token).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { build, captureLogs, type LogCapture } from './helper.ts'
import FakeTimers from '@sinonjs/fake-timers'
import { CHROME, IPHONE } from './sessions-helper.ts'

const env = { SESSION_SECRET_KEY: randomBytes(32).toString('hex') }

/** A browser's cookie jar in miniature: keeps what the server sets, drops what it expires. */
export class Jar {
  readonly values = new Map<string, string>()
  absorb (res: LightMyRequestResponse): void {
    for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
      if (c.maxAge === 0 || c.value === '') this.values.delete(c.name)
      else this.values.set(c.name, c.value)
    }
  }

  get cookies (): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

interface Rig { app: FastifyInstance, logs: LogCapture }

async function start (t: Test, extra: Partial<SessionSuiteOptions> = {}): Promise<Rig> {
  const logs = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: logs.stream } })
  await app.register(sessionSuite, { secret: { env }, session: { secure: false }, sessions: { store: 'memory' }, ...extra })
  // What a service's own login does with the public API: a new session, then its record.
  app.post<{ Querystring: { sub: string } }>('/test/login', async (request) => {
    request.session.regenerate()
    request.session.set('user' as never, request.query.sub as never)
    const record = await app.sessions.registerLogin(request, { sub: request.query.sub, provider: 'idp', sid: `sid-${request.query.sub}` })
    return { id: record.id }
  })
  app.get('/test/me', async (request) => ({ user: request.session.get('user') ?? null }))
  app.get('/test/csrf', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post('/test/regenerate-keep', async (request) => {
    request.session.regenerate(['fss', 'user'])
    return { id: app.sessions.currentId(request) ?? null }
  })
  // A cookie a service (or a bug) wrote with a suite field that is not a session id.
  app.post('/test/forge', async (request) => {
    request.session.set('fss', { sessionId: 42 })
    request.session.set('user' as never, 'mallory' as never)
    return { ok: true }
  })
  app.post('/test/logout', async (request) => ({ ended: await app.sessions.endCurrent(request) }))
  await app.ready()
  return { app, logs }
}

interface Device { jar: Jar, id: string, ua: string }

async function login (app: FastifyInstance, sub: string, ua = CHROME): Promise<Device> {
  const jar = new Jar()
  const res = await app.inject({ method: 'POST', url: `/test/login?sub=${sub}`, headers: { 'user-agent': ua } })
  jar.absorb(res)
  return { jar, id: res.json().id, ua }
}

async function get (app: FastifyInstance, device: Device, url: string): Promise<LightMyRequestResponse> {
  const res = await app.inject({ url, cookies: device.jar.cookies, headers: { 'user-agent': device.ua } })
  device.jar.absorb(res)
  return res
}

t.test('a user lists their own sessions, this one marked current, with device labels only', async (t) => {
  const { app } = await start(t)
  const laptop = await login(app, 'alice')
  const phone = await login(app, 'alice', IPHONE)
  await login(app, 'bob')
  const res = await get(app, laptop, '/api/sessions')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const { sessions } = res.json()
  t.same(sessions.map((s: { id: string }) => s.id).sort(), [laptop.id, phone.id].sort(), "alice's two, not bob's")
  t.same(sessions.filter((s: { current: boolean }) => s.current).map((s: { id: string }) => s.id), [laptop.id], 'exactly one current')
  t.same(sessions.map((s: { device: string }) => s.device).sort(), ['Chrome on Linux', 'Safari on iOS'])
  for (const s of sessions) t.same(Object.keys(s).sort(), ['createdAt', 'current', 'device', 'id', 'lastSeenAt'])
  t.notMatch(res.body, /Mozilla|AppleWebKit|127\.0\.0\.1|sid-alice/, 'no raw user agent, address or provider sid')
})

t.test('signing the phone out: its next request is logged out, its cookie expired', async (t) => {
  const { app } = await start(t)
  const laptop = await login(app, 'alice')
  const phone = await login(app, 'alice', IPHONE)
  t.same((await get(app, phone, '/test/me')).json(), { user: 'alice' })
  const del = await app.inject({ method: 'DELETE', url: `/api/sessions/${phone.id}`, cookies: laptop.jar.cookies })
  t.equal(del.statusCode, 200)
  t.same(del.json(), { revoked: true, current: false })
  const after = await get(app, phone, '/test/me')
  t.same(after.json(), { user: null }, 'the phone reads an empty session')
  t.ok(after.cookies.some((c) => c.maxAge === 0), 'and its cookie is expired')
  t.same((await get(app, laptop, '/test/me')).json(), { user: 'alice' }, 'the laptop is still logged in')
  t.equal(app.sessionInfo.counters.rejected.revoked, 1, 'counted as revoked')
  t.equal(app.sessions.counters().revoked.user, 1, 'and why: the user')
  t.equal((await get(app, phone, '/api/sessions')).statusCode, 401, 'the phone can no longer list')
})

t.test('a revoked session is never served from the cache of decoded sessions', async (t) => {
  const { app } = await start(t)
  const laptop = await login(app, 'alice')
  const phone = await login(app, 'alice', IPHONE)
  const cache = app.sessionInfo.decodedCache
  if (cache === null) throw new Error('the cache is on by default')
  const before = cache.stats().hits
  t.same((await get(app, phone, '/test/me')).json(), { user: 'alice' })
  t.ok(cache.stats().hits > before, "the phone's cookie is read from the cache")
  t.equal((await app.inject({ method: 'DELETE', url: `/api/sessions/${phone.id}`, cookies: laptop.jar.cookies })).statusCode, 200)
  const hits = cache.stats().hits
  t.same((await get(app, phone, '/test/me')).json(), { user: null }, 'the same cookie, still cached, reads as logged out')
  t.ok(cache.stats().hits > hits, 'it was a cache hit, and the revocation check still ran')
  t.equal(app.sessionInfo.counters.rejected.revoked, 1)
})

t.test('this session is listed even past the cap on a listing', async (t) => {
  const { app } = await start(t)
  // Only Date is faked: this session is seen a second before the 200 others, so a listing
  // (most recently seen first, at most 200) leaves it out.
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const first = await login(app, 'many')
  clock.tick(1000)
  for (let i = 0; i < 200; i++) await login(app, 'many')
  const { sessions } = (await get(app, first, '/api/sessions')).json()
  t.equal(sessions.length, 201)
  t.same(sessions[0], { id: first.id, device: 'Chrome on Linux', createdAt: sessions[0].createdAt, lastSeenAt: sessions[0].lastSeenAt, current: true }, 'first, marked current')
})

t.test('a user can sign this session out too', async (t) => {
  const { app } = await start(t)
  const laptop = await login(app, 'alice')
  const del = await app.inject({ method: 'DELETE', url: `/api/sessions/${laptop.id}`, cookies: laptop.jar.cookies })
  t.same(del.json(), { revoked: true, current: true })
  laptop.jar.absorb(del)
  t.same((await get(app, laptop, '/test/me')).json(), { user: null })
})

t.test('sign out everywhere else keeps this device and ends the others', async (t) => {
  const { app } = await start(t)
  const devices = [await login(app, 'alice'), await login(app, 'alice', IPHONE), await login(app, 'alice')]
  const bob = await login(app, 'bob')
  const res = await app.inject({ method: 'POST', url: '/api/sessions/revoke-others', cookies: devices[0].jar.cookies })
  t.same(res.json(), { revoked: 2 })
  t.same((await get(app, devices[0], '/test/me')).json(), { user: 'alice' })
  for (const d of devices.slice(1)) t.same((await get(app, d, '/test/me')).json(), { user: null })
  t.same((await get(app, bob, '/test/me')).json(), { user: 'bob' }, "another user's sessions are untouched")
  const list = (await get(app, devices[0], '/api/sessions')).json().sessions
  t.same(list.map((s: { id: string }) => s.id), [devices[0].id])
})

t.test("another user's id and an unknown id are both 404; a malformed id is 400", async (t) => {
  const { app } = await start(t)
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const other = await app.inject({ method: 'DELETE', url: `/api/sessions/${bob.id}`, cookies: alice.jar.cookies })
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'FSS_SESSION_NOT_FOUND')
  const unknown = await app.inject({ method: 'DELETE', url: '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA', cookies: alice.jar.cookies })
  t.same([unknown.statusCode, unknown.json().code], [404, 'FSS_SESSION_NOT_FOUND'], 'the same answer: ids cannot be probed')
  for (const bad of ['nope', 'AAAAAAAAAAAAAAAAAAAAAB', `${bob.id}x`]) {
    const res = await app.inject({ method: 'DELETE', url: `/api/sessions/${bad}`, cookies: alice.jar.cookies })
    t.same([res.statusCode, res.json().code], [400, 'FSS_SESSION_ID_INVALID'], bad)
  }
  t.same((await get(app, bob, '/test/me')).json(), { user: 'bob' }, "bob's session is untouched")
})

t.test('the routes need a logged-in session', async (t) => {
  const { app } = await start(t)
  for (const [method, url] of [['GET', '/api/sessions'], ['DELETE', '/api/sessions/AAAAAAAAAAAAAAAAAAAAAA'], ['POST', '/api/sessions/revoke-others']] as const) {
    const res = await app.inject({ method, url })
    t.same([res.statusCode, res.json().code], [401, 'FSS_SESSION_REQUIRED'], `${method} ${url}`)
  }
})

t.test('with CSRF on, the routes that end sessions need the token', async (t) => {
  const { app } = await start(t, { csrf: true })
  const laptop = await login(app, 'alice')
  const phone = await login(app, 'alice')
  t.equal((await get(app, laptop, '/api/sessions')).statusCode, 200, 'listing is a safe method')
  const refused = await app.inject({ method: 'DELETE', url: `/api/sessions/${phone.id}`, cookies: laptop.jar.cookies })
  t.same([refused.statusCode, refused.json().code], [403, 'FSS_CSRF_INVALID'])
  const others = await app.inject({ method: 'POST', url: '/api/sessions/revoke-others', cookies: laptop.jar.cookies })
  t.equal(others.statusCode, 403)
  t.same((await get(app, phone, '/test/me')).json(), { user: 'alice' }, 'nothing was revoked')
  const token = (await get(app, laptop, '/test/csrf')).json().token
  const ok = await app.inject({ method: 'DELETE', url: `/api/sessions/${phone.id}`, cookies: laptop.jar.cookies, headers: { 'x-csrf-token': token } })
  t.equal(ok.statusCode, 200)
})

t.test('/health says the memory registry is this process only', async (t) => {
  const { app } = await start(t)
  const res = await app.inject({ url: '/health' })
  const check = res.json().checks.find((c: { name: string }) => c.name === 'sessions')
  t.match(check, { status: 'pass', detail: /memory.*this process only/ })
  // A revoked session's cookie on /health: never opened there, so never expired there either.
  const phone = await login(app, 'alice')
  await app.sessions.revokeAll('alice')
  const probe = await app.inject({ url: '/health', cookies: phone.jar.cookies })
  t.equal(probe.headers['set-cookie'], undefined, 'no Set-Cookie from /health')
  t.equal(app.sessionInfo.counters.decoded, 0, '/health opened no cookie')
})

t.test('a store the registry cannot reach answers 503 and nothing changes; a bad registry option is refused', async (t) => {
  const app = await build(t)
  app.register(sessionSuite, { secret: { env }, sessions: { store: 'memory', touchInterval: 0 } })
  await t.rejects(async () => { await app.ready() }, { code: 'FSS_OPTIONS_INVALID', message: /sessions\.touchInterval/ })
})

t.test("store 'redis' without the redis option is refused at start-up", async (t) => {
  const app = await build(t)
  app.register(sessionSuite, { secret: { env }, sessions: { store: 'redis' } })
  await t.rejects(async () => { await app.ready() }, { code: 'FSS_OPTIONS_INVALID' })
})

t.test('a session id is new at login and at every regenerate(), and sealed in the cookie', async (t) => {
  const { app } = await start(t)
  const a = await login(app, 'alice')
  const b = await login(app, 'alice')
  t.not(a.id, b.id)
  t.match(a.id, /^[A-Za-z0-9_-]{22}$/)
  for (const value of a.jar.values.values()) t.notMatch(value, a.id, 'the id is not readable in the cookie')
})

t.test('regenerate() drops the registry id even when the suite fields are kept, so the new session is not the old one', async (t) => {
  const { app } = await start(t)
  const a = await login(app, 'alice')
  const res = await app.inject({ method: 'POST', url: '/test/regenerate-keep', cookies: a.jar.cookies })
  t.same(res.json(), { id: null })
  a.jar.absorb(res)
  t.same((await get(app, a, '/test/me')).json(), { user: 'alice' }, 'kept fields stay')
  t.equal((await get(app, a, '/api/sessions')).statusCode, 401, 'no longer the registered session')
})

t.test('a session id field that is not an id reads as revoked', async (t) => {
  const { app } = await start(t)
  const jar = new Jar()
  jar.absorb(await app.inject({ method: 'POST', url: '/test/forge' }))
  const res = await app.inject({ url: '/test/me', cookies: jar.cookies })
  t.same(res.json(), { user: null })
})

t.test('logging out through the registry: endCurrent ends this session only once', async (t) => {
  const { app } = await start(t)
  const a = await login(app, 'alice')
  t.same((await app.inject({ method: 'POST', url: '/test/logout', cookies: a.jar.cookies })).json(), { ended: true })
  t.same((await app.inject({ method: 'POST', url: '/test/logout' })).json(), { ended: false }, 'no session, nothing to end')
  t.equal(app.sessions.counters().revoked.logout, 1)
  t.same(await app.sessions.revokeBySid('idp', 'sid-nobody'), [])
  t.same(await app.sessions.revokeAll('nobody'), [])
  t.equal(await app.sessions.revoke('AAAAAAAAAAAAAAAAAAAAAA'), false)
})
