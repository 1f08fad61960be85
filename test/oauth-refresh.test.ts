// Refresh: once per refresh token however many requests ask, the old refresh
// token kept when the provider sends none, coded errors, and a backoff.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp, until, type OAuthApp, type HttpBrowser } from './fixtures/oauth-app.ts'
import { fingerprint } from '../lib/oauth/token.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

let n = 0
/** A session holding an expired token with a refresh token of our choosing. */
async function expiredSession (env: OAuthApp, extra: Record<string, unknown> = {}): Promise<{ b: HttpBrowser, access: string, refresh: string }> {
  const b = env.browser()
  const access = `old-access-${++n}-${'a'.repeat(20)}`
  const refresh = `old-refresh-${n}-${'r'.repeat(20)}`
  const res = await b.request('/api/store', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ access_token: access, token_type: 'bearer', expires_in: 0, refresh_token: refresh, scope: 'openid profile', ...extra })
  })
  if (res.status !== 200) throw new Error(`store answered ${res.status}: ${res.text}`)
  return { b, access, refresh }
}

/** The refresh_token sent by each refresh call. */
function refreshTokensSent (t: Test): string[] {
  const sent: string[] = []
  const listener = (_r: unknown, req: { body: Record<string, string> }): void => {
    if (req.body.grant_type === 'refresh_token') sent.push(req.body.refresh_token)
  }
  oidc.service.on('beforeResponse', listener)
  t.teardown(() => { oidc.service.off('beforeResponse', listener) })
  return sent
}

t.test('100 concurrent requests with an expired token: one token-endpoint call, all get the new token', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const { b, access, refresh } = await expiredSession(env)
  const staleCookie = await b.jar.getCookieString(b.origin + '/')
  const before = oidc.tokenCalls.refresh_token
  // Hold the provider's answer until every request is waiting on it.
  oidc.hold()
  const answers = Array.from({ length: 100 }, () => b.request('/api/token'))
  await oidc.waitForTokenCalls(oidc.tokenCalls.total + 1)
  await until(() => env.app.oauthInfo.counters.shared >= 99, '99 requests joining the refresh')
  t.equal(env.app.oauthInfo.counters.refreshInFlight, 1)
  oidc.release()
  const results = await Promise.all(answers)
  t.equal(oidc.tokenCalls.refresh_token - before, 1, 'exactly one refresh call')
  t.same(new Set(results.map((r) => r.status)), new Set([200]))
  const fps = new Set(results.map((r) => r.json().fp))
  t.equal(fps.size, 1, 'all 100 got the same token')
  t.not([...fps][0], fingerprint(access), 'and it is the new one')
  // Every response wrote the winner's token: the cookie each one set reads back as the new token.
  t.ok(results.every((r) => r.setCookies.some((l) => l.startsWith('__Host-session='))), 'each response re-issued the session')
  // A request still carrying the old cookie (sent before the new one arrived) gets the winner's result.
  const late = await env.browser().request('/api/token', { headers: { cookie: staleCookie } })
  t.equal(late.status, 200)
  t.equal(late.json().fp, [...fps][0])
  t.equal(oidc.tokenCalls.refresh_token - before, 1, 'the stale refresh token was not replayed')
  t.equal(env.app.oauthInfo.counters.refreshes, 1)
  env.logs.assertNoSecrets(t, [...oidc.issued(), access, refresh, ...await b.cookieValues(), staleCookie])
})

t.test('the old refresh token is kept when the provider sends none, replaced when it sends one', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const { b, refresh } = await expiredSession(env, { id_token: 'old-id-token-value' })
  const sent = refreshTokensSent(t)
  oidc.substitute({ patch: (body) => { delete body.refresh_token; delete body.scope; delete body.id_token } })
  t.equal((await b.request('/api/token')).status, 200)
  const meta = (await b.request('/api/meta')).json().meta
  t.equal(meta.hasRefreshToken, true, 'refresh token kept')
  t.same(meta.scopes, ['openid', 'profile'], 'scope kept when the answer has none')
  t.equal(meta.hasIdToken, true, 'id_token kept when the answer has none')
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  clock.setSystemTime(Date.now() + 2 * 3600_000)
  t.equal((await b.request('/api/token')).status, 200)
  t.equal(sent[1], refresh, 'the second refresh used the kept refresh token')
  clock.setSystemTime(Date.now() + 2 * 3600_000)
  t.equal((await b.request('/api/token')).status, 200)
  t.not(sent[2], refresh, 'after a rotation the new refresh token is used')
  t.match(sent[2], /^[0-9a-f-]{36}$/)
})

