// CSRF behaviour a user of a protected route notices: which requests pass,
// which are refused with FSS_CSRF_INVALID, and that no token reaches the logs.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, captureLogs, type LogCapture } from './helper.ts'
import session from '../plugins/session.ts'
import csrf, { type CsrfOptions } from '../plugins/csrf.ts'

const key = randomBytes(32)

/** A browser's cookie jar in miniature: keeps what the server sets, drops what it expires. */
class Jar {
  readonly values = new Map<string, string>()
  absorb (res: LightMyRequestResponse): void {
    for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>) {
      const expired = c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() <= Date.now())
      if (expired || c.value === '') this.values.delete(c.name)
      else this.values.set(c.name, c.value)
    }
  }

  get cookies (): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

async function makeApp (t: Test, opts: CsrfOptions = {}, guardAll = false): Promise<{ app: FastifyInstance, cap: LogCapture }> {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(session, { key, secure: false })
  await app.register(csrf, opts)
  if (guardAll) app.addHook('onRequest', app.csrfProtection)
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  app.post('/logout', { preHandler: app.csrfProtection }, async (request) => {
    request.session.delete()
    return { done: true }
  })
  app.get('/secret', async (request) => ({ type: typeof request.session.get(opts.sessionKey ?? '_csrf') }))
  app.options('/transfer', async () => ({ allow: 'POST' }))
  app.get('/state', async () => ({ state: 'read' }))
  await app.ready()
  return { app, cap }
}

/** Visits the form page: a session with a CSRF secret, and a token for it. */
async function visit (app: FastifyInstance, jar = new Jar()): Promise<{ jar: Jar, token: string }> {
  const res = await app.inject({ url: '/form', cookies: jar.cookies })
  jar.absorb(res)
  return { jar, token: res.json().token }
}

function refused (t: Test, res: LightMyRequestResponse): void {
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'FSS_CSRF_INVALID')
}

function refusalReasons (cap: LogCapture): string[] {
  return cap.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'CSRF check refused the request').map((l) => l.reason)
}

function cookieValues (...jars: Jar[]): string[] {
  return jars.flatMap((j) => [...j.values.values()])
}

t.test('the token is accepted in the x-csrf-token header', async (t) => {
  const { app, cap } = await makeApp(t)
  const { jar, token } = await visit(app)
  t.match(token, /^[\w-]{20,}$/)
  t.ok(jar.values.size > 0, 'the visit set the session cookie')
  const res = await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token }, payload: { amount: 1 } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { done: true })
  cap.assertNoSecrets(t, [token, ...cookieValues(jar)])
})

t.test('the token is accepted in the _csrf field of a urlencoded form (formBody: true)', async (t) => {
  const { app, cap } = await makeApp(t, { formBody: true })
  const { jar, token } = await visit(app)
  const res = await app.inject({
    method: 'POST',
    url: '/transfer',
    cookies: jar.cookies,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ amount: '1', _csrf: token }).toString()
  })
  t.equal(res.statusCode, 200)
  cap.assertNoSecrets(t, [token, ...cookieValues(jar)])
})

t.test('the token is accepted in the _csrf field of a JSON body', async (t) => {
  const { app } = await makeApp(t)
  const { jar, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, payload: { _csrf: token } })
  t.equal(res.statusCode, 200)
})

t.test('every token generated for a session stays valid for it', async (t) => {
  const { app } = await makeApp(t)
  const first = await visit(app)
  const second = await visit(app, first.jar)
  t.not(second.token, first.token, 'each token carries its own salt')
  for (const token of [first.token, second.token]) {
    const res = await app.inject({ method: 'POST', url: '/transfer', cookies: first.jar.cookies, headers: { 'x-csrf-token': token } })
    t.equal(res.statusCode, 200)
  }
})

t.test('a request without a token is refused with FSS_CSRF_INVALID, and the log says why without values', async (t) => {
  const { app, cap } = await makeApp(t)
  const { jar, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, payload: { amount: 1 } })
  refused(t, res)
  t.same(refusalReasons(cap), ['missing-token'])
  cap.assertNoSecrets(t, [token, ...cookieValues(jar)])
})

