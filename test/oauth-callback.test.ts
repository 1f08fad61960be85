// Every way a callback can fail answers a coded JSON error, clears the
// single-use cookies, stores nothing, and puts no value in the body or logs.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer, type TokenSubstitute } from './fixtures/oidc-server.ts'
import { startOAuthApp, type OAuthApp, type Answer, type HttpBrowser } from './fixtures/oauth-app.ts'
import { flowCookieName } from '../lib/oauth/flow-state.ts'

let oidc: OidcServer
let env: OAuthApp
const states: string[] = []
const browsers: HttpBrowser[] = []
t.before(async () => {
  oidc = await startOidcServer()
  // Long enough for a loaded machine to answer every case; the hang case waits it out.
  env = await startOAuthApp(t, oidc, { timeout: 2000 })
})
t.teardown(() => oidc.stop())

function assertCoded (t: Test, res: Answer, status: number, code: string): void {
  t.equal(res.status, status, `HTTP ${status}`)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(body.code, code)
  t.equal(body.statusCode, status)
  for (const secret of [...oidc.issued(), ...states]) {
    if (res.text.includes(secret)) t.fail('a code, token or state appears in the error body')
  }
  t.equal(res.headers.get('referrer-policy'), 'no-referrer')
  t.equal(res.headers.get('cache-control'), 'no-store')
}

const flowCookie = (state: string): string => flowCookieName('__Host-fss-flow.', state)

/** The flow cookie of `state` (the login's, whatever the callback says) is cleared, or, when the callback names no flow of this browser, kept. */
function assertCookiesCleared (t: Test, res: Answer, state?: string | null, cleared = true): void {
  const name = flowCookie(state ?? states[states.length - 1] as string)
  t.equal(res.setCookies.some((l) => l.startsWith(`${name}=;`) && /Max-Age=0/.test(l)), cleared, cleared ? 'the flow cookie cleared' : 'the flow cookie is not touched')
}

async function started (): Promise<{ b: HttpBrowser, callbackUrl: URL }> {
  const b = env.browser()
  browsers.push(b)
  const { login, callbackUrl } = await b.startLogin()
  // The state the login sent, whatever the redirect back says.
  states.push(new URL(login.location as string).searchParams.get('state') as string)
  return { b, callbackUrl }
}

async function nothingStored (t: Test, b: HttpBrowser): Promise<void> {
  t.same((await b.request('/api/meta')).json(), { meta: null }, 'no token stored')
}

t.test('provider redirect errors', async (t) => {
  // The last field: whether the callback names this browser's flow (then it is cleared; else another tab's flow stays).
  const cases: Array<[string, (u: URL) => void, number, string, boolean]> = [
    ['error=access_denied', (u) => { u.searchParams.delete('code'); u.searchParams.set('error', 'access_denied'); u.searchParams.set('error_description', 'The user said no') }, 400, 'FSS_OAUTH_DENIED', true],
    ['missing code', (u) => { u.searchParams.delete('code') }, 400, 'FSS_OAUTH_CODE_MISSING', true],
    ['missing state', (u) => { u.searchParams.delete('state') }, 400, 'FSS_OAUTH_STATE_INVALID', false],
    ['mismatched state', (u) => { u.searchParams.set('state', 'A'.repeat(43)) }, 400, 'FSS_OAUTH_STATE_INVALID', false]
  ]
  for (const [name, edit, status, code, named] of cases) {
    await t.test(name, async (t) => {
      oidc.service.once('beforeAuthorizeRedirect', (r: { url: URL }) => edit(r.url))
      const calls = oidc.tokenCalls.total
      const { b, callbackUrl } = await started()
      const res = await b.request(callbackUrl.href)
      assertCoded(t, res, status, code)
      assertCookiesCleared(t, res, undefined, named)
      t.equal(oidc.tokenCalls.total, calls, 'the token endpoint was not called')
      await nothingStored(t, b)
    })
  }
  t.match((await (await started()).b.request('/callback?error=%3Cscript%3E')).json().message, /unrecognised error/, 'an odd error code is not echoed')
})

t.test('a callback from another browser (no state cookie) is refused', async (t) => {
  const { callbackUrl } = await started()
  const other = env.browser()
  const res = await other.request(callbackUrl.href)
  assertCoded(t, res, 400, 'FSS_OAUTH_STATE_INVALID')
  t.match(res.json().message, /no flow for this state/)
})

