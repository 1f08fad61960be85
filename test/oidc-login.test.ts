// OpenID Connect login through the real routes against the real provider
// (oauth2-mock-server over HTTP): every bad id_token or callback is a coded
// error that stores nothing, logs nobody in and logs no value; a good one
// yields request.identity, the debug view and /health report it, a refresh
// keeps the subject, and logout ends the session at the provider.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { startOidcServer, type OidcServer, type TokenSubstitute } from './fixtures/oidc-server.ts'
import { listeningApp, HttpBrowser, type Answer } from './fixtures/oauth-app.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import { foreignKeyToken, hmacWithPublicKey, providerToken, signedByProviderKey, unsignedToken, CLIENT_ID } from './oidc-helper.ts'
import session from '../plugins/session.ts'
import sessionRegistry from '../plugins/session-registry.ts'
import oauthTokens, { type OAuthOptions } from '../plugins/oauth-tokens.ts'
import oauthRoutes from '../routes/oauth.ts'
import health from '../routes/health.ts'
import debug from '../routes/debug.ts'
import { fingerprint } from '../lib/digest.ts'
import { decodeFlow, encodeFlow, flowCookieName } from '../lib/oauth/flow-state.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

interface Env { origin: string, logs: LogCapture, browser: () => HttpBrowser, app: Awaited<ReturnType<typeof listeningApp>>['app'] }

interface EnvOptions extends Partial<OAuthOptions> {
  explicit?: boolean
  redirectAfterLogout?: string
  sessions?: boolean
}

/** An app with the suite's session, OAuth plugin and routes, /health and the debug routes. */
async function startApp (t: Test, opts: EnvOptions = {}): Promise<Env> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  const { explicit, redirectAfterLogout, sessions, ...oauth } = opts
  await app.register(session, { key: randomBytes(32) })
  // The session registry, in memory: the routes tell it of every login and logout.
  if (sessions === true) await app.register(sessionRegistry, { store: 'memory' })
  await app.register(oauthTokens, {
    provider: explicit === true
      ? { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token, revokeUrl: oidc.endpoints.revoke }
      : { issuer: oidc.issuer },
    clientId: CLIENT_ID,
    clientSecret: 'suite-client-secret',
    scope: ['openid', 'profile'],
    callbackUri: `${origin}/callback`,
    timeout: 2000,
    ...oauth
  })
  await app.register(oauthRoutes, redirectAfterLogout === undefined ? {} : { redirectAfterLogout })
  await app.register(health)
  await app.register(debug)
  app.get('/api/identity', async (request) => ({ identity: request.identity }))
  app.get('/api/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  app.get('/api/token', async (request) => ({ fp: fingerprint(await request.tokens.accessToken()) }))
  app.post('/api/store', async (request) => { await request.tokens.store(request.body); return { stored: true } })
  // A session whose login identity is gone (an older cookie): only what the service can do itself.
  app.post('/api/forget-identity', async (request) => { request.session.set('oauthIdentity', undefined); return { forgotten: true } })
  await app.ready()
  return { app, origin, logs, browser: () => new HttpBrowser(origin) }
}

/** GET /login and the provider's /authorize; the flow's nonce read from the authorization request. */
async function begin (env: Env): Promise<{ b: HttpBrowser, callbackUrl: URL, nonce: string, state: string }> {
  const b = env.browser()
  const { login, callbackUrl } = await b.startLogin()
  const nonce = new URL(login.location as string).searchParams.get('nonce')
  if (nonce === null) throw new Error('no nonce in the authorization request')
  return { b, callbackUrl, nonce, state: callbackUrl.searchParams.get('state') as string }
}

function assertCoded (t: Test, res: Answer, status: number, code: string): void {
  t.equal(res.status, status, `HTTP ${status}`)
  t.equal(res.json().code, code, code)
}