t.test('invalid_grant clears the tokens and answers 401 FSS_TOKEN_REFRESH_REJECTED', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const { b } = await expiredSession(env)
  const stale = await b.jar.getCookieString(b.origin + '/')
  oidc.substitute({ status: 400, json: { error: 'invalid_grant', error_description: 'refresh token revoked' } })
  const res = await b.request('/api/token')
  t.equal(res.status, 401)
  t.equal(res.json().code, 'FSS_TOKEN_REFRESH_REJECTED')
  t.same((await b.request('/api/meta')).json(), { meta: null }, 'tokens cleared')
  // Another tab still sends the old cookie: same answer, and the dead refresh token is not replayed.
  const calls = oidc.tokenCalls.refresh_token
  const other = await env.browser().request('/api/token', { headers: { cookie: stale } })
  t.equal(other.json().code, 'FSS_TOKEN_REFRESH_REJECTED')
  t.equal(oidc.tokenCalls.refresh_token, calls)
  t.equal(env.app.oauthInfo.counters.failures.rejected, 1)
  t.equal(env.app.oauthInfo.lastRefreshFailure?.code, 'FSS_TOKEN_REFRESH_REJECTED')
})

t.test('a 5xx keeps the tokens, answers 502, and is not retried within the backoff window', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshBackoff: 5 })
  const { b } = await expiredSession(env)
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  oidc.substitute({ status: 503, json: { error: 'temporarily_unavailable' } })
  const before = oidc.tokenCalls.refresh_token
  const first = await b.request('/api/token')
  t.equal(first.status, 502)
  t.equal(first.json().code, 'FSS_TOKEN_PROVIDER_ERROR')
  t.equal((await b.request('/api/meta')).json().meta.hasRefreshToken, true, 'tokens kept')
  for (let i = 0; i < 5; i++) {
    const again = await b.request('/api/token')
    t.equal(again.json().code, 'FSS_TOKEN_PROVIDER_ERROR')
  }
  t.equal(oidc.tokenCalls.refresh_token - before, 1, 'no call during the backoff window')
  t.equal(env.app.oauthInfo.counters.backedOff, 5)
  clock.tick(5001)
  const later = await b.request('/api/token')
  t.equal(later.status, 200, 'retried after the window')
  t.equal(oidc.tokenCalls.refresh_token - before, 2)
})

t.test('a timeout keeps the tokens and answers 504', async (t) => {
  const env = await startOAuthApp(t, oidc, { timeout: 300 })
  const { b } = await expiredSession(env)
  oidc.substitute({ hang: true })
  const res = await b.request('/api/token')
  t.equal(res.status, 504)
  t.equal(res.json().code, 'FSS_TOKEN_PROVIDER_TIMEOUT')
  t.equal((await b.request('/api/meta')).json().meta.hasRefreshToken, true)
  const calls = oidc.tokenCalls.refresh_token
  t.equal((await b.request('/api/token')).json().code, 'FSS_TOKEN_PROVIDER_TIMEOUT', 'same answer during the backoff')
  t.equal(oidc.tokenCalls.refresh_token, calls, 'without a new call')
  t.equal(env.app.oauthInfo.counters.failures.timeout, 1)
})

t.test('an unusable refresh answer is a 502 FSS_TOKEN_INVALID, tokens kept', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const { b } = await expiredSession(env)
  oidc.substitute({ json: { token_type: 'Bearer' } })
  const res = await b.request('/api/token')
  t.equal(res.status, 502)
  t.equal(res.json().code, 'FSS_TOKEN_INVALID')
  t.equal((await b.request('/api/token')).json().code, 'FSS_TOKEN_INVALID', 'same answer during the backoff')
  t.equal(env.app.oauthInfo.counters.failures.invalid, 1)
})

t.test('no token, and an expired token without a refresh token, ask for a login', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const b = env.browser()
  const none = await b.request('/api/token')
  t.equal(none.status, 401)
  t.equal(none.json().code, 'FSS_TOKEN_MISSING')
  const stored = await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'x'.repeat(12), token_type: 'Bearer', expires_at: new Date(Date.now() - 1000).toISOString() }) })
  t.equal(stored.json().meta.expired, true)
  const expired = await b.request('/api/token')
  t.equal(expired.status, 401)
  t.equal(expired.json().code, 'FSS_TOKEN_EXPIRED')
})

t.test('refresh happens within the skew, and a short-lived token is not refreshed on every request', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const b = env.browser()
  const store = (token: Record<string, unknown>): Promise<unknown> => b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'short-lived-access', token_type: 'Bearer', refresh_token: `rt-skew-${++n}`, ...token }) })
  const before = oidc.tokenCalls.refresh_token
  await store({ expires_in: 30 })
  t.equal((await b.request('/api/token')).json().fp, fingerprint('short-lived-access'), '30 s token used as is (skew capped at half its life)')
  clock.tick(16_000)
  t.not((await b.request('/api/token')).json().fp, fingerprint('short-lived-access'), 'refreshed past half its life')
  t.equal(oidc.tokenCalls.refresh_token - before, 1)
  await store({ expires_in: 3600 })
  clock.tick(3600_000 - 61_000)
  t.equal((await b.request('/api/token')).json().fp, fingerprint('short-lived-access'), '61 s left: still valid')
  clock.tick(2000)
  t.not((await b.request('/api/token')).json().fp, fingerprint('short-lived-access'), '59 s left: refreshed')
  t.equal(oidc.tokenCalls.refresh_token - before, 2)
})
