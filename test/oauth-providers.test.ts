// Several providers by name, over real HTTP against two real OpenID Connect
// providers (two oauth2-mock-servers on loopback): flows started in several
// tabs of one browser each complete and land where they started; a state is
// answered only at its own provider's callback (mix-up); every open-redirect
// form lands on the default page; connecting and disconnecting a second
// provider leave the login as it was; onLogin runs before the redirect and
// its failure stores nothing; each provider refreshes once under load.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { listeningApp, until, HttpBrowser, type Answer } from './fixtures/oauth-app.ts'
import { HOSTILE_RETURN_TO } from './fixtures/return-to-forms.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import session from '../plugins/session.ts'
import csrf from '../plugins/csrf.ts'
import oauthTokens, { type OAuthOptions } from '../plugins/oauth-tokens.ts'
import oauthRoutes from '../routes/oauth.ts'
import debug from '../routes/debug.ts'
import { fingerprint } from '../lib/digest.ts'
import { flowCookieName, MAX_FLOWS, MAX_FLOW_BYTES, MAX_FLOW_COOKIE_BYTES } from '../lib/oauth/flow-state.ts'
import { resolveOAuthProviders } from '../lib/oauth/options.ts'

let main: OidcServer
let api: OidcServer
t.before(async () => {
  [main, api] = await Promise.all([startOidcServer(), startOidcServer()])
  // The API provider knows the user under another subject: a connect must not make it the login.
  api.service.on('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => { token.payload.sub = 'api-user' })
})
t.teardown(async () => { await Promise.all([main.stop(), api.stop()]) })

declare module '@fastify/secure-session' {
  interface SessionData { tenants?: string[] }
}

interface Env { app: Awaited<ReturnType<typeof listeningApp>>['app'], origin: string, logs: LogCapture, browser: () => HttpBrowser }

async function startApp (t: Test, opts: Partial<OAuthOptions> & { csrf?: boolean } = {}): Promise<Env> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  const { csrf: withCsrf, ...oauth } = opts
  await app.register(session, { key: randomBytes(32) })
  if (withCsrf === true) await app.register(csrf)
  await app.register(oauthTokens, {
    providers: {
      main: { provider: { issuer: main.issuer }, clientId: 'suite-client', clientSecret: 'main-secret', scope: ['openid', 'profile'] },
      api: { provider: { issuer: api.issuer }, clientId: 'api-client', clientSecret: 'api-secret', scope: ['openid'] }
    },
    callbackUri: `${origin}/callback`,
    timeout: 2000,
    revokeOnLogout: true,
    ...oauth
  })
  await app.register(oauthRoutes)
  await app.register(debug)
  app.get('/api/identity', async (request) => ({ identity: request.identity }))
  app.get<{ Params: { name: string } }>('/api/meta/:name', async (request) => ({ meta: await request.tokens.for(request.params.name).metadata() }))
  app.get<{ Params: { name: string } }>('/api/token/:name', async (request) => ({ fp: fingerprint(await request.tokens.for(request.params.name).accessToken()) }))
  app.post<{ Params: { name: string } }>('/api/store/:name', async (request) => { await request.tokens.for(request.params.name).store(request.body); return { stored: true } })
  app.get('/api/csrf', async (_request, reply) => ({ token: reply.generateCsrf() }))
  await app.ready()
  return { app, origin, logs, browser: () => new HttpBrowser(origin) }
}

const stateOf = (url: URL): string => url.searchParams.get('state') as string

function assertCoded (t: Test, res: Answer, status: number, code: string): void {
  t.equal(res.status, status, `HTTP ${status}`)
  t.equal(res.json().code, code, code)
}

async function identity (b: HttpBrowser): Promise<{ sub: string, iss: string } | null> {
  return (await b.request('/api/identity')).json().identity
}

/** The stored token's metadata, without `expiresIn` (which moves with the clock). */
async function meta (b: HttpBrowser, name: string): Promise<Record<string, unknown> | null> {
  const found = (await b.request(`/api/meta/${name}`)).json().meta
  if (found !== null) delete found.expiresIn
  return found
}