/** Nothing stored, nobody logged in, the flow cookies cleared, no value in the logs. */
async function assertNobody (t: Test, env: Env, b: HttpBrowser, res: Answer, secrets: string[]): Promise<void> {
  t.ok(res.setCookies.some((l) => l.startsWith('__Host-fss-flow.') && /Max-Age=0/.test(l)), 'the flow cookie cleared')
  t.notOk(res.setCookies.some((l) => l.startsWith('__Host-session=') && !/Max-Age=0/.test(l)), 'no session issued')
  t.same((await b.request('/api/meta')).json(), { meta: null }, 'no token stored')
  t.same((await b.request('/api/identity')).json(), { identity: null }, 'nobody logged in')
  for (const s of secrets) if (res.text.includes(s)) t.fail('a token or nonce appears in the answer')
  env.logs.assertNoSecrets(t, [...secrets, ...oidc.issued()])
}

const now = (): number => Math.floor(Date.now() / 1000)

t.test('a good login verifies the id_token and keeps the identity', async (t) => {
  const env = await startApp(t, { sessions: true })
  const { b, callbackUrl, nonce } = await begin(env)
  t.equal(Buffer.from(nonce, 'base64url').length, 32, 'a 256-bit nonce')
  const flowCookie = b.allSetCookies.find((l) => /^__Host-fss-flow\.[^=]+=[^;]+;.*HttpOnly/i.test(l)) as string
  t.equal(decodeFlow(flowCookie.split(';')[0].split('=')[1] as string)?.nonce, nonce, 'the nonce is kept in the HttpOnly flow cookie')
  const callback = await b.request(callbackUrl.href)
  t.equal(callback.status, 302)
  const { identity } = (await b.request('/api/identity')).json()
  t.same(identity, { sub: 'johndoe', iss: oidc.issuer, claims: {} }, 'sub and iss from the verified id_token')
  const flow = (await b.request('/api/oauth/test-flow')).json()
  t.same(flow.identity, { sub: 'johndoe', iss: oidc.issuer, claims: [] })
  t.equal(flow.idTokenVerified, true)
  const records = await env.app.sessions.list('johndoe')
  t.match(records, [{ sub: 'johndoe', provider: 'default' }], 'the session registry hears of the login')
  t.notOk('sid' in records[0], 'no sid from the provider, none kept')
  const healthAnswer = (await b.request('/health')).json()
  t.equal(healthAnswer.jwks.keyCount, 1)
  t.equal(healthAnswer.jwks.uri, oidc.endpoints.jwks)
  t.equal(healthAnswer.jwks.lastFailure, null)
  const jwk = oidc.service.issuer.keys.toJSON()[0] as { n: string, kid: string }
  t.notOk(JSON.stringify(healthAnswer).includes(jwk.n), 'no key material in /health')
})

t.test('the profile claims of the id_token are kept, allow-listed', async (t) => {
  const env = await startApp(t, { sessions: true })
  const { b, callbackUrl, nonce } = await begin(env)
  const token = await providerToken(oidc, { nonce, azp: CLIENT_ID, sid: 'provider-session-1', name: 'Ada Lovelace', email: 'ada@example.test', groups: ['admin'], picture: 'javascript:alert(1)' })
  oidc.substitute({ patch: (body) => { body.id_token = token } })
  t.equal((await b.request(callbackUrl.href)).status, 302)
  t.same((await b.request('/api/identity')).json().identity, { sub: 'user-1', iss: oidc.issuer, claims: { name: 'Ada Lovelace', email: 'ada@example.test' } })
  t.same((await b.request('/api/oauth/test-flow')).json().identity.claims, ['name', 'email'], 'names only')
  t.notOk(env.logs.lines.join('\n').includes('Ada Lovelace'), 'no claim value logged')
  t.match(await env.app.sessions.list('user-1'), [{ sub: 'user-1', provider: 'default', sid: 'provider-session-1' }], 'the provider\'s sid reaches the session registry')
})