t.test('a replayed callback is refused, with or without the old cookies', async (t) => {
  const b = env.browser()
  const flow = await b.login()
  states.push(flow.callbackUrl.searchParams.get('state') as string)
  t.equal(flow.callback.status, 302)
  const calls = oidc.tokenCalls.total
  // The browser replays the URL: its state cookie was cleared.
  assertCoded(t, await b.request(flow.callbackUrl.href), 400, 'FSS_OAUTH_STATE_INVALID')
  // An attacker replays URL and the old cookies together.
  const old = flow.login.setCookies.map((l) => l.split(';')[0]).join('; ')
  const replay = await env.browser().request(flow.callbackUrl.href, { headers: { cookie: old } })
  assertCoded(t, replay, 400, 'FSS_OAUTH_STATE_INVALID')
  t.match(replay.json().message, /already used/)
  t.equal(oidc.tokenCalls.total, calls, 'no second code exchange')
})

t.test('a flow cookie the suite did not write (tampered, or of another state) is refused before the token endpoint', async (t) => {
  for (const value of ['not-a-flow', Buffer.from('default.' + 'A'.repeat(43) + '.' + 'B'.repeat(43) + '..1.').toString('base64url')]) {
    const { b, callbackUrl } = await started()
    const state = callbackUrl.searchParams.get('state') as string
    await b.jar.setCookie(`${flowCookie(state)}=${value}; Max-Age=60; Path=/; Secure; HttpOnly`, b.origin + '/')
    const calls = oidc.tokenCalls.total
    const res = await b.request(callbackUrl.href)
    assertCoded(t, res, 400, 'FSS_OAUTH_STATE_INVALID')
    assertCookiesCleared(t, res, state)
    t.equal(oidc.tokenCalls.total, calls)
  }
})

t.test('token endpoint failures', async (t) => {
  const html = '<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>'
  const cases: Array<[string, TokenSubstitute, number, string]> = [
    ['non-JSON text', { body: 'access_token=abc&token_type=bearer', contentType: 'text/plain' }, 502, 'FSS_TOKEN_INVALID'],
    ['an HTML error page', { status: 500, body: html, contentType: 'text/html' }, 502, 'FSS_TOKEN_PROVIDER_ERROR'],
    ['malformed JSON', { body: '{"access_token": ', contentType: 'application/json' }, 502, 'FSS_TOKEN_INVALID'],
    ['{}', { json: {} }, 502, 'FSS_TOKEN_INVALID'],
    ['null', { json: null }, 502, 'FSS_TOKEN_INVALID'],
    ['a JSON string', { json: 'token' }, 502, 'FSS_TOKEN_INVALID'],
    ['no access_token', { patch: (b) => { delete b.access_token } }, 502, 'FSS_TOKEN_INVALID'],
    ['token_type mac', { patch: (b) => { b.token_type = 'mac' } }, 502, 'FSS_TOKEN_INVALID'],
    ['expires_in negative', { patch: (b) => { b.expires_in = -5 } }, 502, 'FSS_TOKEN_INVALID'],
    ['expires_in a string', { patch: (b) => { b.expires_in = '3600' } }, 502, 'FSS_TOKEN_INVALID'],
    ['400 invalid_grant', { status: 400, json: { error: 'invalid_grant' } }, 400, 'FSS_OAUTH_CODE_REJECTED'],
    ['401 invalid_client', { status: 401, json: { error: 'invalid_client' } }, 502, 'FSS_TOKEN_PROVIDER_ERROR'],
    ['503', { status: 503, json: { error: 'temporarily_unavailable' } }, 502, 'FSS_TOKEN_PROVIDER_ERROR'],
    ['a timeout', { hang: true }, 504, 'FSS_TOKEN_PROVIDER_TIMEOUT']
  ]
  for (const [name, sub, status, code] of cases) {
    await t.test(name, async (t) => {
      const { b, callbackUrl } = await started()
      oidc.substitute(sub)
      const calls = oidc.tokenCalls.authorization_code
      const res = await b.request(callbackUrl.href)
      assertCoded(t, res, status, code)
      assertCookiesCleared(t, res)
      t.equal(oidc.tokenCalls.authorization_code, calls + 1, 'one code exchange')
      t.notOk(res.setCookies.some((l) => l.startsWith('__Host-session=') && !/Max-Age=0/.test(l)), 'no session issued')
      await nothingStored(t, b)
    })
  }
  t.equal(env.app.oauthInfo.counters.loginFailures.FSS_TOKEN_INVALID, 9)
})

