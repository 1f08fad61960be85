// id_token verification against a real provider (oauth2-mock-server on
// loopback): every bad token is refused with its own code and reason, and no
// token or nonce value reaches the error.
import t from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import {
  CLIENT_ID, NONCE, assertRefused, foreignKeyToken, goodClaims, hmacWithPublicKey, providerToken,
  publicJwk, relyingParty, signedByProviderKey, unsignedToken
} from './oidc-helper.ts'
import { build, captureLogs } from './helper.ts'
import { createNonce } from '../lib/oidc/flow.ts'
import { bindingOf, checkRefreshedIdToken } from '../lib/oidc/id-token.ts'
import type { RelyingParty } from '../lib/oidc/relying-party.ts'

let oidc: OidcServer
let rp: RelyingParty
t.before(async () => {
  oidc = await startOidcServer()
  rp = await relyingParty(oidc)
})
t.teardown(() => oidc.stop())

const now = (): number => Math.floor(Date.now() / 1000)

t.test('a good id_token verifies and gives sub, iss and the allow-listed profile', async (t) => {
  const token = await providerToken(oidc, {
    name: 'Ada Lovelace',
    email: 'ada@example.org',
    email_verified: true,
    picture: 'https://example.org/ada.png',
    preferred_username: 'ada',
    groups: ['admins']
  })
  const claims = await rp.verifyIdToken(token, { nonce: NONCE })
  t.equal(claims.sub, 'user-1')
  t.equal(claims.iss, oidc.issuer)
  t.same(rp.identity(claims), {
    sub: 'user-1',
    iss: oidc.issuer,
    claims: { name: 'Ada Lovelace', email: 'ada@example.org', email_verified: true, picture: 'https://example.org/ada.png', preferred_username: 'ada' }
  }, 'groups is not on the default allow-list')
  t.same(rp.algorithms, ['RS256'], 'the provider advertises RS256 only')
})

t.test('several audiences pass with azp equal to the client id', async (t) => {
  const token = await providerToken(oidc, { aud: [CLIENT_ID, 'api.example.org'], azp: CLIENT_ID })
  t.equal((await rp.verifyIdToken(token, { nonce: NONCE })).azp, CLIENT_ID)
})

t.test('an id_token without a typ header verifies', async (t) => {
  t.equal((await rp.verifyIdToken(await signedByProviderKey(oidc, goodClaims(oidc)), { nonce: NONCE })).sub, 'user-1')
})

t.test('a token inside the clock tolerance still verifies', async (t) => {
  // exp 10 s ago, nbf and iat 10 s ahead: within the default 30 s.
  const token = await providerToken(oidc, { exp: now() - 10, iat: now() + 10, nbf: now() + 10 })
  t.equal((await rp.verifyIdToken(token, { nonce: NONCE })).sub, 'user-1')
})

interface BadCase {
  name: string
  token: () => Promise<string> | string
  code: string
  reason: string
}