t.test('every bad id_token is refused through the callback', async (t) => {
  const env = await startApp(t)
  const cases: Array<[string, (nonce: string) => Promise<string> | string, number, string]> = [
    ['signed by a key not in the JWKS', async (nonce) => await foreignKeyToken(claims(nonce), 'not-a-provider-kid'), 502, 'FSS_ID_TOKEN_INVALID'],
    ['alg none', (nonce) => unsignedToken(claims(nonce)), 502, 'FSS_ID_TOKEN_INVALID'],
    ['HS256 keyed with the provider\'s public key', async (nonce) => await hmacWithPublicKey(oidc, claims(nonce)), 502, 'FSS_ID_TOKEN_INVALID'],
    ['wrong iss', async (nonce) => await providerToken(oidc, { nonce, iss: 'http://127.0.0.1:1/evil' }), 502, 'FSS_ID_TOKEN_INVALID'],
    ['aud without the client', async (nonce) => await providerToken(oidc, { nonce, aud: 'another-client' }), 502, 'FSS_ID_TOKEN_INVALID'],
    ['several audiences without azp', async (nonce) => await providerToken(oidc, { nonce, aud: [CLIENT_ID, 'another-client'] }), 502, 'FSS_ID_TOKEN_INVALID'],
    ['several audiences, azp another client', async (nonce) => await providerToken(oidc, { nonce, aud: [CLIENT_ID, 'another-client'], azp: 'another-client' }), 502, 'FSS_ID_TOKEN_INVALID'],
    ['expired', async (nonce) => await signedByProviderKey(oidc, claims(nonce, { iat: now() - 500, exp: now() - 120 })), 502, 'FSS_ID_TOKEN_INVALID'],
    ['iat far in the future', async (nonce) => await signedByProviderKey(oidc, claims(nonce, { iat: now() + 3600, exp: now() + 7200 })), 502, 'FSS_ID_TOKEN_INVALID'],
    ['no id_token at all', () => '', 502, 'FSS_ID_TOKEN_INVALID'],
    ['missing nonce', async () => await providerToken(oidc, { nonce: undefined }), 400, 'FSS_ID_TOKEN_NONCE_INVALID'],
    ['another flow\'s nonce', async () => await providerToken(oidc, { nonce: (await begin(env)).nonce }), 400, 'FSS_ID_TOKEN_NONCE_INVALID']
  ]
  function claims (nonce: string, edits: Record<string, unknown> = {}): Record<string, unknown> {
    return { iss: oidc.issuer, sub: 'user-1', aud: CLIENT_ID, nonce, iat: now(), exp: now() + 600, ...edits }
  }
  for (const [name, forge, status, code] of cases) {
    await t.test(name, async (t) => {
      const { b, callbackUrl, nonce, state } = await begin(env)
      const forged = await forge(nonce)
      oidc.substitute({ patch: (body) => { if (forged === '') delete body.id_token; else body.id_token = forged } })
      const res = await b.request(callbackUrl.href)
      assertCoded(t, res, status, code)
      await assertNobody(t, env, b, res, [forged, nonce, state].filter((s) => s !== ''))
    })
  }
  t.equal(env.app.oauthInfo.counters.logins, 0, 'no login counted')
})

t.test('a nonce works once', async (t) => {
  const env = await startApp(t)
  const first = await begin(env)
  const done = await first.b.request(first.callbackUrl.href)
  t.equal(done.status, 302, 'the first login succeeds')

  await t.test('an id_token carrying a used nonce is refused in a new flow', async (t) => {
    const { b, callbackUrl, state } = await begin(env)
    const replayed = await providerToken(oidc, { nonce: first.nonce })
    oidc.substitute({ patch: (body) => { body.id_token = replayed } })
    const res = await b.request(callbackUrl.href)
    assertCoded(t, res, 400, 'FSS_ID_TOKEN_NONCE_INVALID')
    await assertNobody(t, env, b, res, [replayed, first.nonce, state])
  })

  await t.test('the used flow (its flow cookie, with state, nonce and verifier) is refused', async (t) => {
    const calls = oidc.tokenCalls.total
    const cookies = (first.b.allSetCookies.find((l) => l.startsWith('__Host-fss-flow.') && !/Max-Age=0/.test(l)) as string).split(';')[0] as string
    const b = env.browser()
    const res = await b.request(first.callbackUrl.href, { headers: { cookie: cookies } })
    assertCoded(t, res, 400, 'FSS_OAUTH_STATE_INVALID')
    t.equal(oidc.tokenCalls.total, calls, 'no code exchange')
    await assertNobody(t, env, b, res, [first.nonce, first.state])
  })
})