t.test('GET /login starts the default provider, GET /login/:name another; each answers at its own callback', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  const first = await b.startLogin('/login')
  t.equal(new URL(first.login.location as string).origin, new URL(main.issuer).origin, 'the default provider')
  t.equal(first.callbackUrl.pathname, '/callback/main')
  const other = await b.startLogin('/login/api')
  t.equal(new URL(other.login.location as string).origin, new URL(api.issuer).origin, 'the named provider')
  t.equal(other.callbackUrl.pathname, '/callback/api')
  t.equal(new URL(other.login.location as string).searchParams.get('client_id'), 'api-client', 'with its own client')
  t.same(env.app.oauthFlow.providers, ['main', 'api'])
  t.equal(env.app.oauthInfo.defaultProvider, 'main')
  t.same(Object.keys(env.app.oauthInfo.providers), ['main', 'api'])
  t.equal(env.app.oauthInfo.providers.api?.oidc?.issuer, api.issuer, 'each provider its own discovery and JWKS')
})

t.test('two flows interleaved in one cookie jar both complete and land where they started', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  const one = await b.startLogin('/login?returnTo=%2Fone%3Fx%3D1')
  const two = await b.startLogin('/login?returnTo=/two')
  const three = await b.startLogin('/login/main')
  // Completed in another order than started.
  const second = await b.request(two.callbackUrl.href)
  t.equal(second.status, 302)
  t.equal(second.location, '/two')
  const first = await b.request(one.callbackUrl.href)
  t.equal(first.status, 302)
  t.equal(first.location, '/one?x=1', 'returnTo with its query')
  const third = await b.request(three.callbackUrl.href)
  t.equal(third.location, '/', 'without returnTo: the default page')
  t.equal((await identity(b))?.sub, 'johndoe')
  t.equal(env.app.oauthInfo.providers.main?.counters.logins, 3)
  env.logs.assertNoSecrets(t, [...main.issued(), ...[one, two, three].map((f) => stateOf(f.callbackUrl))])
})

t.test('a logged-in tab connects the API provider while another tab starts its own login: both land where they started', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  await b.login('/login')
  const connect = await b.startLogin('/login/api?returnTo=/connections')
  const relogin = await b.startLogin('/login?returnTo=/home')
  const connected = await b.request(connect.callbackUrl.href)
  t.equal(connected.location, '/connections')
  t.equal((await identity(b))?.sub, 'johndoe', 'the login is unchanged by the connect')
  t.ok(await meta(b, 'api'), 'the API provider\'s tokens are stored')
  const back = await b.request(relogin.callbackUrl.href)
  t.equal(back.location, '/home')
  t.equal((await identity(b))?.sub, 'johndoe')
})

t.test('flows are bounded: the newest five are kept, each cookie within 4096 bytes; a dropped or used state is refused', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  const flows = []
  for (let i = 0; i < MAX_FLOWS + 2; i++) flows.push(await b.startLogin(`/login?returnTo=/page/${i}`))
  const heldFlows = async (): Promise<number> => (await b.jar.getCookies(b.origin + '/')).filter((c) => c.key.startsWith('__Host-fss-flow.')).length
  t.equal(await heldFlows(), MAX_FLOWS, 'five flows at most')
  // Long returnTo paths: fewer flows, so that every request's Cookie header stays far below Node's 16 KiB.
  const longReturn = '/' + 'r'.repeat(2047)
  for (let i = 0; i < MAX_FLOWS; i++) flows.push(await b.startLogin(`/login?returnTo=${longReturn}`))
  const cookieHeader = await b.jar.getCookieString(b.origin + '/')
  t.ok(cookieHeader.length <= MAX_FLOW_BYTES + 200, `the flow cookies take ${cookieHeader.length} bytes`)
  t.ok(await heldFlows() >= 2, 'and at least two long flows fit')
  for (const line of b.allSetCookies.filter((l) => l.startsWith('__Host-fss-flow.'))) {
    t.ok(Buffer.byteLength(line) <= MAX_FLOW_COOKIE_BYTES, `a flow cookie of ${Buffer.byteLength(line)} bytes`)
    t.match(line, /; HttpOnly/)
    t.match(line, /; Secure/)
    t.match(line, /; Path=\/(;|$)/)
  }
  const oldest = flows[0] as (typeof flows)[number]
  const calls = main.tokenCalls.total
  assertCoded(t, await b.request(oldest.callbackUrl.href), 400, 'FSS_OAUTH_STATE_INVALID')
  // A client that kept the dropped cookie is refused as for a replay.
  const kept = oldest.login.setCookies.find((l) => l.startsWith(flowCookieName('__Host-fss-flow.', stateOf(oldest.callbackUrl))))?.split(';')[0] as string
  const replayed = await env.browser().request(oldest.callbackUrl.href, { headers: { cookie: kept } })
  assertCoded(t, replayed, 400, 'FSS_OAUTH_STATE_INVALID')
  t.match(replayed.json().message, /already used/)
  t.equal(main.tokenCalls.total, calls, 'no code exchange for a dropped flow')
  const newest = flows[flows.length - 1] as (typeof flows)[number]
  const done = await b.request(newest.callbackUrl.href)
  t.equal(done.location, longReturn, 'a 2048-character returnTo is kept')
  assertCoded(t, await b.request(newest.callbackUrl.href), 400, 'FSS_OAUTH_STATE_INVALID')
})

