// Interoperability with a second, independent and strict OpenID Provider
// (panva's oidc-provider, OpenID Certified) through the root plugin, as an
// application registers it: discovery, login with PKCE and RFC 9207 `iss`,
// the verified identity, a refresh with rotation, revocation, RP-initiated
// logout and the provider's own Back-Channel Logout delivery.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import FakeTimers from '@sinonjs/fake-timers'
import sessionSuite from '../index.ts'
import { once } from 'node:events'
import { listeningApp, HttpBrowser, type Answer } from './fixtures/oauth-app.ts'
import { startCertifiedOp, type CertifiedOp, type CertifiedOpOptions } from './fixtures/certified-op.ts'
import { captureLogs, type LogCapture } from './helper.ts'
import { fingerprint } from '../lib/digest.ts'

const CLIENT_ID = 'interop-client'
const CLIENT_SECRET = 'interop-client-secret-0123456789'

interface Env { op: CertifiedOp, origin: string, logs: LogCapture, app: Awaited<ReturnType<typeof listeningApp>>['app'], browser: () => HttpBrowser }

async function start (t: Test, opOpts: Partial<CertifiedOpOptions> = {}, { oauthExtra = {} }: { oauthExtra?: Record<string, unknown> } = {}): Promise<Env> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  const op = await startCertifiedOp({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: `${origin}/callback`,
    postLogoutRedirectUri: `${origin}/`,
    backchannelLogoutUri: `${origin}/backchannel-logout`,
    ...opOpts
  })
  t.teardown(() => op.stop())
  await app.register(sessionSuite, {
    session: { key: randomBytes(32) },
    oauth: {
      provider: { issuer: op.issuer },
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      scope: ['openid', 'profile', 'email'],
      callbackUri: `${origin}/callback`,
      revokeOnLogout: true,
      userinfo: true,
      oidc: { profileClaims: ['name', 'email'] },
      ...oauthExtra
    },
    sessions: { store: 'memory' }
  } as never)
  app.get('/api/identity', async (request) => ({ identity: request.identity }))
  app.get('/api/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  app.get('/api/token', async (request) => ({ fp: fingerprint(await request.tokens.accessToken()) }))
  await app.ready()
  return { op, origin, logs, app, browser: () => new HttpBrowser(origin) }
}

/** login → authorize → interaction → resume → callback, following the provider's redirects only. */
async function login (env: Env, b: HttpBrowser, loginPath = '/login', callbackPath = '/callback'): Promise<{ callbackUrl: URL, status: number }> {
  let res = await b.request(loginPath)
  for (let hop = 0; hop < 10; hop++) {
    if (res.location === null) throw new Error(`answered ${res.status} without Location: ${res.text.replace(/<style>[^]*<\/style>/, '').slice(0, 2000)}`)
    const next = new URL(res.location, env.op.issuer)
    if (next.origin === env.origin && next.pathname === callbackPath) {
      const callback = await b.request(next.href)
      return { callbackUrl: next, status: callback.status }
    }
    res = await b.request(next.href)
  }
  throw new Error('too many redirects')
}

t.test('login, identity, refresh with rotation and logout against a certified provider', async (t) => {
  const env = await start(t)
  const b = env.browser()
  const { callbackUrl, status } = await login(env, b)
  t.equal(callbackUrl.searchParams.get('iss'), env.op.issuer, 'the provider sends RFC 9207 iss')
  t.equal(status, 302, 'the callback logs in')
  const { identity } = (await b.request('/api/identity')).json()
  t.same(identity, { sub: 'ada', iss: env.op.issuer, claims: { name: 'Ada Lovelace', email: 'ada@example.test' } }, 'the UserInfo claims, allow-listed')
  t.match((await b.request('/api/meta')).json().meta, { hasRefreshToken: true, hasIdToken: true, expiresAssumed: false, expiresIn: Number })
  const first = (await b.request('/api/token')).json().fp

  // An hour on (only Date is faked, so the provider's clock moves too) the access
  // token has expired: twenty requests at once refresh it once. The provider
  // rotates refresh tokens and revokes the whole grant when a used one comes back,
  // so a second refresh that works proves the first token was never replayed.
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  for (const round of [1, 2]) {
    clock.tick(3600_000)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await b.request('/api/token')))
    const fps = new Set(answers.map((a) => a.json().fp as string))
    t.equal(fps.size, 1, `round ${round}: twenty requests, one token`)
    t.notOk(fps.has(first), `round ${round}: a new access token`)
    t.same(answers.map((a) => a.status), Array(20).fill(200))
  }
  t.same((await b.request('/api/identity')).json().identity.sub, 'ada', 'the refreshes keep the identity')
  clock.uninstall()
  env.logs.assertNoSecrets(t, [...env.op.issued(), CLIENT_SECRET])
})

