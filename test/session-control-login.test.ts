// Session control through the OAuth routes with the real provider
// (oauth2-mock-server) and the memory registry: the callback registers a login
// with its verified identity (and the provider's sid), POST /logout ends it,
// and POST /backchannel-logout ends sessions for a logout_token signed by the
// provider's own key, by sid or by sub, and refuses every bad one with 400
// invalid_request, revoking nothing.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'
import { CLIENT_ID, foreignKeyToken, publicJwk, signedByProviderKey, unsignedToken } from './oidc-helper.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../lib/oidc/logout-token.ts'

const env = { SESSION_SECRET_KEY: randomBytes(32).toString('hex') }

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

interface Rig { app: FastifyInstance, origin: string, logs: LogCapture }

async function start (t: Test, extra: Partial<SessionSuiteOptions> = {}): Promise<Rig> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env },
    oauth: { provider: { issuer: oidc.issuer }, clientId: CLIENT_ID, clientSecret: 'login-secret', scope: ['openid'], callbackUri: `${origin}/callback`, timeout: 2000 },
    sessions: { store: 'memory' },
    ...extra
  })
  app.get('/test/me', async (request) => ({ id: app.sessions.currentId(request) ?? null, token: await request.tokens.metadata() !== null }))
  await app.ready()
  return { app, origin, logs }
}

/** Logs a browser in; the provider's id_token carries `sid` when given. */
async function login (t: Test, origin: string, sid?: string): Promise<{ browser: HttpBrowser, id: string }> {
  const addSid = (token: { payload: Record<string, unknown> }): void => { if (sid !== undefined) token.payload.sid = sid }
  oidc.service.on('beforeTokenSigning', addSid)
  const browser = new HttpBrowser(origin)
  try {
    const { callback } = await browser.login()
    t.equal(callback.status, 302, 'logged in')
  } finally {
    oidc.service.off('beforeTokenSigning', addSid)
  }
  const { id } = (await browser.request('/test/me')).json()
  return { browser, id }
}

const now = (): number => Math.floor(Date.now() / 1000)

function logoutClaims (edits: Record<string, unknown> = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    iss: oidc.issuer, aud: CLIENT_ID, iat: now(), exp: now() + 120, jti: randomBytes(12).toString('hex'), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...edits
  }
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
  return claims
}

async function postLogout (origin: string, body: string, type = 'application/x-www-form-urlencoded'): Promise<{ status: number, body: any, cacheControl: string | null }> {
  const res = await fetch(`${origin}/backchannel-logout`, { method: 'POST', headers: { 'content-type': type }, body })
  return { status: res.status, body: await res.json(), cacheControl: res.headers.get('cache-control') }
}

t.test('the callback registers a login with its verified identity and sid, and POST /logout ends it', async (t) => {
  const { app, origin } = await start(t)
  const { browser, id } = await login(t, origin, 'sid-1')
  t.match(id, /^[\w-]{22}$/, 'the session has a registry id')
  t.match(await app.sessions.get(id), { sub: 'johndoe', sid: 'sid-1', provider: 'default' })
  const listed = (await browser.request('/api/sessions')).json().sessions
  t.same(listed.map((s: { id: string, current: boolean }) => [s.id, s.current]), [[id, true]])
  t.equal((await browser.request('/logout', { method: 'POST' })).status, 200)
  t.equal(await app.sessions.get(id), null, 'the record is gone')
  t.equal(app.sessions.counters().revoked.logout, 1, 'counted as a logout')
})

t.test('a second login gets a new id; the first session stays its own', async (t) => {
  const { app, origin } = await start(t)
  const first = await login(t, origin)
  const { callback } = await first.browser.login()
  t.equal(callback.status, 302)
  const { id } = (await first.browser.request('/test/me')).json()
  t.not(id, first.id, 'new at login')
  t.equal((await app.sessions.list('johndoe')).length, 2, 'the earlier session is still live until it is ended')
})

t.test('back-channel logout by sid ends that provider session only, once; a replay is refused', async (t) => {
  const { app, origin, logs } = await start(t)
  const a = await login(t, origin, 'sid-a')
  const b = await login(t, origin, 'sid-b')
  const token = await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a' }), { typ: 'logout+jwt' })
  const first = await postLogout(origin, `logout_token=${token}`)
  t.same([first.status, first.body], [200, { revoked: 1 }])
  t.equal(first.cacheControl, 'no-store')
  t.same((await a.browser.request('/test/me')).json(), { id: null, token: false }, 'logged out, tokens gone')
  t.same((await b.browser.request('/test/me')).json(), { id: b.id, token: true }, 'the other provider session is untouched')
  const again = await postLogout(origin, `logout_token=${token}`)
  t.same([again.status, again.body.error], [400, 'invalid_request'], 'the replay is refused')
  t.match(again.body.error_description, /replayed/)
  t.equal(app.sessions.counters().revoked.backchannel, 1)
  t.notOk(logs.lines.join('\n').includes(token.split('.')[2]), 'the token is never logged')
})