t.test('the mix-up is refused: a state is answered only at its own provider\'s callback', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  const calls = [main.tokenCalls.total, api.tokenCalls.total]
  // Provider main's code and state, delivered at provider api's callback.
  const atMain = await b.startLogin('/login')
  const wrong = new URL(atMain.callbackUrl.href)
  wrong.pathname = '/callback/api'
  assertCoded(t, await b.request(wrong.href), 400, 'FSS_OAUTH_PROVIDER_MISMATCH')
  // And the other way round; the flow is used up by the attempt.
  const atApi = await b.startLogin('/login/api')
  const back = new URL(atApi.callbackUrl.href)
  back.pathname = '/callback/main'
  assertCoded(t, await b.request(back.href), 400, 'FSS_OAUTH_PROVIDER_MISMATCH')
  assertCoded(t, await b.request(atApi.callbackUrl.href), 400, 'FSS_OAUTH_STATE_INVALID')
  t.same([main.tokenCalls.total, api.tokenCalls.total], calls, 'no code was exchanged anywhere')
  // RFC 9207: an authorization response naming the other issuer is refused at the flow's own callback.
  const flow = await b.startLogin('/login')
  flow.callbackUrl.searchParams.set('iss', api.issuer)
  assertCoded(t, await b.request(flow.callbackUrl.href), 400, 'FSS_OAUTH_ISSUER_INVALID')
  t.equal(await identity(b), null, 'nobody logged in')
  t.equal(await meta(b, 'main'), null)
  t.equal(await meta(b, 'api'), null)
  t.equal(env.app.oauthInfo.providers.api?.counters.loginFailures.FSS_OAUTH_PROVIDER_MISMATCH, 1, 'counted at the provider whose callback refused it')
})

t.test('an unknown provider is a coded 404; a callback with no flow in progress is refused', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  assertCoded(t, await b.request('/login/nope'), 404, 'FSS_OAUTH_PROVIDER_UNKNOWN')
  assertCoded(t, await b.request('/callback/nope?code=x&state=y'), 404, 'FSS_OAUTH_PROVIDER_UNKNOWN')
  assertCoded(t, await b.request('/disconnect/nope', { method: 'POST' }), 404, 'FSS_OAUTH_PROVIDER_UNKNOWN')
  assertCoded(t, await b.request(`/callback/api?code=x&state=${'s'.repeat(43)}`), 400, 'FSS_OAUTH_STATE_INVALID')
  t.equal((await b.request('/api/meta/nope')).json().code, 'FSS_OAUTH_PROVIDER_UNKNOWN', 'request.tokens.for refuses a name not configured')
  t.throws(() => env.app.oauthFlow.recordLogin(undefined, 'nope'), { code: 'FSS_OAUTH_PROVIDER_UNKNOWN' }, 'and so does the flow')
  const logins = env.app.oauthInfo.providers.main?.counters.logins
  env.app.oauthFlow.recordLogin()
  t.equal(env.app.oauthInfo.providers.main?.counters.logins, (logins as number) + 1, 'no name: the default provider')
})