t.test('an empty token is a missing token', async (t) => {
  const { app, cap } = await makeApp(t)
  const { jar } = await visit(app)
  refused(t, await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': '' } }))
  t.same(refusalReasons(cap), ['missing-token'])
})

t.test('a wrong token is refused', async (t) => {
  const { app, cap } = await makeApp(t)
  const { jar, token } = await visit(app)
  const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  refused(t, await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': forged } }))
  t.same(refusalReasons(cap), ['invalid-token'])
  cap.assertNoSecrets(t, [token, forged, ...cookieValues(jar)])
})

t.test('a token from another session is refused', async (t) => {
  const { app, cap } = await makeApp(t)
  const alice = await visit(app)
  const mallory = await visit(app)
  t.notSame(alice.jar.cookies, mallory.jar.cookies, 'two visitors, two sessions')
  const res = await app.inject({ method: 'POST', url: '/transfer', cookies: alice.jar.cookies, headers: { 'x-csrf-token': mallory.token } })
  refused(t, res)
  t.same(refusalReasons(cap), ['invalid-token'])
  // …while each token still works with its own session.
  const own = await app.inject({ method: 'POST', url: '/transfer', cookies: mallory.jar.cookies, headers: { 'x-csrf-token': mallory.token } })
  t.equal(own.statusCode, 200)
  cap.assertNoSecrets(t, [alice.token, mallory.token, ...cookieValues(alice.jar, mallory.jar)])
})

t.test('a token without any session is refused', async (t) => {
  const { app, cap } = await makeApp(t)
  const { token } = await visit(app)
  refused(t, await app.inject({ method: 'POST', url: '/transfer', headers: { 'x-csrf-token': token } }))
  t.same(refusalReasons(cap), ['no-session-secret'])
})

t.test('a cross-site form post without the token is refused', async (t) => {
  // formBody: true, so the form is parsed and reaches the CSRF check (without a parser it is a 415).
  const { app, cap } = await makeApp(t, { formBody: true })
  const victim = await visit(app)
  // What a hostile page's auto-submitting <form method=post> sends: the victim's
  // cookies ride along (SameSite=Lax aside, e.g. an older browser), no token.
  const res = await app.inject({
    method: 'POST',
    url: '/transfer',
    cookies: victim.jar.cookies,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', referer: 'https://evil.example/win' },
    payload: 'amount=1000&to=mallory'
  })
  refused(t, res)
  t.same(refusalReasons(cap), ['missing-token'])
  cap.assertNoSecrets(t, [victim.token, ...cookieValues(victim.jar)])
})

t.test('GET, HEAD and OPTIONS pass without a token, even with the check on every route', async (t) => {
  const { app } = await makeApp(t, {}, true)
  const get = await app.inject({ method: 'GET', url: '/state' })
  t.equal(get.statusCode, 200)
  t.same(get.json(), { state: 'read' })
  t.equal((await app.inject({ method: 'HEAD', url: '/state' })).statusCode, 200)
  t.equal((await app.inject({ method: 'OPTIONS', url: '/transfer' })).statusCode, 200)
  const { jar, token } = await visit(app)
  refused(t, await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies }))
  // onRequest runs before the body is parsed: an app guarding every route reads the header.
  t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } })).statusCode, 200)
})

t.test('the secret lives in the session: a logout ends every token issued for it', async (t) => {
  const { app, cap } = await makeApp(t)
  const { jar, token } = await visit(app)
  t.same((await app.inject({ url: '/secret', cookies: jar.cookies })).json(), { type: 'string' })
  const out = await app.inject({ method: 'POST', url: '/logout', cookies: jar.cookies, headers: { 'x-csrf-token': token } })
  t.equal(out.statusCode, 200)
  jar.absorb(out)
  refused(t, await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } }))
  t.same(refusalReasons(cap), ['no-session-secret'])
})

t.test('sessionKey names the session field that holds the secret', async (t) => {
  const { app } = await makeApp(t, { sessionKey: 'csrfSecret' })
  const { jar, token } = await visit(app)
  t.same((await app.inject({ url: '/secret', cookies: jar.cookies })).json(), { type: 'string' })
  t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } })).statusCode, 200)
})

t.test('generateCsrf(options) passes cookie options on to the session cookie', async (t) => {
  const app = await build(t)
  await app.register(session, { key, secure: false })
  await app.register(csrf)
  app.get('/short-form', async (_request, reply) => ({ token: reply.generateCsrf({ maxAge: 600 }) }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  const res = await app.inject({ url: '/short-form' })
  const cookie = (res.cookies as Array<{ name: string, maxAge?: number }>).find((c) => c.name === 'session')
  t.equal(cookie?.maxAge, 600, 'Max-Age from the options')
  const jar = new Jar()
  jar.absorb(res)
  t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': res.json().token } })).statusCode, 200)
})

t.test('getToken replaces where the token is read from', async (t) => {
  const { app } = await makeApp(t, { getToken: (request) => request.headers['x-my-token'] as string | undefined })
  const { jar, token } = await visit(app)
  t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-my-token': token } })).statusCode, 200)
  refused(t, await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } }))
})