t.test('token_type is case-insensitive and stored as Bearer', async (t) => {
  const { b, callbackUrl } = await started()
  oidc.substitute({ patch: (body) => { body.token_type = 'BEARER' } })
  t.equal((await b.request(callbackUrl.href)).status, 302)
  t.equal((await b.request('/api/meta')).json().meta.tokenType, 'Bearer')
})

t.test('a token without a lifetime gets the assumed one, flagged', async (t) => {
  const { b, callbackUrl } = await started()
  oidc.substitute({ patch: (body) => { delete body.expires_in } })
  t.equal((await b.request(callbackUrl.href)).status, 302)
  const meta = (await b.request('/api/meta')).json().meta
  t.equal(meta.expiresAssumed, true)
  t.ok(meta.expiresIn > 3500 && meta.expiresIn <= 3600)
})

t.test('a malformed callback query is a coded 400 that clears the flow cookies, never a generic validation error', async (t) => {
  const long = (n: number): string => 'x'.repeat(n)
  // [what, how the provider's redirect is changed, expected code]
  const cases: Array<[string, (u: URL) => void, string]> = [
    ['an error of 257 characters', (u) => { u.searchParams.delete('code'); u.searchParams.set('error', long(257)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['an error of exactly 256 characters', (u) => { u.searchParams.delete('code'); u.searchParams.set('error', long(256)) }, 'FSS_OAUTH_DENIED'],
    ['an error_description of 2049 characters', (u) => { u.searchParams.set('error', 'access_denied'); u.searchParams.set('error_description', long(2049)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['an error_description of exactly 2048 characters', (u) => { u.searchParams.set('error', 'access_denied'); u.searchParams.set('error_description', long(2048)) }, 'FSS_OAUTH_DENIED'],
    ['a code of 4097 characters', (u) => { u.searchParams.set('code', long(4097)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['a state of 513 characters', (u) => { u.searchParams.set('state', long(513)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['an error_uri of 2049 characters', (u) => { u.searchParams.set('error_uri', long(2049)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['an iss of 2049 characters', (u) => { u.searchParams.set('iss', long(2049)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['a session_state of 2049 characters', (u) => { u.searchParams.set('session_state', long(2049)) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['state given twice', (u) => { u.searchParams.append('state', u.searchParams.get('state') as string) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['state given twice, the other value first', (u) => { const s = u.searchParams.get('state') as string; u.searchParams.set('state', 'other'); u.searchParams.append('state', s) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['state given three times', (u) => { u.searchParams.append('state', 'x'); u.searchParams.append('state', u.searchParams.get('state') as string) }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['code given twice', (u) => { u.searchParams.append('code', 'other') }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['error given twice', (u) => { u.searchParams.set('error', 'access_denied'); u.searchParams.append('error', 'x') }, 'FSS_OAUTH_CALLBACK_INVALID'],
    ['an empty error counts as omitted (RFC 6749 §3.1): the login goes on without a code', (u) => { u.searchParams.set('error', ''); u.searchParams.delete('code') }, 'FSS_OAUTH_CODE_MISSING']
  ]
  for (const [name, edit, code] of cases) {
    await t.test(name, async (t) => {
      oidc.service.once('beforeAuthorizeRedirect', (r: { url: URL }) => edit(r.url))
      const calls = oidc.tokenCalls.total
      const { b, callbackUrl } = await started()
      const res = await b.request(callbackUrl.href)
      assertCoded(t, res, 400, code)
      // A callback that does not name the flow leaves every flow cookie alone (another tab's, perhaps);
      // a state given more than once names each of its values' flows, and they are cleared.
      assertCookiesCleared(t, res, undefined, !name.startsWith('a state of'))
      t.equal(oidc.tokenCalls.total, calls, 'the token endpoint was not called')
      await nothingStored(t, b)
      if (code === 'FSS_OAUTH_CALLBACK_INVALID') t.notMatch(res.json().message, /xxxx/, 'the value is not echoed')
    })
  }
  t.ok((env.app.oauthInfo.counters.loginFailures.FSS_OAUTH_CALLBACK_INVALID ?? 0) >= 10, 'counted as login failures')
})

t.test('a code of exactly 4096 characters, and parameters the callback does not read given twice, reach the token endpoint', async (t) => {
  oidc.service.once('beforeAuthorizeRedirect', (r: { url: URL }) => { r.url.searchParams.set('code', 'c'.repeat(4096)) })
  const { b, callbackUrl } = await started()
  const calls = oidc.tokenCalls.total
  const res = await b.request(callbackUrl.href)
  t.not(res.json().code, 'FSS_OAUTH_CALLBACK_INVALID')
  t.equal(oidc.tokenCalls.total, calls + 1, 'sent to the token endpoint (which does not know that code)')
  // Google adds scope, authuser and prompt: a provider's extra parameters, even repeated, are not ours to refuse.
  oidc.service.once('beforeAuthorizeRedirect', (r: { url: URL }) => { r.url.searchParams.append('scope', 'a'); r.url.searchParams.append('scope', 'b'); r.url.searchParams.set('authuser', '0') })
  const other = await started()
  t.equal((await other.b.request(other.callbackUrl.href)).status, 302, 'logged in')
})

t.test('property: whatever query the callback gets, it answers a 302 or a coded FSS_ error, and always clears the flow it names', async (t) => {
  const names = fc.constantFrom('code', 'state', 'error', 'error_description', 'error_uri', 'iss', 'session_state', 'scope', '__proto__', 'constructor', 'code[]', 'a')
  const value = fc.oneof(fc.string({ maxLength: 20 }), fc.integer({ min: 0, max: 5000 }).map((n) => 'v'.repeat(n)), fc.constant(''))
  // Extra pairs appended to a real redirect (so code and state may be given twice, overlong, or replaced).
  const extras = fc.array(fc.tuple(names, value), { maxLength: 4 })
  let ok = 0
  await fc.assert(fc.asyncProperty(extras, fc.boolean(), async (pairs, replace) => {
    oidc.service.once('beforeAuthorizeRedirect', (r: { url: URL }) => {
      for (const [k, v] of pairs) {
        if (replace) r.url.searchParams.set(k, v)
        else r.url.searchParams.append(k, v)
      }
    })
    const { b, callbackUrl } = await started()
    const res = await b.request(callbackUrl.href)
    // Every flow the callback names by a state (given once or more) is cleared: any other flow is left alone.
    const named = new Set(callbackUrl.searchParams.getAll('state').filter((s) => s !== '').map((s) => flowCookie(s)))
    const touched = res.setCookies.filter((l) => l.startsWith('__Host-fss-flow.')).map((l) => l.slice(0, l.indexOf('=')))
    const held = [...named].filter((n) => b.allSetCookies.some((l) => l.startsWith(`${n}=`) && !/Max-Age=0/.test(l)))
    const cleared = touched.every((n) => named.has(n)) &&
      held.every((n) => res.setCookies.some((l) => l.startsWith(`${n}=;`) && /Max-Age=0/.test(l)))
    if (res.status === 302) {
      ok++
      return cleared
    }
    const body = res.json()
    return cleared && res.status < 600 && typeof body.code === 'string' && body.code.startsWith('FSS_') && body.statusCode === res.status
  }), { numRuns: 60 })
  t.ok(ok > 0, `some logins went through (${ok})`)
})

t.test('an error without a code (here a custom store failing) is still reported by the error schema, and the cookies are cleared', async (t) => {
  const failing = await startOAuthApp(t, oidc, {
    store: {
      async get () { return null },
      async set () { throw new Error('the database is down') },
      async delete () {}
    }
  })
  const b = failing.browser()
  const { callback, callbackUrl } = await b.login()
  t.equal(callback.status, 500)
  t.same(callback.json(), { statusCode: 500, error: 'Internal Server Error', message: 'the database is down' })
  assertCookiesCleared(t, callback, callbackUrl.searchParams.get('state'))
  // A 4xx no route lists (here 404 from Fastify itself) is reported the same way.
  const missing = await b.request('/callback/nothing')
  t.equal(missing.status, 404)
})

t.test('nothing secret reached the logs', async (t) => {
  const cookies = (await Promise.all(browsers.map((b) => b.cookieValues()))).flat()
  const setCookieValues = browsers.flatMap((b) => b.allSetCookies.map((l) => l.slice(l.indexOf('=') + 1).split(';')[0]))
  env.logs.assertNoSecrets(t, [...oidc.issued(), ...states, ...cookies, ...setCookieValues.filter((v) => v.length >= 8)])
  t.ok(env.logs.lines.length > 50, 'the requests were logged')
})