t.test('every open-redirect form lands on the default page, its reason logged without the value', async (t) => {
  const env = await startApp(t, { redirectAfterLogin: '/start' })
  const b = env.browser()
  // An empty returnTo is no returnTo: the default page, nothing to log.
  for (const [value, reason] of HOSTILE_RETURN_TO.filter(([v]) => v !== '')) {
    const lines = env.logs.lines.length
    const flow = await b.startLogin(`/login?returnTo=${encodeURIComponent(value)}`)
    const res = await b.request(flow.callbackUrl.href)
    t.equal(res.location, '/start', `${JSON.stringify(value.slice(0, 30))}: the default page`)
    const logged = env.logs.lines.slice(lines).map((l) => JSON.parse(l) as Record<string, unknown>)
    t.ok(logged.some((l) => l.event === 'return-to-refused' && l.reason === reason), `reason ${reason} logged`)
    if (value.length >= 4) t.notOk(env.logs.lines.slice(lines).some((l) => l.includes(value) || l.includes(encodeURIComponent(value))), 'the value is not logged')
  }
  // Given twice, it is not a single path.
  const twice = await b.startLogin('/login?returnTo=/a&returnTo=/b')
  t.equal((await b.request(twice.callbackUrl.href)).location, '/start')
})

t.test('connect and disconnect leave the login intact; logout ends everything', async (t) => {
  const env = await startApp(t, { csrf: true })
  const b = env.browser()
  await b.login('/login')
  const who = await identity(b)
  t.equal(who?.sub, 'johndoe')
  const loginMeta = await meta(b, 'main')
  const connected = await b.login('/login/api')
  t.equal(connected.callback.status, 302)
  t.same(await identity(b), who, 'connecting keeps the identity')
  t.same(await meta(b, 'main'), loginMeta, 'and the login provider\'s tokens')
  t.ok(await meta(b, 'api'))
  const flow = (await b.request('/api/oauth/test-flow')).json()
  t.same(flow.providers.map((p: { name: string, login: boolean, tokenPresent: boolean }) => [p.name, p.login, p.tokenPresent]), [['main', true, true], ['api', false, true]], 'test-flow lists every provider')
  for (const secret of [...main.issued(), ...api.issued()]) if (JSON.stringify(flow).includes(secret)) t.fail('a token value in test-flow')

  const token = (await b.request('/api/csrf')).json().token as string
  assertCoded(t, await b.request('/disconnect/api', { method: 'POST' }), 403, 'FSS_CSRF_INVALID')
  t.ok(await meta(b, 'api'), 'a refused disconnect changes nothing')
  assertCoded(t, await b.request('/disconnect/main', { method: 'POST', headers: { 'x-csrf-token': token } }), 409, 'FSS_OAUTH_DISCONNECT_LOGIN')
  const revokes = api.revokeCalls
  const gone = await b.request('/disconnect/api', { method: 'POST', headers: { 'x-csrf-token': token } })
  t.same(gone.json(), { disconnected: true, revoked: true })
  t.equal(api.revokeCalls, revokes + 2, 'its refresh and access tokens revoked at its provider')
  t.equal(await meta(b, 'api'), null, 'its tokens are gone')
  t.same(await identity(b), who, 'the login stays')
  t.same(await meta(b, 'main'), loginMeta)
  t.same((await b.request('/disconnect/api', { method: 'POST', headers: { 'x-csrf-token': token } })).json(), { disconnected: false, revoked: false }, 'twice is harmless')

  await b.login('/login/api')
  const out = await b.request('/logout', { method: 'POST', headers: { 'x-csrf-token': token } })
  t.equal(out.status, 200)
  t.equal(out.json().revoked, true)
  t.equal(await identity(b), null)
  t.equal(await meta(b, 'main'), null)
  t.equal(await meta(b, 'api'), null, 'logout ends every provider\'s tokens')
  env.logs.assertNoSecrets(t, [...main.issued(), ...api.issued(), token])
})

