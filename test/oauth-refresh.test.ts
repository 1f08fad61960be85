// Refresh: once per refresh token however many requests ask, the old refresh
// token kept when the provider sends none, coded errors, and a backoff.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { startOidcServer, type OidcServer, type TokenSubstitute } from './fixtures/oidc-server.ts'
import { startOAuthApp, until, type OAuthApp, type HttpBrowser } from './fixtures/oauth-app.ts'
import { fingerprint } from '../lib/digest.ts'
import { oauthCheck, REFRESH_FAILURE_WARN_MS } from '../routes/health-checks.ts'

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
  // A generous bound: under load (mutation testing, a busy CI host) 100 requests take a while to arrive.
  await until(() => env.app.oauthInfo.counters.shared >= 99, '99 requests joining the refresh', 60_000)
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
  // One user's revoked grant is not the provider's health: counted, but /health stays quiet.
  t.equal(env.app.oauthInfo.lastRefreshFailure, null, 'not recorded as a provider failure')
  t.match(oauthCheck(env.app)(), { status: 'pass', detail: /no refresh failure$/ })
})

t.test('/health warns about a provider failure only until a refresh succeeds or 10 minutes pass', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshBackoff: 5 })
  const check = oauthCheck(env.app)
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())

  // A failure, then the clock alone: warn for REFRESH_FAILURE_WARN_MS, then pass.
  const first = await expiredSession(env)
  oidc.substitute({ status: 503, json: { error: 'temporarily_unavailable' } })
  t.equal((await first.b.request('/api/token')).status, 502)
  t.equal(env.app.oauthInfo.lastRefreshFailure?.code, 'FSS_TOKEN_PROVIDER_ERROR')
  t.match(check(), { status: 'warn', detail: /last refresh failed with FSS_TOKEN_PROVIDER_ERROR/ })
  clock.tick(REFRESH_FAILURE_WARN_MS)
  t.match(check(), { status: 'warn' }, 'still warns at exactly the limit')
  clock.tick(1)
  t.match(check(), { status: 'pass', detail: /no refresh failure in the last 10 minutes \(last: FSS_TOKEN_PROVIDER_ERROR at / })

  // A fresh failure warns again, and the next successful refresh (another user's) clears it at once.
  const second = await expiredSession(env)
  oidc.substitute({ status: 503, json: { error: 'temporarily_unavailable' } })
  t.equal((await second.b.request('/api/token')).status, 502)
  t.match(check(), { status: 'warn' })
  const third = await expiredSession(env)
  t.equal((await third.b.request('/api/token')).status, 200, 'the provider answers again')
  t.equal(env.app.oauthInfo.lastRefreshFailure, null, 'cleared by the success')
  t.match(check(), { status: 'pass', detail: /configured, no refresh failure$/ })
  t.equal(env.app.oauthInfo.counters.failures.provider, 2, 'the counters still hold both failures')
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

t.test('a 2xx JSON answer that fails validation, or does not parse, used up the refresh token: 502 FSS_TOKEN_INVALID, tokens cleared, never replayed', async (t) => {
  // The provider really refreshed (and rotated): only its answer is broken.
  const patched = (patch: (body: Record<string, unknown>) => void): TokenSubstitute => ({ patch })
  const raw = (body: string): TokenSubstitute => ({ status: 200, body, contentType: 'application/json' })
  const broken: Array<[string, TokenSubstitute, 'fails validation' | 'does not parse']> = [
    ['token_type DPoP', patched((body) => { body.token_type = 'DPoP' }), 'fails validation'],
    ['a string expires_in', patched((body) => { body.expires_in = '3600' }), 'fails validation'],
    ['no access_token', patched((body) => { delete body.access_token }), 'fails validation'],
    ['truncated JSON', raw('{"access_token": "abc", "token_type": '), 'does not parse'],
    ['a __proto__ member', raw('{"__proto__": {"x": 1}, "access_token": "abc", "token_type": "Bearer", "expires_in": 3600}'), 'does not parse'],
    ['a nested __proto__ member', raw('{"access_token": "abc", "token_type": "Bearer", "extra": {"__proto__": null}}'), 'does not parse']
  ]
  for (const [what, answer, kind] of broken) {
    const env = await startOAuthApp(t, oidc, { refreshBackoff: 5 })
    const { b, refresh } = await expiredSession(env)
    const stale = await b.jar.getCookieString(b.origin + '/')
    const sent = refreshTokensSent(t)
    const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
    oidc.substitute(answer)
    const res = await b.request('/api/token')
    t.same([res.status, res.json().code], [502, 'FSS_TOKEN_INVALID'], `${what} (${kind})`)
    t.same((await b.request('/api/meta')).json(), { meta: null }, `${what}: tokens cleared`)
    // Another tab with the old cookie, during and long after the backoff: no replay.
    for (const wait of [0, 5001, 3600_000]) {
      clock.tick(wait)
      const other = await env.browser().request('/api/token', { headers: { cookie: stale } })
      t.equal(other.json().code, 'FSS_TOKEN_INVALID', `${what}: old cookie after ${wait} ms`)
    }
    clock.uninstall()
    t.same(sent, [refresh], `${what}: the provider saw the refresh token once`)
    t.equal(env.app.oauthInfo.counters.failures.invalid, 1)
  }
})

t.test('a non-JSON 2xx answer (maybe a proxy page) keeps the tokens and is retried after the backoff', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshBackoff: 5 })
  const { b, refresh } = await expiredSession(env)
  const sent = refreshTokensSent(t)
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  oidc.substitute({ status: 200, body: '<html>maintenance</html>', contentType: 'text/html' })
  const res = await b.request('/api/token')
  t.equal(res.status, 502)
  t.equal(res.json().code, 'FSS_TOKEN_INVALID')
  t.equal((await b.request('/api/meta')).json().meta.hasRefreshToken, true, 'tokens kept')
  t.equal((await b.request('/api/token')).json().code, 'FSS_TOKEN_INVALID', 'same answer during the backoff')
  clock.tick(5001)
  t.equal((await b.request('/api/token')).status, 200, 'retried after the window')
  t.same(sent, [refresh, refresh], 'the kept refresh token was sent again after the window, once')
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

