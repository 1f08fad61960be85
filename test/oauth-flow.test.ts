import t from 'tap'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp, type HttpBrowser } from './fixtures/oauth-app.ts'
import { fingerprint } from '../lib/digest.ts'
import { decodeFlow, flowCookieName } from '../lib/oauth/flow-state.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

const cookieLine = (lines: string[], name: string): string | undefined => lines.find((l) => l.startsWith(`${name}=`))

async function secretsOf (b: HttpBrowser, extra: string[] = []): Promise<string[]> {
  const cookies = b.allSetCookies.map((l) => l.slice(l.indexOf('=') + 1).split(';')[0]).filter((v) => v.length >= 8)
  return [...oidc.issued(), ...cookies, ...extra]
}

t.test('login redirects with PKCE S256 and a 256-bit state, in short-lived Secure HttpOnly cookies', async (t) => {
  const { browser, logs } = await startOAuthApp(t, oidc)
  const b = browser()
  const login = await b.request('/login')
  t.equal(login.status, 302)
  t.equal(login.headers.get('cache-control'), 'no-store')
  const to = new URL(login.location as string)
  t.equal(to.origin + to.pathname, oidc.endpoints.authorize)
  t.equal(to.searchParams.get('code_challenge_method'), 'S256')
  t.match(to.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
  const state = to.searchParams.get('state') as string
  t.ok(Buffer.from(state, 'base64url').length >= 16, 'state carries at least 128 bits')
  t.equal(Buffer.from(state, 'base64url').length, 32)
  const name = flowCookieName('__Host-fss-flow.', state)
  const line = cookieLine(login.setCookies, name) as string
  t.ok(line, 'the flow cookie, named after the state, is set')
  t.equal(login.setCookies.length, 1, 'one cookie per flow')
  t.match(line, /; Secure/)
  t.match(line, /; HttpOnly/)
  t.match(line, /; Path=\/(;|$)/)
  t.match(line, /; Max-Age=600(;|$)/)
  t.notMatch(line, /Domain=/i)
  const held = decodeFlow(line.split(';')[0].slice(name.length + 1))
  t.match(held, { provider: 'default', state, returnTo: null, nonce: null })
  const verifier = held?.verifier as string
  t.match(verifier, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit verifier')
  t.not(to.searchParams.get('code_challenge'), verifier, 'the verifier itself never leaves the browser')
  t.notOk(login.location?.includes(verifier), 'nor is it in the authorization request')
  logs.assertNoSecrets(t, [state, verifier])
})

t.test('callback stores a validated token in a regenerated session and redirects with no referrer', async (t) => {
  const { app, browser, logs } = await startOAuthApp(t, oidc, { redirectAfterLogin: '/home' })
  const b = browser()
  // A session that exists before login must not survive it (fixation).
  const before = oidc.tokenCalls.authorization_code
  const flow = await b.login()
  t.equal(flow.callback.status, 302)
  t.equal(flow.callback.location, '/home')
  t.equal(flow.callback.headers.get('referrer-policy'), 'no-referrer')
  t.equal(flow.callback.headers.get('cache-control'), 'no-store')
  t.equal(oidc.tokenCalls.authorization_code, before + 1)
  t.match(cookieLine(flow.callback.setCookies, flowCookieName('__Host-fss-flow.', flow.callbackUrl.searchParams.get('state') as string)), /Max-Age=0/, 'the flow cookie cleared')
  t.ok(cookieLine(flow.callback.setCookies, '__Host-session'), 'session cookie issued')
  t.equal(flow.callback.text, '')

  const meta = (await b.request('/api/meta')).json().meta
  t.same(meta.fields, ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at', 'scope', 'id_token'])
  t.equal(meta.tokenType, 'Bearer')
  t.equal(meta.expired, false)
  t.equal(meta.expiresAssumed, false)
  t.equal(meta.hasRefreshToken, true)
  t.equal(meta.hasIdToken, true)
  t.ok(meta.expiresIn > 3500 && meta.expiresIn <= 3600)
  const token = await b.request('/api/token')
  t.equal(token.status, 200)
  t.ok(oidc.issued().some((v) => fingerprint(v) === token.json().fp), 'the access token is the one the provider issued')
  t.equal(app.oauthInfo.counters.logins, 1)
  t.equal(app.oauthInfo.provider, new URL(oidc.issuer).origin)
  t.equal(app.oauthInfo.providerKind, 'explicit')
  logs.assertNoSecrets(t, await secretsOf(b, [flow.callbackUrl.searchParams.get('state') as string]))
  t.notOk(logs.lines.join('\n').includes('code='), 'the callback query string is not logged')
})

t.test('a logged-in session is replaced, not reused, by a new login', async (t) => {
  const { browser } = await startOAuthApp(t, oidc)
  const b = browser()
  await b.login()
  const first = (await b.jar.getCookies(b.origin + '/')).find((c) => c.key === '__Host-session')?.value
  const again = await b.login()
  const second = cookieLine(again.callback.setCookies, '__Host-session')?.split(';')[0].split('=')[1]
  t.ok(first && second)
  t.not(first, second)
  t.equal((await b.request('/api/token')).status, 200)
})

t.test('OIDC discovery configures the same flow from the issuer', async (t) => {
  const { app, browser } = await startOAuthApp(t, oidc, { discovery: true })
  const b = browser()
  const flow = await b.login()
  t.equal(flow.callback.status, 302)
  t.equal((await b.request('/api/token')).status, 200)
  t.equal(app.oauthInfo.provider, oidc.issuer)
  t.equal(app.oauthInfo.providerKind, 'discovery')
})

t.test('logout ends the session and the tokens, with no-store', async (t) => {
  const { browser, logs } = await startOAuthApp(t, oidc)
  const b = browser()
  await b.login()
  const revokesBefore = oidc.revokeCalls
  const out = await b.request('/logout', { method: 'POST' })
  t.equal(out.status, 200)
  t.same(out.json(), { loggedOut: true, revoked: false })
  t.equal(out.headers.get('cache-control'), 'no-store')
  t.match(cookieLine(out.setCookies, '__Host-session'), /Max-Age=0/)
  t.equal(oidc.revokeCalls, revokesBefore, 'no revocation unless asked')
  const after = await b.request('/api/token')
  t.equal(after.status, 401)
  t.equal(after.json().code, 'FSS_TOKEN_MISSING')
  t.same((await b.request('/api/meta')).json(), { meta: null })
  logs.assertNoSecrets(t, await secretsOf(b))
})

t.test('logout with revokeOnLogout revokes the refresh and access tokens', async (t) => {
  const { browser } = await startOAuthApp(t, oidc, { revokeOnLogout: true })
  const b = browser()
  await b.login()
  const before = oidc.revokeCalls
  const out = await b.request('/logout', { method: 'POST' })
  t.same(out.json(), { loggedOut: true, revoked: true })
  t.equal(oidc.revokeCalls, before + 2)
  // Without a session there is nothing to revoke.
  const again = await b.request('/logout', { method: 'POST' })
  t.same(again.json(), { loggedOut: true, revoked: false })
  t.equal(oidc.revokeCalls, before + 2)
})

t.test('request.tokens.revoke() revokes at the provider and keeps the stored token; false with nothing to revoke or nowhere to send it', async (t) => {
  const { browser } = await startOAuthApp(t, oidc)
  const b = browser()
  t.same((await b.request('/api/revoke', { method: 'POST' })).json(), { revoked: false }, 'no token: nothing to revoke')
  await b.login()
  const before = oidc.revokeCalls
  t.same((await b.request('/api/revoke', { method: 'POST' })).json(), { revoked: true })
  t.equal(oidc.revokeCalls, before + 2, 'the refresh token, then the access token')
  t.not((await b.request('/api/meta')).json().meta, null, 'revoking is not clearing: the app decides when to clear()')

  // Explicit endpoints without revokeUrl: simple-oauth2 would guess /oauth/revoke on the token host.
  const { browser: other } = await startOAuthApp(t, oidc, { provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token } })
  const c = other()
  await c.login()
  const calls = oidc.revokeCalls
  t.same((await c.request('/api/revoke', { method: 'POST' })).json(), { revoked: false })
  t.equal(oidc.revokeCalls, calls, 'no call without a revocation endpoint')
})

t.test('a token without a refresh token is revoked alone', async (t) => {
  const { browser } = await startOAuthApp(t, oidc, { revokeOnLogout: true })
  const b = browser()
  await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'access-only-token', token_type: 'Bearer', expires_in: 60 }) })
  const before = oidc.revokeCalls
  t.same((await b.request('/logout', { method: 'POST' })).json(), { loggedOut: true, revoked: true })
  t.equal(oidc.revokeCalls, before + 1)
})

