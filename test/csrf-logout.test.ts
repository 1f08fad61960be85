// The suite's own POST /logout with the csrf option on: a hostile page cannot
// log a user out, and the demo's form (token in the `_csrf` field) can.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { build, captureLogs, type LogCapture } from './helper.ts'
import session from '../plugins/session.ts'
import oauthTokens from '../plugins/oauth-tokens.ts'
import oauthRoutes from '../routes/oauth.ts'
import csrf from '../plugins/csrf.ts'
import sessionSuite from '../index.ts'

declare module '@fastify/secure-session' {
  interface SessionData { visited?: boolean }
}

const key = randomBytes(32)
// Explicit endpoints that are never called: a logout without revocation talks to no provider.
const oauth = {
  provider: { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
  clientId: 'demo',
  clientSecret: 'not-used',
  callbackUri: 'http://127.0.0.1:3000/callback',
  hostPrefixedCookies: false
}

async function start (t: Test, withCsrf: boolean): Promise<{ app: FastifyInstance, cap: LogCapture }> {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(session, { key, secure: false })
  if (withCsrf) await app.register(csrf)
  await app.register(oauthTokens, oauth)
  await app.register(oauthRoutes)
  // Stands in for the demo page: a session with a CSRF secret and a token for the form.
  app.get('/page', async (request, reply) => {
    request.session.set('visited', true)
    return { token: withCsrf ? reply.generateCsrf() : null }
  })
  app.get('/visited', async (request) => ({ visited: request.session.get('visited') === true }))
  await app.ready()
  return { app, cap }
}

async function visit (app: FastifyInstance): Promise<{ cookies: Record<string, string>, token: string }> {
  const page = await app.inject({ url: '/page' })
  return { cookies: Object.fromEntries(page.cookies.map((c) => [c.name, c.value])), token: page.json().token }
}

const form = { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }

t.test('with csrf on, a logout without the token is refused and the session survives', async (t) => {
  const { app, cap } = await start(t, true)
  const { cookies, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies, headers: form, payload: '' })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'FSS_CSRF_INVALID')
  t.equal(res.headers['cache-control'], 'no-store', 'the refusal is not cached either')
  t.same((await app.inject({ url: '/visited', cookies })).json(), { visited: true }, 'still logged in')
  cap.assertNoSecrets(t, [token, ...Object.values(cookies)])
})

t.test('with csrf on, the logout form carrying the token logs out', async (t) => {
  const { app, cap } = await start(t, true)
  const { cookies, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ _csrf: token }).toString() })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { loggedOut: true, revoked: false })
  const after = Object.fromEntries(res.cookies.filter((c) => c.maxAge !== 0).map((c) => [c.name, c.value]))
  t.same((await app.inject({ url: '/visited', cookies: after })).json(), { visited: false }, 'the session ended')
  // The browser's new cookies carry no secret: the old token is worthless with them.
  const again = await app.inject({ method: 'POST', url: '/logout', cookies: after, headers: { 'x-csrf-token': token } })
  t.equal(again.statusCode, 403)
  cap.assertNoSecrets(t, [token, ...Object.values(cookies)])
})

t.test('with csrf on, the token in the x-csrf-token header logs out', async (t) => {
  const { app } = await start(t, true)
  const { cookies, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'x-csrf-token': token } })
  t.equal(res.statusCode, 200)
})

t.test('with csrf off, the logout needs no token', async (t) => {
  const { app } = await start(t, false)
  const { cookies } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { loggedOut: true, revoked: false })
})

t.test('through the root plugin: csrf on, a form post lands on redirectAfterLogout, an API client gets JSON, debug stays exempt', async (t) => {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(sessionSuite, {
    session: { key, secure: false },
    csrf: true,
    oauth: { ...oauth, redirectAfterLogout: '/bye' },
    debug: true
  })
  app.get('/page', async (request, reply) => {
    request.session.set('visited', true)
    return { token: reply.generateCsrf() }
  })
  let transfers = 0
  app.post('/api/transfer', { preHandler: app.csrfProtection }, async () => { transfers++; return { done: true } })
  await app.ready()
  t.ok(app.hasPlugin('fastify-session-suite/csrf'), 'the root plugin registered csrf')

  const html = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,application/xhtml+xml' }
  let { cookies, token } = await visit(app)
  const refused = await app.inject({ method: 'POST', url: '/logout', cookies, headers: html, payload: '' })
  t.equal(refused.statusCode, 403, 'a form without the token is refused')
  t.same(Object.keys(refused.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'the refusal is the declared error shape')
  const form = await app.inject({ method: 'POST', url: '/logout', cookies, headers: html, payload: `_csrf=${token}` })
  t.equal(form.statusCode, 303, 'a form post is sent back to a page')
  t.equal(form.headers.location, '/bye')
  t.equal(form.headers['cache-control'], 'no-store')
  t.equal(form.body, '')

  ;({ cookies, token } = await visit(app))
  const viaAccept = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'x-csrf-token': token, accept: 'text/html' } })
  t.equal(viaAccept.statusCode, 303, 'a request accepting HTML is sent back to a page too')

  ;({ cookies, token } = await visit(app))
  const api = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'x-csrf-token': token, accept: 'application/json' } })
  t.equal(api.statusCode, 200, 'an API client gets JSON')
  t.same(api.json(), { loggedOut: true, revoked: false })
  ;({ cookies, token } = await visit(app))
  const bare = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'x-csrf-token': token } })
  t.same(bare.json(), { loggedOut: true, revoked: false }, 'so does a client that names no type at all')

  // The form parser POST /logout uses is its own: the app's JSON-only route still answers a form post 415.
  const jsonOnly = await app.inject({ method: 'POST', url: '/api/transfer', cookies, headers: { ...html, 'x-csrf-token': token }, payload: 'amount=1' })
  t.equal(jsonOnly.statusCode, 415, 'the app\'s JSON route is not given the logout\'s form parser')
  t.equal(transfers, 0)

  const debug = await app.inject({ method: 'POST', url: '/api/session/test-persistence', remoteAddress: '127.0.0.1' })
  t.equal(debug.statusCode, 200, 'the debug routes need no token')
  cap.assertNoSecrets(t, [token, ...Object.values(cookies)])
})

t.test("the logout keeps an app's own urlencoded parser", async (t) => {
  const app = await build(t)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, { _csrf: `app:${new URLSearchParams(body as string).get('_csrf') ?? ''}` })
  })
  await app.register(session, { key, secure: false })
  await app.register(csrf)
  await app.register(oauthTokens, oauth)
  await app.register(oauthRoutes)
  app.get('/page', async (_request, reply) => ({ token: reply.generateCsrf() }))
  const { cookies, token } = await visit(app)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${token}` })
  t.equal(res.statusCode, 403, 'the app\'s parser read the body (its prefixed token is wrong), not the suite\'s')
  t.equal(res.json().code, 'FSS_CSRF_INVALID')
})