t.test('a token without a refresh token is used until it actually expires, not only until the skew', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const b = env.browser()
  const access = `no-refresh-access-${++n}`
  await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: access, token_type: 'Bearer', expires_in: 3600 }) })
  const calls = oidc.tokenCalls.total
  clock.tick(3600_000 - 30_000)
  const inSkew = await b.request('/api/token')
  t.equal(inSkew.status, 200, '30 s left, inside the skew: still served')
  t.equal(inSkew.json().fp, fingerprint(access))
  clock.tick(29_000)
  t.equal((await b.request('/api/token')).json().fp, fingerprint(access), '1 s left: still served')
  clock.tick(1000)
  const expired = await b.request('/api/token')
  t.equal(expired.status, 401, 'expired: a login is needed')
  t.equal(expired.json().code, 'FSS_TOKEN_EXPIRED')
  t.equal(oidc.tokenCalls.total, calls, 'no token-endpoint call at any point')
})

t.test('an old pair re-sealed by a concurrent session write is swapped for the new one, long after 30 s, without a provider call', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const b = env.browser()
  const access = `rolled-access-${++n}-${'a'.repeat(20)}`
  const refresh = `rolled-refresh-${n}-${'r'.repeat(20)}`
  await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: access, token_type: 'Bearer', expires_in: 3700, refresh_token: refresh }) })
  const sent = refreshTokensSent(t)
  const C0 = await b.jar.getCookieString(b.origin + '/')
  // 50 s left (inside the skew) and past the 1 h rolling interval.
  clock.tick(3650_000)
  oidc.hold()
  const refreshing = b.request('/api/token')
  await oidc.waitForTokenCalls(oidc.tokenCalls.total + 1)
  // A concurrent request decoded the old cookie and re-issues it (rolling): it re-seals the OLD pair.
  const writer = env.browser()
  const rolled = await writer.request('/api/meta', { headers: { cookie: C0 } })
  t.ok(rolled.setCookies.some((l) => l.startsWith('__Host-session=')), 'the concurrent request re-sealed the session')
  const stale = rolled.setCookies.find((l) => l.startsWith('__Host-session='))?.split(';')[0] as string
  oidc.release()
  const winner = await refreshing
  t.equal(winner.status, 200)
  const fresh = winner.json().fp
  t.not(fresh, fingerprint(access))
  const calls = oidc.tokenCalls.refresh_token
  // The browser kept the re-sealed old pair (its answer arrived last). Well after the old 30 s grace window:
  for (const [wait, what] of [[31_000, '31 s later'], [10 * 60_000, '10 min later, the old access token long expired']] as const) {
    clock.tick(wait)
    const late = env.browser()
    const res = await late.request('/api/token', { headers: { cookie: stale } })
    t.equal(res.status, 200, what)
    t.equal(res.json().fp, fresh, `${what}: the new token`)
    // The answer re-stored the new pair: that cookie alone reads as the new token.
    const next = await late.jar.getCookieString(late.origin + '/')
    t.not(next, '', `${what}: the session was re-written`)
    t.equal((await env.browser().request('/api/token', { headers: { cookie: next } })).json().fp, fresh)
  }
  t.equal(oidc.tokenCalls.refresh_token, calls, 'no provider call for the old pair')
  t.same(sent, [refresh], 'the provider saw the old refresh token once')
  env.logs.assertNoSecrets(t, [...oidc.issued(), access, refresh])
})