t.test('back-channel logout by sub ends every session of the user', async (t) => {
  const { app, origin } = await start(t)
  const a = await login(t, origin, 'sid-a')
  const b = await login(t, origin)
  const token = await signedByProviderKey(oidc, logoutClaims({ sub: 'johndoe' }))
  t.same(await postLogout(origin, `logout_token=${token}`), { status: 200, body: { revoked: 2 }, cacheControl: 'no-store' })
  for (const device of [a, b]) t.same((await device.browser.request('/test/me')).json(), { id: null, token: false })
  t.equal(app.sessions.counters().revoked.backchannel, 2)
})

t.test('every bad logout_token is refused with 400 invalid_request and revokes nothing', async (t) => {
  const { app, origin } = await start(t)
  const a = await login(t, origin, 'sid-a')
  const kid = publicJwk(oidc).kid
  const bad: Array<[string, string]> = [
    ['unsigned', unsignedToken(logoutClaims({ sid: 'sid-a' }))],
    ['signed by another key', await foreignKeyToken(logoutClaims({ sid: 'sid-a' }), kid)],
    ['for another audience', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', aud: 'another-client' }))],
    ['expired', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', iat: now() - 3600, exp: now() - 3000 }))],
    ['issued too long ago', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', iat: now() - 3600, exp: now() + 600 }))],
    ['carrying a nonce', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', nonce: 'n' }))],
    ['without the events claim', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', events: undefined }))],
    ['with neither sid nor sub', await signedByProviderKey(oidc, logoutClaims())],
    ['from another issuer', await signedByProviderKey(oidc, logoutClaims({ sid: 'sid-a', iss: 'https://evil.test' }))],
    ['not a JWT', 'not-a-jwt']
  ]
  for (const [name, token] of bad) {
    const res = await postLogout(origin, `logout_token=${encodeURIComponent(token)}`)
    t.same([res.status, res.body.error], [400, 'invalid_request'], name)
    t.equal(res.cacheControl, 'no-store', `${name}: not cached`)
  }
  const missing = await postLogout(origin, 'other=1')
  t.same([missing.status, missing.body.error], [400, 'invalid_request'], 'no logout_token')
  const twice = await postLogout(origin, 'logout_token=a&logout_token=b')
  t.same([twice.status, twice.body.error], [400, 'invalid_request'], 'logout_token twice')
  const json = await postLogout(origin, JSON.stringify({ logout_token: 'x' }), 'application/json')
  t.equal(json.status, 415, 'only a form body')
  t.equal(app.sessions.counters().revoked.backchannel, 0, 'nothing revoked')
  t.same((await a.browser.request('/test/me')).json(), { id: a.id, token: true }, 'still logged in')
})

t.test('back-channel logout is on with an OpenID Connect provider, off on request, and refused without OAuth', async (t) => {
  const off = await start(t, { sessions: { store: 'memory', backchannel: false } })
  t.equal((await postLogout(off.origin, 'logout_token=x')).status, 404, 'left out')
  const moved = await start(t, { sessions: { store: 'memory', backchannel: { path: '/bcl' } } })
  const res = await fetch(`${moved.origin}/bcl`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'logout_token=x' })
  t.equal(res.status, 400, 'at the configured path')
  const { app } = await listeningApp(t, captureLogs())
  app.register(sessionSuite, { secret: { env }, sessions: { store: 'memory', backchannel: true } })
  await t.rejects(async () => { await app.ready() }, { code: 'FSS_OPTIONS_INVALID', message: /sessions\.backchannel/ })
  const plain = await listeningApp(t, captureLogs())
  plain.app.register(sessionSuite, {
    secret: { env },
    oauth: { provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token }, clientId: CLIENT_ID, clientSecret: 's', callbackUri: `${plain.origin}/callback` },
    sessions: { store: 'memory', backchannel: true }
  })
  await t.rejects(async () => { await plain.app.ready() }, { code: 'FSS_OPTIONS_INVALID', message: /OpenID Connect/ }, 'a plain OAuth 2 provider signs no logout_token')
})

t.test('backchannel.provider: only that provider\'s logout tokens are taken; an unknown name is refused at start-up', async (t) => {
  const twoProviders = (origin: string): SessionSuiteOptions['oauth'] => ({
    providers: {
      first: { provider: { issuer: oidc.issuer }, clientId: CLIENT_ID, clientSecret: 's' },
      second: { provider: { issuer: oidc.issuer }, clientId: CLIENT_ID, clientSecret: 's' }
    },
    callbackUri: `${origin}/callback`,
    timeout: 2000
  })
  const { app, origin } = await listeningApp(t, captureLogs())
  await app.register(sessionSuite, { secret: { env }, oauth: twoProviders(origin), sessions: { store: 'memory', backchannel: { provider: 'second' } } })
  await app.ready()
  // Both providers have this issuer and client id: the first verifies the token, and it is not `second`.
  const res = await postLogout(origin, `logout_token=${await signedByProviderKey(oidc, logoutClaims({ sub: 'johndoe' }))}`)
  t.same([res.status, res.body.error, res.body.error_description], [400, 'invalid_request', 'The logout_token was refused: its iss is not the configured issuer'])
  t.equal(app.sessions.counters().revoked.backchannel, 0, 'nothing revoked')

  const wrong = await listeningApp(t, captureLogs())
  wrong.app.register(sessionSuite, { secret: { env }, oauth: twoProviders(wrong.origin), sessions: { store: 'memory', backchannel: { provider: 'third' } } })
  await t.rejects(async () => { await wrong.app.ready() }, { code: 'FSS_OPTIONS_INVALID', message: /sessions\.backchannel\.provider/ })
})

t.test("the provider's keys out of reach: 502, nothing revoked, and the same token works once they are back", async (t) => {
  const { app, origin } = await start(t)
  const token = await signedByProviderKey(oidc, logoutClaims({ sub: 'johndoe' }))
  const jwksPath = new URL(oidc.endpoints.jwks).pathname
  oidc.answerPath(jwksPath, { status: 500, body: 'down' })
  let down
  try {
    down = await postLogout(origin, `logout_token=${token}`)
  } finally {
    oidc.answerPath(jwksPath, null)
  }
  t.same([down.status, down.body.code], [502, 'FSS_JWKS_UNAVAILABLE'])
  t.equal(app.sessions.counters().revoked.backchannel, 0)
})

t.test('whatever body reaches POST /backchannel-logout, the answer is 400 invalid_request or 415, never a 5xx (table + fast-check)', async (t) => {
  const { app, origin } = await start(t)
  const post = async (init: { type?: string, body?: string }): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${origin}/backchannel-logout`, { method: 'POST', headers: init.type === undefined ? {} : { 'content-type': init.type }, body: init.body })
    const text = await res.text()
    return { status: res.status, body: text === '' ? null : JSON.parse(text) }
  }
  const table: Array<[string, { type?: string, body?: string }, number]> = [
    ['no body, no content type', {}, 400],
    ['an empty form', { type: 'application/x-www-form-urlencoded', body: '' }, 400],
    ['a form with a charset', { type: 'application/x-www-form-urlencoded; charset=utf-8', body: 'logout_token=x' }, 400],
    ['a bracketed name', { type: 'application/x-www-form-urlencoded', body: 'logout_token[]=x' }, 400],
    ['a bare name', { type: 'application/x-www-form-urlencoded', body: 'logout_token' }, 400],
    ['malformed escapes', { type: 'application/x-www-form-urlencoded', body: 'logout_token=%E0%A4%A&%%%' }, 400],
    ['JSON', { type: 'application/json', body: '{"logout_token":"x"}' }, 415],
    ['text', { type: 'text/plain', body: 'logout_token=x' }, 415],
    ['multipart', { type: 'multipart/form-data; boundary=x', body: '--x--' }, 415]
  ]
  for (const [name, init, status] of table) {
    const res = await post(init)
    t.equal(res.status, status, name)
    if (status === 400) t.equal(res.body.error, 'invalid_request', `${name}: the spec's error`)
  }
  await fc.assert(fc.asyncProperty(
    fc.option(fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', 'application/octet-stream', 'x/y'), { nil: undefined }),
    fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
    async (type, body) => {
      const res = await post({ type, body })
      return res.status === 400 || res.status === 415
    }
  ), { numRuns: 40 })
  t.equal(app.sessions.counters().revoked.backchannel, 0, 'nothing revoked')
})