t.test('the callback\'s iss must be the issuer (RFC 9207)', async (t) => {
  const env = await startApp(t)
  const { b, callbackUrl, nonce, state } = await begin(env)
  callbackUrl.searchParams.set('iss', 'http://127.0.0.1:1/mix-up')
  const calls = oidc.tokenCalls.total
  const res = await b.request(callbackUrl.href)
  assertCoded(t, res, 400, 'FSS_OAUTH_ISSUER_INVALID')
  t.equal(oidc.tokenCalls.total, calls, 'the code is not exchanged')
  await assertNobody(t, env, b, res, [nonce, state])

  const ok = await begin(env)
  ok.callbackUrl.searchParams.set('iss', oidc.issuer)
  t.equal((await ok.b.request(ok.callbackUrl.href)).status, 302, 'the right iss passes')
})

t.test('a flow without a nonce is refused before the exchange', async (t) => {
  const env = await startApp(t)
  const { b, callbackUrl, nonce, state } = await begin(env)
  const verifier = randomBytes(32).toString('base64url')
  const crafted = encodeFlow({ provider: 'default', state, verifier, nonce: null, returnTo: null, startedAt: Date.now() })
  await b.jar.setCookie(`${flowCookieName('__Host-fss-flow.', state)}=${crafted}; Max-Age=60; Path=/; Secure; HttpOnly`, b.origin + '/')
  const calls = oidc.tokenCalls.total
  const res = await b.request(callbackUrl.href)
  assertCoded(t, res, 400, 'FSS_OAUTH_STATE_INVALID')
  t.equal(oidc.tokenCalls.total, calls)
  await assertNobody(t, env, b, res, [nonce, state])
})

t.test('a JWKS endpoint that is down or answers garbage is a 502; other routes work', async (t) => {
  for (const [name, answer] of [
    ['down', { status: 503, body: 'unavailable', contentType: 'text/plain' }],
    ['garbage', { body: '{"keys": "not a list"}' }],
    ['not JSON', { body: '<html>', contentType: 'text/html' }]
  ] as const) {
    await t.test(name, async (t) => {
      // A fresh app: its keys have never been fetched.
      const env = await startApp(t)
      oidc.answerPath('/jwks', answer)
      t.teardown(() => oidc.answerPath('/jwks', null))
      const { b, callbackUrl, nonce, state } = await begin(env)
      const res = await b.request(callbackUrl.href)
      assertCoded(t, res, 502, 'FSS_JWKS_UNAVAILABLE')
      await assertNobody(t, env, b, res, [nonce, state])
      t.equal((await b.request('/api/meta')).status, 200, 'other routes answer')
      const h = (await b.request('/health')).json()
      t.equal(h.jwks.lastFailure.code, 'FSS_JWKS_UNAVAILABLE')
      t.equal(h.checks.find((c: { name: string }) => c.name === 'oauth').status, 'warn')
    })
  }
})

t.test('a discovery document naming another issuer stops start-up', async (t) => {
  const doc = JSON.parse((await (await fetch(oidc.endpoints.discovery)).text()))
  oidc.answerPath('/.well-known/openid-configuration', { body: JSON.stringify({ ...doc, issuer: 'http://127.0.0.1:1/other' }) })
  t.teardown(() => oidc.answerPath('/.well-known/openid-configuration', null))
  await t.rejects(startApp(t), { code: 'FSS_OIDC_ISSUER_MISMATCH' })
  oidc.answerPath('/.well-known/openid-configuration', { status: 404, body: 'no' })
  const err = await startApp(t).catch((e: Error) => e) as Error & { code: string }
  t.equal(err.code, 'FSS_OIDC_DISCOVERY_FAILED')
  t.match(err.message, oidc.endpoints.discovery, 'names the URL')
  t.match(err.message, /Fix:/, 'and the fix')
})

