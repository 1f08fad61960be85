// Logout at the provider: Back-Channel Logout 1.0 logout tokens signed by the
// real provider (each bad one refused with its reason), and the RP-initiated
// logout request, followed through the provider's real end-session endpoint.
// Also the browser-facing login checks: the nonce and RFC 9207's iss.
import t from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import {
  CLIENT_ID, assertRefused, foreignKeyToken, hmacWithPublicKey, providerToken, relyingParty,
  signedByProviderKey, unsignedToken, type ClaimEdits, type SignOptions
} from './oidc-helper.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../lib/oidc/logout-token.ts'
import { buildEndSessionRequest, checkCallbackIssuer, createNonce } from '../lib/oidc/flow.ts'
import type { RelyingParty } from '../lib/oidc/relying-party.ts'

let oidc: OidcServer
let rp: RelyingParty
t.before(async () => {
  oidc = await startOidcServer()
  rp = await relyingParty(oidc)
})
t.teardown(() => oidc.stop())

const now = (): number => Math.floor(Date.now() / 1000)

/** A logout token as a provider sends it (typ logout+jwt, no nonce), with edits. */
function logoutToken (edits: ClaimEdits = {}, opts: SignOptions = {}): Promise<string> {
  return providerToken(oidc, {
    nonce: undefined,
    nbf: undefined,
    exp: now() + 120,
    jti: 'bWJq-logout-1',
    sid: '08a5019c-17e1-4977',
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    ...edits
  }, { ...opts, header: { typ: 'logout+jwt', ...opts.header } })
}