t.test('logout revokes at the provider and ends its session there', async (t) => {
  const env = await start(t)
  const b = env.browser()
  await login(env, b)
  const logout = await b.request('/logout', { method: 'POST', headers: { accept: 'text/html' } })
  t.same((await b.request('/api/identity')).json(), { identity: null }, 'logged out here')
  t.same(await liveRefreshTokens(env), [], 'the refresh token was revoked at the provider')
  // The default providerLogout: a top-level GET, which carries the provider's SameSite=Lax cookie.
  t.equal(logout.status, 303, 'a redirect to the end_session_endpoint')
  const endSession = new URL(logout.location as string)
  t.equal(endSession.origin + endSession.pathname, `${env.op.issuer}/session/end`)
  const ended = await submitForm(b, await b.request(endSession.href), { logout: 'yes' })
  t.equal(ended.status, 303, 'the provider ended its session')
  const landing = new URL(ended.location as string)
  t.equal(landing.origin + landing.pathname, `${env.origin}/`, 'and sends the browser back to the application')
  t.equal(landing.searchParams.get('state'), endSession.searchParams.get('state'), 'with the state the suite sent')
  // Logging in again needs the provider's login again: its session is gone.
  const again = await b.request((await b.request('/login')).location as string)
  t.match(again.location, /\/interaction\//, 'the provider asks for a login')
  env.logs.assertNoSecrets(t, [...env.op.issued(), CLIENT_SECRET])
})

t.test('the provider\'s Back-Channel Logout ends the session it names, on its own', async (t) => {
  const env = await start(t)
  const [b, c] = [env.browser(), env.browser()]
  await login(env, b)
  await login(env, c)
  t.equal((await env.app.sessions.list('ada')).length, 2, 'two sessions of one user')
  // c logs out at the provider itself: the provider posts a logout_token naming c's sid.
  const done = delivered(env.op)
  await submitForm(c, await c.request(`${env.op.issuer}/session/end`), { logout: 'yes' })
  await done
  t.same((await c.request('/api/identity')).json(), { identity: null }, 'the session the provider ended reads as logged out')
  t.equal((await b.request('/api/identity')).json().identity?.sub, 'ada', 'the other session stays')
  t.equal((await env.app.sessions.list('ada')).length, 1)
  env.logs.assertNoSecrets(t, [...env.op.issued(), CLIENT_SECRET])
})

t.test('client authentication: Basic, POST when the provider advertises only POST or when configured, and a public client', async (t) => {
  const cases: Array<{ name: string, op: Partial<CertifiedOpOptions>, oauth: Record<string, unknown>, basic: boolean }> = [
    { name: 'default', op: {}, oauth: {}, basic: true },
    { name: 'advertised post only', op: { clientAuthMethods: ['client_secret_post', 'none'], tokenEndpointAuthMethod: 'client_secret_post' }, oauth: {}, basic: false },
    { name: 'configured post', op: {}, oauth: { clientAuthMethod: 'client_secret_post' }, basic: false },
    { name: 'public client', op: { tokenEndpointAuthMethod: 'none', clientSecret: '' }, oauth: { clientSecret: '' }, basic: false }
  ]
  for (const c of cases) {
    const env = await start(t, c.op, { oauthExtra: c.oauth })
    const b = env.browser()
    const { status } = await login(env, b)
    t.equal(status, 302, `${c.name}: the callback logs in`)
    t.equal((await b.request('/api/identity')).json().identity?.sub, 'ada', `${c.name}: identity`)
    t.same(env.op.tokenCalls(), [{ basic: c.basic }], `${c.name}: ${c.basic ? 'HTTP Basic' : 'credentials in the body'}`)
  }
})

t.test('id_tokens signed with ES256, PS256 and EdDSA verify through discovery and the provider\'s JWKS', async (t) => {
  for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) {
    const env = await start(t, { idTokenAlg: alg })
    const b = env.browser()
    t.equal((await login(env, b)).status, 302, `${alg}: the callback logs in`)
    t.equal((await b.request('/api/identity')).json().identity?.sub, 'ada', `${alg}: the verified identity`)
    t.match((await b.request('/health')).json().jwks, { keyCount: 1, lastFailure: null }, `${alg}: one key fetched`)
  }
})