t.test('options are given once', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(session, { key: randomBytes(32) })
  const base = { provider: { issuer: oidc.issuer }, clientId: CLIENT_ID, clientSecret: '', callbackUri: 'http://127.0.0.1/callback' }
  for (const [opts, path] of [
    [{ oidc: { issuer: oidc.issuer } }, 'oauth.oidc.issuer'],
    [{ oidc: { clientId: 'x' } }, 'oauth.oidc.clientId'],
    [{ scope: ['profile'] }, 'oauth.scope'],
    [{ mapIdentity: async () => null }, 'oauth.mapIdentity'],
    [{ provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token }, oidc: {} }, 'oauth.oidc.issuer'],
    [{ provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token }, userinfo: true }, 'oauth.userinfo'],
    [{ mapIdentity: 'nope' }, 'oauth.mapIdentity']
  ] as const) {
    const child = Fastify()
    await child.register(session, { key: randomBytes(32) })
    const err = await (async () => { await child.register(oauthTokens, { ...base, ...opts } as OAuthOptions); await child.ready() })().catch((e: Error) => e) as Error & { code: string }
    t.equal(err.code, 'FSS_OPTIONS_INVALID', path)
    t.match(err.message, path)
    await child.close()
  }
})

t.test('userinfo: true fetches UserInfo; its sub must match', async (t) => {
  const env = await startApp(t, { userinfo: true })
  oidc.service.once('beforeUserinfo', (res: { body: Record<string, unknown> }) => { res.body = { sub: 'johndoe', name: 'John Doe', email: 'j@example.test' } })
  const ok = await begin(env)
  t.equal((await ok.b.request(ok.callbackUrl.href)).status, 302)
  t.same((await ok.b.request('/api/identity')).json().identity.claims, { name: 'John Doe', email: 'j@example.test' })

  oidc.service.once('beforeUserinfo', (res: { body: Record<string, unknown> }) => { res.body = { sub: 'someone-else', name: 'Mallory' } })
  const { b, callbackUrl, nonce, state } = await begin(env)
  const res = await b.request(callbackUrl.href)
  assertCoded(t, res, 502, 'FSS_USERINFO_SUBJECT_MISMATCH')
  await assertNobody(t, env, b, res, [nonce, state])
})

t.test('a refreshed id_token must name the same user', async (t) => {
  const env = await startApp(t)
  const login = async (): Promise<HttpBrowser> => {
    const { b, callbackUrl } = await begin(env)
    // Expired at once: the next accessToken() refreshes.
    oidc.substitute({ patch: (body) => { body.expires_in = 0 } })
    t.equal((await b.request(callbackUrl.href)).status, 302)
    return b
  }
  const good = await login()
  oidc.substitute({ patch: (body) => { body.expires_in = 0 } })
  t.equal((await good.request('/api/token')).status, 200, 'the provider\'s refreshed id_token (same sub, no nonce) passes')
  t.equal((await good.request('/api/identity')).json().identity.sub, 'johndoe')
  oidc.substitute({ patch: (body) => { delete body.id_token; body.expires_in = 0 } })
  t.equal((await good.request('/api/token')).status, 200, 'a refresh without an id_token keeps the login\'s')
  await good.request('/api/forget-identity', { method: 'POST' })
  const stranger = await providerToken(oidc, { sub: 'someone-else', nonce: undefined })
  oidc.substitute({ patch: (body) => { body.id_token = stranger } })
  t.equal((await good.request('/api/token')).status, 200, 'without a login to bind to, a verified id_token is accepted')

  const b = await login()
  const other = await providerToken(oidc, { sub: 'someone-else', nonce: undefined })
  oidc.substitute({ patch: (body) => { body.id_token = other } })
  const res = await b.request('/api/token')
  assertCoded(t, res, 401, 'FSS_ID_TOKEN_SUBJECT_CHANGED')
  t.same((await b.request('/api/meta')).json(), { meta: null }, 'tokens cleared')
  t.same((await b.request('/api/identity')).json(), { identity: null }, 'logged out')
  env.logs.assertNoSecrets(t, [other, ...oidc.issued()])

  const c = await login()
  const unsigned = unsignedToken({ iss: oidc.issuer, sub: 'johndoe', aud: CLIENT_ID, iat: now(), exp: now() + 600 })
  oidc.substitute({ patch: (body) => { body.id_token = unsigned } })
  assertCoded(t, await c.request('/api/token'), 502, 'FSS_ID_TOKEN_INVALID')
  t.same((await c.request('/api/meta')).json(), { meta: null }, 'tokens cleared')
})