t.test('the same user logging in again keeps the connected providers; another user starts empty', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  await b.login('/login')
  await b.login('/login/api')
  const connected = await meta(b, 'api')
  t.ok(connected)
  await b.login('/login')
  t.same(await meta(b, 'api'), connected, 'a re-login of the same user keeps the API connection')
  const other = (token: { payload: Record<string, unknown> }): void => { token.payload.sub = 'someone-else' }
  main.service.on('beforeTokenSigning', other)
  await b.login('/login')
  main.service.off('beforeTokenSigning', other)
  t.equal((await identity(b))?.sub, 'someone-else')
  t.equal(await meta(b, 'api'), null, 'another user does not inherit the connection')
})

t.test('logging in with a provider that is not the default makes it the login provider', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  await b.login('/login/api')
  t.equal((await identity(b))?.sub, 'api-user')
  assertCoded(t, await b.request('/disconnect/api', { method: 'POST' }), 409, 'FSS_OAUTH_DISCONNECT_LOGIN')
  // A connect of the default provider now: the login stays api's.
  await b.login('/login')
  t.equal((await identity(b))?.sub, 'api-user')
  t.ok(await meta(b, 'main'))
})

t.test('onLogin is awaited before the redirect with the provider, identity and metadata; its failure stores nothing', async (t) => {
  const seen: unknown[] = []
  let fail: string | null = null
  const env = await startApp(t, {
    async onLogin (request, event) {
      seen.push(event)
      if (event.provider === fail) throw new Error(`tenant lookup failed for ${event.provider}`)
      request.session.set('tenants', [`${event.provider}-tenant`])
    }
  })
  const b = env.browser()
  fail = 'main'
  const refused = await b.login('/login')
  assertCoded(t, refused.callback, 500, 'FSS_OAUTH_LOGIN_HOOK_FAILED')
  t.equal(await identity(b), null, 'nobody logged in')
  t.equal(await meta(b, 'main'), null, 'no token stored')
  t.notOk(refused.callback.text.includes('tenant lookup'), 'the hook\'s message is not sent')
  t.notOk(env.logs.lines.some((l) => l.includes('tenant lookup')), 'nor logged')

  fail = null
  const ok = await b.login('/login')
  t.equal(ok.callback.status, 302)
  t.match(seen[seen.length - 1], { provider: 'main', identity: { sub: 'johndoe', iss: main.issuer }, tokenMetadata: { hasRefreshToken: true }, connect: false })
  t.notOk(JSON.stringify(seen).includes(main.issued()[0] as string), 'no token value reaches the hook')

  fail = 'api'
  const before = await meta(b, 'main')
  const connectRefused = await b.login('/login/api')
  assertCoded(t, connectRefused.callback, 500, 'FSS_OAUTH_LOGIN_HOOK_FAILED')
  t.match(seen[seen.length - 1], { provider: 'api', identity: { sub: 'johndoe' }, connect: true })
  t.equal(await meta(b, 'api'), null, 'a refused connect stores nothing')
  t.equal((await identity(b))?.sub, 'johndoe', 'and keeps the login')
  t.same(await meta(b, 'main'), before)

  // A refused re-connect puts the earlier connection back.
  fail = null
  await b.login('/login/api')
  const connectedMeta = await meta(b, 'api')
  fail = 'api'
  assertCoded(t, (await b.login('/login/api')).callback, 500, 'FSS_OAUTH_LOGIN_HOOK_FAILED')
  t.same(await meta(b, 'api'), connectedMeta, 'the earlier connection is kept')
})