t.test('without hostPrefixedCookies the flow cookie has a plain name and the same attributes', async (t) => {
  const { browser } = await startOAuthApp(t, oidc, { hostPrefixedCookies: false, loginPath: '/auth/login', callbackPath: '/callback', stateMaxAge: 120 })
  const b = browser()
  const flow = await b.login('/auth/login')
  t.match(cookieLine(flow.login.setCookies, flowCookieName('fss-flow.', flow.callbackUrl.searchParams.get('state') as string)), /Max-Age=120; Path=\/; HttpOnly; Secure/)
  t.equal(flow.callback.status, 302)
})

t.test('a failed revocation still logs out, and says so', async (t) => {
  const { browser, logs } = await startOAuthApp(t, oidc, { revokeOnLogout: true })
  const b = browser()
  await b.login()
  oidc.service.once('beforeRevoke', (r: { statusCode: number }) => { r.statusCode = 503 })
  const out = await b.request('/logout', { method: 'POST' })
  t.same(out.json(), { loggedOut: true, revoked: false })
  t.equal((await b.request('/api/token')).status, 401)
  t.ok(logs.lines.some((l) => l.includes('token revocation failed') && l.includes('FSS_TOKEN_PROVIDER_ERROR')))
})

t.test('a 3 KB id_token and a 2 KB access_token fit: the session is chunked, every Set-Cookie ≤ 4096 bytes', async (t) => {
  const { app, browser, logs } = await startOAuthApp(t, oidc)
  oidc.padTokens({ access: 2048, id: 3072 })
  t.teardown(() => oidc.padTokens(null))
  const b = browser()
  const flow = await b.login()
  t.equal(flow.callback.status, 302)
  const big = oidc.issued().filter((v) => v.length >= 2048)
  t.ok(big.some((v) => v.length >= 3072), 'an id_token of at least 3 KB was issued')
  t.ok(big.length >= 2, 'and an access token of at least 2 KB')
  const sessionLines = flow.callback.setCookies.filter((l) => l.startsWith('__Host-session'))
  t.ok(sessionLines.length >= 2, `the session took ${sessionLines.length} cookies`)
  for (const line of b.allSetCookies) t.ok(Buffer.byteLength(line) <= 4096, `Set-Cookie of ${Buffer.byteLength(line)} bytes`)
  t.ok(app.sessionInfo.counters.chunked >= 1)
  const token = await b.request('/api/token')
  t.equal(token.status, 200)
  t.ok(big.some((v) => fingerprint(v) === token.json().fp), 'the large access token reads back intact')
  t.equal((await b.request('/api/meta')).json().meta.hasIdToken, true)
  logs.assertNoSecrets(t, await secretsOf(b))
})