t.test('logout ends the session at the provider too', async (t) => {
  await t.test('providerLogout post: a page gets an auto-submitting form that carries the hint', async (t) => {
    const env = await startApp(t, { sessions: true, providerLogout: 'post' })
    const { b, callbackUrl } = await begin(env)
    await b.request(callbackUrl.href)
    const res = await b.request('/logout', { method: 'POST', headers: { accept: 'text/html' } })
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /text\/html/)
    t.match(res.text, `action="${oidc.endpoints.endSession}"`)
    t.match(res.text, /name="id_token_hint" value="ey/)
    t.match(res.text, `name="post_logout_redirect_uri" value="${env.origin}/"`)
    t.match(res.text, /name="state" value="[\w-]{43}"/)
    t.match(res.headers.get('content-security-policy'), /script-src 'sha256-[^']+'; form-action http:\/\/127\.0\.0\.1:\d+$/)
    t.same((await b.request('/api/identity')).json(), { identity: null })
    t.same(await env.app.sessions.list('johndoe'), [], 'the session registry ended the session')
    t.equal(env.app.sessions.counters().revoked.logout, 1, 'counted as a logout')
  })

  await t.test('by default (providerLogout get): a 303 to the end-session endpoint', async (t) => {
    const env = await startApp(t, { redirectAfterLogout: '/bye' })
    const { b, callbackUrl } = await begin(env)
    await b.request(callbackUrl.href)
    const res = await b.request('/logout', { method: 'POST', headers: { accept: 'text/html' } })
    t.equal(res.status, 303)
    const to = new URL(res.location as string)
    t.equal(to.origin + to.pathname, oidc.endpoints.endSession)
    t.equal(to.searchParams.get('post_logout_redirect_uri'), `${env.origin}/bye`)
    t.ok(to.searchParams.get('id_token_hint'))
    // The provider sends the browser back, logged out.
    const back = await b.request(to.href)
    t.equal(new URL(back.location as string).pathname, '/bye')
    t.same((await b.request('/api/identity')).json(), { identity: null })
  })

  await t.test('a JSON client gets the end-session URL without the hint', async (t) => {
    const env = await startApp(t)
    const { b, callbackUrl } = await begin(env)
    await b.request(callbackUrl.href)
    const body = (await b.request('/logout', { method: 'POST' })).json()
    t.equal(body.loggedOut, true)
    t.equal(body.revoked, false)
    const url = new URL(body.endSession.url)
    t.equal(url.searchParams.get('id_token_hint'), null, 'no token in a response body')
    t.equal(url.searchParams.get('client_id'), CLIENT_ID)
  })

  await t.test('tokens without an id_token: the provider gets no hint', async (t) => {
    const env = await startApp(t)
    const b = env.browser()
    await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'stored-by-the-app', token_type: 'Bearer' }) })
    const res = await b.request('/logout', { method: 'POST', headers: { accept: 'text/html' } })
    t.equal(res.status, 303)
    const url = new URL(res.location as string)
    t.equal(url.searchParams.get('client_id'), CLIENT_ID)
    t.notOk(url.searchParams.has('id_token_hint'))
  })

  await t.test('a provider without end_session_endpoint or revocation_endpoint: local logout', async (t) => {
    const doc = JSON.parse(await (await fetch(oidc.endpoints.discovery)).text())
    delete doc.end_session_endpoint
    delete doc.revocation_endpoint
    oidc.answerPath('/.well-known/openid-configuration', { body: JSON.stringify(doc) })
    t.teardown(() => oidc.answerPath('/.well-known/openid-configuration', null))
    const env = await startApp(t, { hostPrefixedCookies: false, revokeOnLogout: true })
    const b = env.browser()
    const { login, callbackUrl } = await b.startLogin()
    t.ok(login.setCookies.some((l) => l.startsWith('fss-flow.')), 'the flow cookie follows hostPrefixedCookies')
    t.equal((await b.request(callbackUrl.href)).status, 302)
    const revokes = oidc.revokeCalls
    t.same((await b.request('/logout', { method: 'POST' })).json(), { loggedOut: true, revoked: false })
    t.equal(oidc.revokeCalls, revokes, 'no revocation endpoint, no revocation call')
  })

  await t.test('providerLogout false: local logout only', async (t) => {
    const env = await startApp(t, { providerLogout: false })
    const { b, callbackUrl } = await begin(env)
    await b.request(callbackUrl.href)
    t.same((await b.request('/logout', { method: 'POST' })).json(), { loggedOut: true, revoked: false })
  })
})