const badTokens: BadCase[] = [
  { name: 'signed by a key not in the JWKS', token: () => foreignKeyToken(goodClaims(oidc), 'a-key-the-provider-never-published'), code: 'FSS_ID_TOKEN_INVALID', reason: 'unknown_key' },
  { name: 'signed by another key under the provider\'s key id', token: () => foreignKeyToken(goodClaims(oidc), publicJwk(oidc).kid), code: 'FSS_ID_TOKEN_INVALID', reason: 'signature' },
  { name: 'alg none', token: () => unsignedToken(goodClaims(oidc)), code: 'FSS_ID_TOKEN_INVALID', reason: 'algorithm' },
  { name: 'HS256 keyed with the provider\'s public key', token: () => hmacWithPublicKey(oidc, goodClaims(oidc)), code: 'FSS_ID_TOKEN_INVALID', reason: 'algorithm' },
  { name: 'wrong iss', token: () => providerToken(oidc, { iss: 'http://127.0.0.1:1/not-the-issuer' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'issuer' },
  { name: 'iss differing only by a trailing slash', token: () => providerToken(oidc, { iss: `${oidc.issuer}/` }), code: 'FSS_ID_TOKEN_INVALID', reason: 'issuer' },
  { name: 'aud without the client', token: () => providerToken(oidc, { aud: 'another-client' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'audience' },
  { name: 'several audiences, none the client', token: () => providerToken(oidc, { aud: ['a', 'b'], azp: 'a' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'audience' },
  { name: 'several audiences without azp', token: () => providerToken(oidc, { aud: [CLIENT_ID, 'another-client'] }), code: 'FSS_ID_TOKEN_INVALID', reason: 'azp' },
  { name: 'several audiences with another client as azp', token: () => providerToken(oidc, { aud: [CLIENT_ID, 'another-client'], azp: 'another-client' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'azp' },
  { name: 'one audience with another client as azp', token: () => providerToken(oidc, { azp: 'another-client' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'azp' },
  { name: 'expired', token: () => providerToken(oidc, {}, { expiresIn: -120 }), code: 'FSS_ID_TOKEN_INVALID', reason: 'expired' },
  { name: 'iat far in the future', token: () => providerToken(oidc, { iat: now() + 3600, nbf: undefined }), code: 'FSS_ID_TOKEN_INVALID', reason: 'issued_in_future' },
  { name: 'iat older than idTokenMaxAge', token: () => providerToken(oidc, { iat: now() - 700 }), code: 'FSS_ID_TOKEN_INVALID', reason: 'too_old' },
  { name: 'nbf in the future', token: () => providerToken(oidc, { nbf: now() + 600 }), code: 'FSS_ID_TOKEN_INVALID', reason: 'not_yet_valid' },
  { name: 'a logout token (typ logout+jwt) presented as an id_token', token: () => providerToken(oidc, {}, { header: { typ: 'logout+jwt' } }), code: 'FSS_ID_TOKEN_INVALID', reason: 'typ' },
  { name: 'an access token (typ at+jwt) presented as an id_token', token: () => providerToken(oidc, {}, { header: { typ: 'application/at+JWT' } }), code: 'FSS_ID_TOKEN_INVALID', reason: 'typ' },
  { name: 'no sub', token: () => providerToken(oidc, { sub: undefined }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'no iat', token: () => providerToken(oidc, { iat: undefined }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'iat not a number', token: () => providerToken(oidc, { iat: 'yesterday' }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'sub over 255 characters', token: () => providerToken(oidc, { sub: 'u'.repeat(256) }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'sub a number', token: () => providerToken(oidc, { sub: 42 }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'nonce a number', token: () => providerToken(oidc, { nonce: 42 }), code: 'FSS_ID_TOKEN_INVALID', reason: 'claims' },
  { name: 'missing nonce', token: () => providerToken(oidc, { nonce: undefined }), code: 'FSS_ID_TOKEN_NONCE_INVALID', reason: 'missing' },
  { name: 'another flow\'s nonce', token: () => providerToken(oidc, { nonce: createNonce() }), code: 'FSS_ID_TOKEN_NONCE_INVALID', reason: 'mismatch' },
  { name: 'a nonce differing in length', token: () => providerToken(oidc, { nonce: NONCE.slice(0, -1) }), code: 'FSS_ID_TOKEN_NONCE_INVALID', reason: 'mismatch' },
  { name: 'an encrypted token (JWE, five parts)', token: () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVydGV4dA.dGFn', code: 'FSS_ID_TOKEN_INVALID', reason: 'malformed' },
  { name: 'a payload that is not JSON', token: async () => { const [h, , s] = (await providerToken(oidc)).split('.'); return `${h}.bm90IGpzb24.${s}` }, code: 'FSS_ID_TOKEN_INVALID', reason: 'signature' },
  { name: 'over 64 KiB', token: () => 'e'.repeat(64 * 1024 + 1), code: 'FSS_ID_TOKEN_INVALID', reason: 'too_large' },
  { name: 'an empty string', token: () => '', code: 'FSS_ID_TOKEN_INVALID', reason: 'malformed' }
]

const refusals: Array<{ err: Error, token: string }> = []
for (const bad of badTokens) {
  t.test(`refused: ${bad.name}`, async (t) => {
    const token = await bad.token()
    const err = await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), bad.code, bad.reason, [token, NONCE])
    t.equal(err.statusCode, bad.code === 'FSS_ID_TOKEN_NONCE_INVALID' ? 400 : 502, 'another login\'s token is the request\'s fault; a bad token is the provider\'s')
    refusals.push({ err, token })
  })
}

t.test('every refusal logged the way Fastify logs an error shows no token or nonce', async (t) => {
  const capture = captureLogs()
  const app = await build(t, { logger: { level: 'info', stream: capture.stream } })
  t.equal(refusals.length, badTokens.length)
  for (const { err } of refusals) app.log.error({ err }, 'login refused')
  t.equal(capture.lines.length, badTokens.length)
  t.match(capture.lines[0], /"code":"FSS_ID_TOKEN_INVALID"/, 'the code is logged')
  t.match(capture.lines[0], /"reason":"unknown_key"/, 'and the reason')
  capture.assertNoSecrets(t, [NONCE, ...refusals.flatMap(({ token }) => [token, ...token.split('.')])])
})

t.test('a value that is not a string is refused as malformed', async (t) => {
  for (const value of [undefined, null, 42, {}, ['a.b.c']]) {
    await assertRefused(t, rp.verifyIdToken(value, { nonce: NONCE }), 'FSS_ID_TOKEN_INVALID', 'malformed')
  }
})

t.test('max_age: auth_time is required and must be recent enough', async (t) => {
  // One reading of the clock: a second boundary between two readings must not fail the test.
  const authTime = now() - 60
  const fresh = await providerToken(oidc, { auth_time: authTime })
  t.equal((await rp.verifyIdToken(fresh, { nonce: NONCE, maxAge: 300 })).auth_time, authTime)
  const missing = await providerToken(oidc)
  await assertRefused(t, rp.verifyIdToken(missing, { nonce: NONCE, maxAge: 300 }), 'FSS_ID_TOKEN_INVALID', 'auth_time_missing', [missing])
  t.ok(await rp.verifyIdToken(missing, { nonce: NONCE }), 'without max_age auth_time is optional')
  const stale = await providerToken(oidc, { auth_time: now() - 400 })
  await assertRefused(t, rp.verifyIdToken(stale, { nonce: NONCE, maxAge: 300 }), 'FSS_ID_TOKEN_INVALID', 'auth_time_stale', [stale])
})

t.test('an id_token from a refresh is verified without a nonce, and must keep iss, sub, aud and azp', async (t) => {
  const login = await rp.verifyIdToken(await providerToken(oidc, { aud: [CLIENT_ID, 'api'], azp: CLIENT_ID }), { nonce: NONCE })
  const binding = bindingOf(login)
  t.same(binding, { iss: oidc.issuer, sub: 'user-1', aud: [CLIENT_ID, 'api'], azp: CLIENT_ID })
  const refreshed = await rp.verifyIdToken(await providerToken(oidc, { nonce: undefined, aud: ['api', CLIENT_ID], azp: CLIENT_ID }), { nonce: null })
  t.doesNotThrow(() => rp.checkRefreshedIdToken(binding, refreshed), 'audience order does not matter')
  const cases: Array<[string, Record<string, unknown>]> = [
    ['iss', { iss: 'http://127.0.0.1:1/other' }],
    ['sub', { sub: 'user-2' }],
    ['aud', { aud: [CLIENT_ID] }],
    ['azp', { azp: undefined }]
  ]
  for (const [reason, edit] of cases) {
    const err = await assertRefused(t, () => checkRefreshedIdToken(binding, { ...refreshed, ...edit } as typeof refreshed), 'FSS_ID_TOKEN_SUBJECT_CHANGED', reason)
    t.equal(err.statusCode, 401, 'log in again')
  }
  t.same(bindingOf({ iss: 'i', sub: 's', aud: 'a' }), { iss: 'i', sub: 's', aud: 'a' }, 'no azp, none kept')
  t.doesNotThrow(() => checkRefreshedIdToken({ iss: 'i', sub: 's', aud: 'a' }, { iss: 'i', sub: 's', aud: ['a'] }), 'aud "a" is aud ["a"]')
  await assertRefused(t, () => checkRefreshedIdToken({ iss: 'i', sub: 's', aud: 'a' }, { iss: 'i', sub: 's', aud: 'b' }), 'FSS_ID_TOKEN_SUBJECT_CHANGED', 'aud')
})

t.test('a refreshed id_token is still held to every other check', async (t) => {
  const token = await providerToken(oidc, { nonce: undefined, aud: 'another-client' })
  await assertRefused(t, rp.verifyIdToken(token, { nonce: null }), 'FSS_ID_TOKEN_INVALID', 'audience', [token])
})

t.test('any string as an id_token is refused with a code, never a crash', async (t) => {
  const segment = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='.split('')), maxLength: 40 })
  const arbitrary = fc.oneof(fc.string({ maxLength: 200 }), fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')))
  await fc.assert(fc.asyncProperty(arbitrary, async (value) => {
    try {
      await rp.verifyIdToken(value, { nonce: NONCE })
      return false
    } catch (err) {
      return (err as { code?: string }).code === 'FSS_ID_TOKEN_INVALID' && !(err as Error).message.includes(value.length >= 8 ? value : '\u0000')
    }
  }), { numRuns: 300 })
  t.pass('300 arbitrary strings refused with FSS_ID_TOKEN_INVALID')
})

t.test('any claims signed by the provider either pass every check or are refused with a code', async (t) => {
  const json = fc.jsonValue({ maxDepth: 2 })
  // Mostly the good value, sometimes any JSON, sometimes absent (undefined).
  const field = (good: unknown): fc.Arbitrary<unknown> => fc.oneof(
    { weight: 5, arbitrary: fc.constant(good) },
    { weight: 1, arbitrary: json },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
  const claim = fc.record({
    iss: field(oidc.issuer),
    sub: field('user-1'),
    aud: fc.oneof(field(CLIENT_ID), fc.constant([CLIENT_ID, 'x'])),
    azp: field(CLIENT_ID),
    nonce: field(NONCE),
    iat: field(now()),
    exp: field(now() + 600),
    name: json
  })
  const codes = new Set(['FSS_ID_TOKEN_INVALID', 'FSS_ID_TOKEN_NONCE_INVALID'])
  let passed = 0
  let refused = 0
  await fc.assert(fc.asyncProperty(claim, async (edits) => {
    const token = await oidc.service.issuer.buildToken({
      scopesOrTransform: (_h, payload) => {
        for (const name of ['iss', 'iat', 'exp', 'nbf']) delete payload[name]
        for (const [name, value] of Object.entries(edits)) if (value !== undefined) payload[name] = value
      }
    })
    try {
      const verified = await rp.verifyIdToken(token, { nonce: NONCE })
      passed++
      // Passing means every rule held.
      return verified.iss === oidc.issuer && typeof verified.sub === 'string' && verified.sub.length >= 1 && verified.sub.length <= 255 && verified.nonce === NONCE &&
        (verified.aud === CLIENT_ID || (Array.isArray(verified.aud) && verified.aud.includes(CLIENT_ID) && verified.azp === CLIENT_ID))
    } catch (err) {
      refused++
      return codes.has((err as { code?: string }).code ?? '')
    }
  }), { numRuns: 150 })
  t.ok(passed > 0 && refused > 0, `both outcomes were exercised (${passed} passed, ${refused} refused)`)
})