t.test('two providers share one back-channel endpoint: each ends only the sessions of logins made with it', async (t) => {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  const ops: Record<string, CertifiedOp> = {}
  for (const name of ['corp', 'partner']) {
    // The same subject at both providers: two different people.
    ops[name] = await startCertifiedOp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: `${origin}/callback/${name}`, backchannelLogoutUri: `${origin}/backchannel-logout` })
    const op = ops[name]
    t.teardown(() => op.stop())
  }
  const providers = Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, { provider: { issuer: op.issuer }, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }]))
  await app.register(sessionSuite, { session: { key: randomBytes(32) }, oauth: { providers, scope: ['openid'], callbackUri: `${origin}/callback` }, sessions: { store: 'memory' } } as never)
  app.get('/api/identity', async (request) => ({ identity: request.identity }))
  await app.ready()
  const env = (name: string): Env => ({ op: ops[name] as CertifiedOp, origin, logs, app, browser: () => new HttpBrowser(origin) })

  const users = { corpA: env('corp').browser(), corpB: env('corp').browser(), partner: env('partner').browser() }
  await login(env('corp'), users.corpA, '/login/corp', '/callback/corp')
  await login(env('corp'), users.corpB, '/login/corp', '/callback/corp')
  await login(env('partner'), users.partner, '/login/partner', '/callback/partner')
  t.equal((await app.sessions.list('ada')).length, 2, 'the default provider\'s user: two sessions')
  t.equal((await app.sessions.list('partner:ada')).length, 1, 'the other provider\'s user, qualified')

  // The partner provider ends its user's session: its logout_token, verified with its keys, ends only that one.
  const partnerDone = delivered(ops.partner as CertifiedOp)
  await submitForm(users.partner, await users.partner.request(`${ops.partner?.issuer as string}/session/end`), { logout: 'yes' })
  await partnerDone
  t.same((await users.partner.request('/api/identity')).json(), { identity: null }, 'the partner login is ended')
  t.equal((await users.corpA.request('/api/identity')).json().identity?.sub, 'ada', 'the corp user with the same sub is not')
  t.equal((await app.sessions.list('ada')).length, 2)

  // The corp provider ends one of its two sessions (its sid), not the other.
  const corpDone = delivered(ops.corp as CertifiedOp)
  await submitForm(users.corpA, await users.corpA.request(`${ops.corp?.issuer as string}/session/end`), { logout: 'yes' })
  await corpDone
  t.same((await users.corpA.request('/api/identity')).json(), { identity: null }, 'the corp session it named is ended')
  t.equal((await users.corpB.request('/api/identity')).json().identity?.sub, 'ada', 'the other corp session stays')
  t.equal(app.sessions.counters().revoked.backchannel, 2)
  logs.assertNoSecrets(t, [...ops.corp?.issued() ?? [], ...ops.partner?.issued() ?? [], CLIENT_SECRET])
})

/** The provider's next Back-Channel Logout delivery: resolves when we answered 200, rejects when we refused it. */
async function delivered (op: CertifiedOp): Promise<void> {
  const failed = once(op.provider, 'backchannel.error').then(() => { throw new Error('the back-channel logout was refused') })
  await Promise.race([once(op.provider, 'backchannel.success'), failed])
  failed.catch(() => {})
}

/** Refresh tokens the provider still holds as usable. */
async function liveRefreshTokens (env: Env): Promise<string[]> {
  const live: string[] = []
  for (const value of env.op.issued()) {
    const token = await env.op.provider.RefreshToken.find(value)
    if (token !== undefined && token.isValid) live.push(value)
  }
  return live
}
/** Submits the page's first form as a browser would (hidden fields plus `extra`). */
async function submitForm (b: HttpBrowser, page: Answer, extra: Record<string, string> = {}): Promise<Answer> {
  const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1]
  if (action === undefined) throw new Error(`no form in: ${page.text.slice(0, 200)}`)
  const body = new URLSearchParams()
  for (const m of page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) body.set(m[1] as string, m[2] as string)
  for (const [k, v] of Object.entries(extra)) body.set(k, v)
  return await b.request(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
}