t.test('plain OAuth 2: tokens, no identity unless mapIdentity says who', async (t) => {
  const plain = await startApp(t, { explicit: true })
  const p = plain.browser()
  const flow = await p.login()
  t.equal(flow.callback.status, 302)
  t.equal(new URL(flow.login.location as string).searchParams.get('nonce'), null, 'no nonce for plain OAuth 2')
  t.not((await p.request('/api/meta')).json().meta, null, 'tokens stored')
  t.same((await p.request('/api/identity')).json(), { identity: null })
  const dbg = (await p.request('/api/oauth/test-flow')).json()
  t.equal(dbg.identity, null)
  t.equal(dbg.idTokenVerified, false)
  t.equal((await p.request('/health')).json().jwks, undefined)
  t.same((await p.request('/logout', { method: 'POST' })).json(), { loggedOut: true, revoked: false })

  const mapped = await startApp(t, {
    explicit: true,
    async mapIdentity ({ accessToken, signal }) {
      const res = await fetch(oidc.endpoints.userinfo, { headers: { authorization: `Bearer ${accessToken}` }, signal })
      const body = await res.json() as { sub: string }
      return { sub: body.sub, iss: oidc.issuer, claims: { name: 'Mapped Name', nonce: 'dropped' } }
    }
  })
  const m = mapped.browser()
  await m.login()
  t.same((await m.request('/api/identity')).json().identity, { sub: 'johndoe', iss: oidc.issuer, claims: { name: 'Mapped Name' } })
  const mdbg = (await m.request('/api/oauth/test-flow')).json()
  t.same(mdbg.identity, { sub: 'johndoe', iss: oidc.issuer, claims: ['name'] })
  t.equal(mdbg.idTokenVerified, false)

  const bare = await startApp(t, { explicit: true, mapIdentity: async () => ({ sub: 'u-2', iss: 'https://id.example' }) })
  const y = bare.browser()
  await y.login()
  t.same((await y.request('/api/identity')).json().identity, { sub: 'u-2', iss: 'https://id.example', claims: {} })

  const none = await startApp(t, { explicit: true, mapIdentity: async () => null })
  const n = none.browser()
  await n.login()
  t.same((await n.request('/api/identity')).json(), { identity: null })

  const bad = await startApp(t, { explicit: true, mapIdentity: async () => ({ sub: '', iss: 'x' }) })
  const x = bad.browser()
  const res = (await x.login()).callback
  assertCoded(t, res, 500, 'FSS_OPTIONS_INVALID')
  t.same((await x.request('/api/meta')).json(), { meta: null })
})

t.test('explicit endpoints with oidc.issuer and oidc.jwksUri verify too', async (t) => {
  const env = await startApp(t, { explicit: true, oidc: { issuer: oidc.issuer, jwksUri: oidc.endpoints.jwks, endSessionEndpoint: oidc.endpoints.endSession } })
  const { b, callbackUrl } = await begin(env)
  t.equal((await b.request(callbackUrl.href)).status, 302)
  t.equal((await b.request('/api/identity')).json().identity.sub, 'johndoe')
  const forged = await foreignKeyToken({ iss: oidc.issuer, sub: 'x', aud: CLIENT_ID, iat: now(), exp: now() + 60 }, 'k')
  const next = await begin(env)
  oidc.substitute({ patch: (body) => { body.id_token = forged } } satisfies TokenSubstitute)
  assertCoded(t, await next.b.request(next.callbackUrl.href), 502, 'FSS_ID_TOKEN_INVALID')
})