t.test('a provider that does not rotate: the caller holding the newest pair refreshes normally', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { b, refresh } = await expiredSession(env)
  const sent = refreshTokensSent(t)
  oidc.substitute({ patch: (body) => { delete body.refresh_token; body.expires_in = 600 } })
  const first = (await b.request('/api/token')).json().fp
  t.equal((await b.request('/api/token')).json().fp, first, 'the new token, no call')
  // Inside the skew of the new token (its mapping from R1 is still alive): a real refresh, not the same token again.
  clock.tick(600_000 - 30_000)
  const second = (await b.request('/api/token')).json().fp
  t.not(second, first, 'refreshed again with the kept refresh token')
  t.same(sent, [refresh, refresh])
})

t.test('a provider that rotates the refresh token but hands back the same access token: an old cookie gets the new pair, never replays', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { b, access, refresh } = await expiredSession(env)
  const stale = await b.jar.getCookieString(b.origin + '/')
  const sent = refreshTokensSent(t)
  // Two JWTs minted in the same second are the same string: only the refresh token changed.
  oidc.substitute({ patch: (body) => { body.access_token = access; body.expires_in = 600 } })
  const first = await b.request('/api/token')
  t.equal(first.status, 200)
  t.equal(first.json().fp, fingerprint(access))
  // Another tab still sends the old pair (its access token expired, so it would refresh).
  const other = env.browser()
  const res = await other.request('/api/token', { headers: { cookie: stale } })
  t.equal(res.status, 200)
  t.equal(res.json().fp, fingerprint(access))
  t.same(sent, [refresh], 'the old refresh token was not sent again')
  // That tab re-stored the new pair: when it is due, it refreshes with the new refresh token.
  clock.tick(600_000 - 30_000)
  t.equal((await other.request('/api/token')).status, 200)
  t.equal(sent.length, 2)
  t.not(sent[1], refresh, 'the next refresh used the rotated refresh token')
})

t.test('a replacement whose access token has expired is refreshed with its own refresh token, never the old one', async (t) => {
  const env = await startOAuthApp(t, oidc, { refreshSkew: 60 })
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { b, refresh } = await expiredSession(env)
  const stale = await b.jar.getCookieString(b.origin + '/')
  const sent = refreshTokensSent(t)
  const first = await b.request('/api/token')
  t.equal(first.status, 200)
  // Two hours later the replacement (3600 s) has expired too; the old pair comes back.
  clock.tick(2 * 3600_000)
  const late = env.browser()
  const res = await late.request('/api/token', { headers: { cookie: stale } })
  t.equal(res.status, 200)
  t.not(res.json().fp, first.json().fp, 'a fresh token, not the expired replacement')
  t.equal(sent.length, 2)
  t.equal(sent[0], refresh)
  t.not(sent[1], refresh, 'refreshed with the replacement\'s refresh token')
  env.logs.assertNoSecrets(t, [...oidc.issued(), refresh])
})

t.test('after invalid_grant another tab holding the old pair drops it too', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const { b } = await expiredSession(env)
  const stale = await b.jar.getCookieString(b.origin + '/')
  oidc.substitute({ status: 400, json: { error: 'invalid_grant' } })
  t.equal((await b.request('/api/token')).status, 401)
  const other = env.browser()
  const res = await other.request('/api/token', { headers: { cookie: stale } })
  t.equal(res.json().code, 'FSS_TOKEN_REFRESH_REJECTED')
  t.same((await other.request('/api/meta')).json(), { meta: null }, 'its session no longer holds the dead refresh token')
})