function logoutClaims (edits: ClaimEdits = {}): Record<string, unknown> {
  return { iss: oidc.issuer, aud: CLIENT_ID, iat: now(), jti: 'j-1', sub: 'user-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...edits }
}

t.test('a good logout token gives iss, aud, iat, exp, jti, sub and sid', async (t) => {
  const claims = await rp.verifyLogoutToken(await logoutToken())
  t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
  t.match(claims, { iss: oidc.issuer, aud: CLIENT_ID, jti: 'bWJq-logout-1', sub: 'user-1', sid: '08a5019c-17e1-4977' })
  const sidOnly = await rp.verifyLogoutToken(await logoutToken({ sub: undefined, exp: undefined }))
  t.same(Object.keys(sidOnly).sort(), ['aud', 'iat', 'iss', 'jti', 'sid'], 'sid without sub; exp is optional')
  t.ok(await rp.verifyLogoutToken(await logoutToken({ sid: undefined })), 'sub without sid')
  t.ok(await rp.verifyLogoutToken(await logoutToken({}, { header: { typ: 'JWT' } })), 'typ JWT, from providers that predate logout+jwt')
  t.ok(await rp.verifyLogoutToken(await logoutToken({}, { header: { typ: 'application/logout+jwt' } })), 'the full media type')
  t.ok(await rp.verifyLogoutToken(await signedByProviderKey(oidc, logoutClaims())), 'no typ')
})

const badLogoutTokens: Array<[string, () => Promise<string> | string, string]> = [
  ['alg none', () => unsignedToken(logoutClaims()), 'algorithm'],
  ['HS256 keyed with the provider\'s public key', () => hmacWithPublicKey(oidc, logoutClaims()), 'algorithm'],
  ['signed by a key not in the JWKS', () => foreignKeyToken(logoutClaims(), 'unpublished'), 'unknown_key'],
  ['wrong iss', () => logoutToken({ iss: 'http://127.0.0.1:1' }), 'issuer'],
  ['aud without the client', () => logoutToken({ aud: 'someone-else' }), 'audience'],
  ['issued longer ago than logoutTokenMaxAge', () => logoutToken({ iat: now() - 200 }), 'too_old'],
  ['iat in the future', () => logoutToken({ iat: now() + 600 }), 'issued_in_future'],
  ['expired', () => logoutToken({ exp: now() - 60 }), 'expired'],
  ['no jti', () => logoutToken({ jti: undefined }), 'claims'],
  ['an empty jti', () => logoutToken({ jti: '' }), 'claims'],
  ['sid not a string', () => logoutToken({ sid: 7 }), 'claims'],
  ['no events claim', () => logoutToken({ events: undefined }), 'events'],
  ['events without the back-channel logout member', () => logoutToken({ events: { 'http://schemas.openid.net/event/other': {} } }), 'events'],
  ['the member is not an object', () => logoutToken({ events: { [BACKCHANNEL_LOGOUT_EVENT]: true } }), 'events'],
  ['events is an array', () => logoutToken({ events: [BACKCHANNEL_LOGOUT_EVENT] }), 'events'],
  ['a nonce (an id_token passed off as a logout token)', () => logoutToken({ nonce: 'n' }), 'nonce_present'],
  ['neither sub nor sid', () => logoutToken({ sub: undefined, sid: undefined }), 'no_subject'],
  ['typ of another kind', () => logoutToken({}, { header: { typ: 'at+jwt' } }), 'typ'],
  ['not a JWT', () => 'logout', 'malformed']
]

for (const [name, token, reason] of badLogoutTokens) {
  t.test(`logout token refused: ${name}`, async (t) => {
    const value = await token()
    const err = await assertRefused(t, rp.verifyLogoutToken(value), 'FSS_LOGOUT_TOKEN_INVALID', reason, [value])
    t.equal(err.statusCode, 400, 'Back-Channel Logout §2.8: 400')
  })
}

t.test('an id_token is never accepted as a logout token, nor the reverse', async (t) => {
  const idToken = await providerToken(oidc)
  await assertRefused(t, rp.verifyLogoutToken(idToken), 'FSS_LOGOUT_TOKEN_INVALID', 'claims', [idToken])
  const withJti = await providerToken(oidc, { jti: 'id-1' })
  await assertRefused(t, rp.verifyLogoutToken(withJti), 'FSS_LOGOUT_TOKEN_INVALID', 'events', [withJti])
  const logout = await logoutToken()
  await assertRefused(t, rp.verifyIdToken(logout, { nonce: 'n' }), 'FSS_ID_TOKEN_INVALID', 'typ', [logout])
  // Untyped and with exp: only the prohibited nonce keeps it from passing as an id_token.
  const untyped = await signedByProviderKey(oidc, logoutClaims({ exp: now() + 120 }))
  await assertRefused(t, rp.verifyIdToken(untyped, { nonce: 'n' }), 'FSS_ID_TOKEN_NONCE_INVALID', 'missing', [untyped])
})

t.test('RP-initiated logout: the provider\'s end-session endpoint accepts the request and redirects back', async (t) => {
  const idToken = await providerToken(oidc)
  const request = rp.endSessionRequest({ idTokenHint: idToken, postLogoutRedirectUri: 'https://app.example/logged-out', state: 'st-123' })
  if (request === null) throw new Error('the provider has an end_session_endpoint')
  t.same(request.fields, { client_id: CLIENT_ID, id_token_hint: idToken, post_logout_redirect_uri: 'https://app.example/logged-out', state: 'st-123' })
  t.equal(request.action, oidc.endpoints.endSession)
  const url = new URL(request.redirectUrl)
  t.equal(`${url.origin}${url.pathname}`, oidc.endpoints.endSession)
  t.equal(url.searchParams.get('id_token_hint'), idToken)
  const res = await fetch(request.redirectUrl, { redirect: 'manual' })
  t.equal(res.status, 302)
  t.equal(res.headers.get('location'), 'https://app.example/logged-out?state=st-123', 'back to the app with the state')
})

t.test('the end-session request keeps the endpoint\'s own query, and is null without an endpoint', async (t) => {
  const request = buildEndSessionRequest('https://idp.example/logout?tenant=t1', { clientId: 'c' })
  t.equal(request?.redirectUrl, 'https://idp.example/logout?tenant=t1&client_id=c')
  t.same(request?.fields, { client_id: 'c' })
  t.equal(buildEndSessionRequest(undefined, { clientId: 'c', state: 's' }), null)
  const explicit = await relyingParty(oidc, { jwksUri: oidc.endpoints.jwks })
  t.equal(explicit.endSessionRequest({ state: 's' }), null, 'an explicit provider without endSessionEndpoint')
})

t.test('a nonce has 256 bits and is never repeated', async (t) => {
  const nonces = Array.from({ length: 1000 }, createNonce)
  t.ok(nonces.every((n) => Buffer.from(n, 'base64url').length === 32), '32 random bytes each')
  t.equal(new Set(nonces).size, 1000)
  t.match(createNonce(), /^[A-Za-z0-9_-]{43}$/, 'URL-safe, no padding')
})

t.test('RFC 9207: the callback iss must equal the issuer exactly when present', async (t) => {
  t.doesNotThrow(() => rp.checkCallbackIssuer(oidc.issuer))
  t.doesNotThrow(() => rp.checkCallbackIssuer(undefined), 'absent and not advertised: accepted')
  for (const iss of [`${oidc.issuer}/`, oidc.issuer.toUpperCase(), '', 'https://evil.example', [oidc.issuer], [oidc.issuer, oidc.issuer]]) {
    const err = await assertRefused(t, () => rp.checkCallbackIssuer(iss), 'FSS_OAUTH_ISSUER_INVALID', 'mismatch')
    t.equal(err.statusCode, 400)
  }
  await assertRefused(t, () => checkCallbackIssuer(undefined, oidc.issuer, true), 'FSS_OAUTH_ISSUER_INVALID', 'missing')
  fc.assert(fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.anything()), fc.boolean(), (iss, required) => {
    try {
      checkCallbackIssuer(iss, oidc.issuer, required)
      return iss === oidc.issuer || (iss === undefined && !required)
    } catch (err) {
      const e = err as { code?: string, message: string }
      return e.code === 'FSS_OAUTH_ISSUER_INVALID' && iss !== oidc.issuer && (typeof iss !== 'string' || iss.length < 8 || !e.message.includes(iss))
    }
  }), { numRuns: 500 })
  t.pass('500 callback iss values')
})