t.test('one refresh per provider under 100 concurrent requests per provider', async (t) => {
  const env = await startApp(t)
  const b = env.browser()
  await b.login('/login')
  await b.login('/login/api')
  // Both providers' tokens expired, each with the refresh token its provider issued.
  for (const [name, server] of [['main', main], ['api', api]] as const) {
    const stored = await b.request(`/api/store/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ access_token: `old-${name}-access-token`, token_type: 'Bearer', expires_in: 0, refresh_token: `old-${name}-refresh-token`, scope: 'openid' })
    })
    t.equal(stored.status, 200, `${name} (${server.issuer}) holds an expired token`)
  }
  const before = [main.tokenCalls.refresh_token, api.tokenCalls.refresh_token]
  main.hold()
  api.hold()
  const answers = [...Array.from({ length: 100 }, () => b.request('/api/token/main')), ...Array.from({ length: 100 }, () => b.request('/api/token/api'))]
  await main.waitForTokenCalls(main.tokenCalls.total + 1)
  await api.waitForTokenCalls(api.tokenCalls.total + 1)
  const { main: m, api: a } = env.app.oauthInfo.providers as Record<string, NonNullable<(typeof env.app.oauthInfo.providers)[string]>>
  await until(() => (m?.counters.shared ?? 0) >= 99 && (a?.counters.shared ?? 0) >= 99, '99 requests joining each provider\'s refresh')
  t.equal(m?.counters.refreshInFlight, 1)
  t.equal(a?.counters.refreshInFlight, 1)
  main.release()
  api.release()
  const results = await Promise.all(answers)
  t.same(new Set(results.map((r) => r.status)), new Set([200]))
  t.equal(main.tokenCalls.refresh_token - before[0], 1, 'one refresh at main')
  t.equal(api.tokenCalls.refresh_token - before[1], 1, 'one refresh at api')
  t.equal(new Set(results.slice(0, 100).map((r) => r.json().fp)).size, 1)
  t.equal(new Set(results.slice(100).map((r) => r.json().fp)).size, 1)
  t.not(results[0]?.json().fp, results[100]?.json().fp, 'each provider its own token')
  env.logs.assertNoSecrets(t, [...main.issued(), ...api.issued(), 'old-main-refresh-token', 'old-api-refresh-token'])
})

t.test('a providers configuration that cannot work is refused at start-up, naming the option', async (t) => {
  const explicit = { provider: { authorizeUrl: 'https://id.example/a', tokenUrl: 'https://id.example/t' }, clientId: 'c', clientSecret: '' }
  const base = { callbackUri: 'https://app.example/callback' }
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['neither provider nor providers', { ...base }, /oauth\.provider/],
    ['no clientId', { ...base, provider: explicit.provider, clientSecret: '' }, /oauth\.clientId/],
    ['defaultProvider without providers', { ...base, ...explicit, defaultProvider: 'main' }, /oauth\.defaultProvider/],
    ['provider beside providers', { ...base, provider: explicit.provider, providers: { main: explicit } }, /oauth\.provider/],
    ['clientSecret beside providers', { ...base, clientSecret: 'x', providers: { main: explicit } }, /oauth\.clientSecret/],
    ['a defaultProvider that names none', { ...base, providers: { main: explicit }, defaultProvider: 'other' }, /oauth\.defaultProvider/],
    ['a provider name out of pattern', { ...base, providers: { 'Main Provider': explicit } }, /oauth\.providers/],
    ['an onLogin that is not a function', { ...base, ...explicit, onLogin: 'yes' }, /oauth\.onLogin/],
    ['revokeOnLogout without a provider\'s revokeUrl', { ...base, revokeOnLogout: true, providers: { main: explicit } }, /oauth\.providers\.main\.provider\.revokeUrl/],
    ['a provider\'s mapIdentity that is not a function', { ...base, providers: { main: { ...explicit, mapIdentity: 1 } } }, /oauth\.providers\.main\.mapIdentity/]
  ]
  for (const [name, options, path] of cases) {
    const err = t.throws(() => resolveOAuthProviders(options), name) as Error & { code: string }
    t.equal(err.code, 'FSS_OPTIONS_INVALID', name)
    t.match(err.message, path, `${name}: names ${path.source}`)
  }
  t.same(resolveOAuthProviders({ ...base, providers: { main: explicit, api: explicit }, defaultProvider: 'api' }).providers.map((p) => [p.name, p.callbackUri, p.callbackPath]),
    [['main', 'https://app.example/callback/main', '/callback/main'], ['api', 'https://app.example/callback/api', '/callback/api']], 'one redirect URI and callback path per provider')

  // A store of the service's own without forProvider cannot keep two providers apart.
  const logs = captureLogs()
  const { app } = await listeningApp(t, logs)
  await app.register(session, { key: randomBytes(32) })
  const store = { async get () { return null }, async set () {}, async delete () {} }
  const err = await app.register(oauthTokens, { ...base, store, providers: { main: explicit, api: explicit } }).ready().then(() => null, (e: Error & { code: string }) => e)
  t.equal(err?.code, 'FSS_OPTIONS_INVALID')
  t.match(err?.message, /oauth\.store/)
})
