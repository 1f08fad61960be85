// The identity kept for a user: allow-listed, typed, size-bounded claims,
// whatever the provider puts in its tokens; and UserInfo from the real
// provider's endpoint, whose sub must be the id_token's.
import t from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { CLIENT_ID, assertRefused, relyingParty } from './oidc-helper.ts'
import { extractIdentity, pickClaims, type IdentityLimits } from '../lib/oidc/identity.ts'
import type { RelyingParty } from '../lib/oidc/relying-party.ts'

let oidc: OidcServer
let rp: RelyingParty
t.before(async () => {
  oidc = await startOidcServer()
  rp = await relyingParty(oidc)
})
t.teardown(() => oidc.stop())

const DEFAULT: IdentityLimits = { profileClaims: ['name', 'email', 'email_verified', 'picture', 'preferred_username'], maxClaimBytes: 1024, maxIdentityBytes: 4096 }
const verified = (claims: Record<string, unknown>): { sub: string, iss: string } & Record<string, unknown> => ({ sub: 'user-1', iss: 'https://idp.example', ...claims })

t.test('only allow-listed claims of the right type are kept', async (t) => {
  const identity = extractIdentity(verified({
    name: 'Ada',
    email: 'ada@example.org',
    email_verified: 'true', // a string, not a boolean
    picture: 'javascript:alert(1)', // not an http(s) URL
    preferred_username: 42,
    nonce: 'n',
    groups: ['admins']
  }), DEFAULT)
  t.same(identity, { sub: 'user-1', iss: 'https://idp.example', claims: { name: 'Ada', email: 'ada@example.org' } })
})

t.test('a configured allow-list keeps standard and custom claims, typed', async (t) => {
  const limits = { ...DEFAULT, profileClaims: ['groups', 'address', 'updated_at', 'locale', 'tenant', 'level', 'staff', 'realm_access', 'website'] }
  const identity = extractIdentity(verified({
    groups: ['admins', 'ops'],
    address: { country: 'UK', locality: 'London' },
    updated_at: 1_700_000_000,
    locale: 'en-GB',
    tenant: 't-1',
    level: 3,
    staff: true,
    realm_access: { roles: ['admin'] }, // an object outside Core §5.1: not kept
    website: 'https://ada.example'
  }), limits)
  t.same(identity.claims, { groups: ['admins', 'ops'], address: { country: 'UK', locality: 'London' }, updated_at: 1_700_000_000, locale: 'en-GB', tenant: 't-1', level: 3, staff: true, website: 'https://ada.example' })
  const wrong = extractIdentity(verified({ groups: [1, 2], address: { zip: 12345 }, updated_at: '2024' }), limits)
  t.same(wrong.claims, {}, 'a list of numbers, an address with a number, a string date: all left out')
})

t.test('a claim over its size bound, or past the total bound, is left out', async (t) => {
  const limits: IdentityLimits = { profileClaims: ['name', 'email', 'nickname'], maxClaimBytes: 64, maxIdentityBytes: 256 }
  const big = extractIdentity(verified({ name: 'x'.repeat(100), email: 'a@b.c' }), limits)
  t.same(big.claims, { email: 'a@b.c' }, 'a 100-character name is over 64 bytes')
  const multibyte = extractIdentity(verified({ name: 'é'.repeat(40) }), limits)
  t.same(multibyte.claims, {}, '40 characters but 80 bytes')
  const full = extractIdentity(verified({ name: 'n'.repeat(60), email: 'e'.repeat(60), nickname: 'k'.repeat(60) }), limits)
  t.same(Object.keys(full.claims), ['name', 'email'], 'the third no longer fits: earlier names win')
  t.ok(Buffer.byteLength(JSON.stringify(full)) <= 256)
})

t.test('a claim named __proto__ stays a plain field', async (t) => {
  const source = JSON.parse('{"__proto__": "x", "name": "Ada"}') as Record<string, unknown>
  const claims = pickClaims(source, { ...DEFAULT, profileClaims: ['__proto__', 'name'] })
  t.equal(Object.getPrototypeOf(claims), Object.prototype)
  t.same(Object.keys(claims), ['__proto__', 'name'])
  t.same(pickClaims({}, { ...DEFAULT, profileClaims: ['__proto__', 'constructor'] }), {}, 'inherited names are not claims')
})

t.test('any claims: the identity holds only allow-listed, typed values within every bound', async (t) => {
  const names = ['name', 'email', 'email_verified', 'picture', 'groups', 'updated_at', 'address', 'custom']
  const limits: IdentityLimits = { profileClaims: names.slice(0, 7), maxClaimBytes: 128, maxIdentityBytes: 512 }
  const source = fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 10 })), fc.oneof(fc.jsonValue(), fc.string({ maxLength: 300 }), fc.webUrl()), { maxKeys: 12 })
  fc.assert(fc.property(source, (claims) => {
    const identity = extractIdentity(verified(claims), limits)
    const kept = Object.entries(identity.claims)
    return Buffer.byteLength(JSON.stringify(identity)) <= limits.maxIdentityBytes &&
      kept.every(([name, value]) => limits.profileClaims.includes(name) && Buffer.byteLength(JSON.stringify(value)) <= limits.maxClaimBytes) &&
      (identity.claims.email_verified === undefined || typeof identity.claims.email_verified === 'boolean') &&
      (identity.claims.picture === undefined || /^https?:\/\//.test(identity.claims.picture)) &&
      (identity.claims.updated_at === undefined || Number.isFinite(identity.claims.updated_at)) &&
      (identity.claims.groups === undefined || typeof identity.claims.groups !== 'object' || (Array.isArray(identity.claims.groups) && identity.claims.groups.every((g) => typeof g === 'string')))
  }), { numRuns: 500 })
  t.pass('500 claim sets')
})

t.test('UserInfo: the provider\'s answer with the same sub gives its allow-listed claims', async (t) => {
  const accessToken = 'at-userinfo-0123456789-abcdef'
  let authorization: string | undefined
  oidc.service.once('beforeUserinfo', (res: { body: Record<string, unknown> }, req: { headers: Record<string, string> }) => {
    authorization = req.headers.authorization
    res.body = { sub: 'user-1', name: 'Ada', email: 'ada@example.org', phone_number: '+44 20' }
  })
  const info = await rp.fetchUserInfo(accessToken, 'user-1')
  t.equal(authorization, `Bearer ${accessToken}`, 'the access token went to the provider as a Bearer token')
  t.same(info, { sub: 'user-1', claims: { name: 'Ada', email: 'ada@example.org' } })
})

t.test('UserInfo naming another subject is refused', async (t) => {
  // The provider answers sub "johndoe" on its own.
  const err = await assertRefused(t, rp.fetchUserInfo('at-mismatch-0123456789', 'user-1'), 'FSS_USERINFO_SUBJECT_MISMATCH', 'mismatch', ['at-mismatch-0123456789'])
  t.equal(err.statusCode, 502)
})

t.test('UserInfo failures are coded with their reason, and never show the access token', async (t) => {
  const accessToken = 'at-failure-0123456789-abcdef'
  const cases: Array<[string, () => void, string, number?]> = [
    ['HTTP 401', () => oidc.service.once('beforeUserinfo', (res: { statusCode: number }) => { res.statusCode = 401 }), 'http_status'],
    ['not JSON', () => oidc.answerPath('/userinfo', { body: 'hello', contentType: 'text/plain' }), 'not_json'],
    ['a signed JWT answer', () => oidc.answerPath('/userinfo', { body: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln', contentType: 'application/jwt' }), 'not_json'],
    ['a JSON array', () => oidc.answerPath('/userinfo', { body: '[{"sub":"user-1"}]' }), 'invalid'],
    ['no sub', () => oidc.answerPath('/userinfo', { body: '{"name":"Ada"}' }), 'invalid'],
    ['an empty sub', () => oidc.answerPath('/userinfo', { body: '{"sub":""}' }), 'invalid'],
    ['over 64 KiB, declared up front', () => oidc.service.once('beforeUserinfo', (res: { body: Record<string, unknown> }) => { res.body = { sub: 'user-1', pad: 'x'.repeat(70_000) } }), 'too_large'],
    ['over 64 KiB, streamed', () => oidc.answerPath('/userinfo', { body: JSON.stringify({ sub: 'user-1', pad: 'x'.repeat(70_000) }) }), 'too_large'],
    ['a dropped connection', () => oidc.answerPath('/userinfo', { reset: true }), 'unreachable'],
    ['no answer within the timeout', () => oidc.answerPath('/userinfo', { hang: true }), 'timeout', 200]
  ]
  for (const [name, arrange, reason, timeout] of cases) {
    await t.test(name, async (t) => {
      arrange()
      t.teardown(() => oidc.answerPath('/userinfo', null))
      const party = timeout === undefined ? rp : await relyingParty(oidc, { timeout })
      const err = await assertRefused(t, party.fetchUserInfo(accessToken, 'user-1'), 'FSS_USERINFO_FAILED', reason, [accessToken])
      t.equal(err.statusCode, 502)
    })
  }
})

t.test('UserInfo needs an endpoint: an explicit provider without one is a configuration error', async (t) => {
  const explicit = await relyingParty(oidc, { jwksUri: oidc.endpoints.jwks })
  const err = await assertRefused(t, explicit.fetchUserInfo('at-none-0123456789', 'user-1'), 'FSS_OPTIONS_INVALID', undefined, ['at-none-0123456789'])
  t.match(err.message, 'oidc.userinfoEndpoint')
  const withEndpoint = await relyingParty(oidc, { jwksUri: oidc.endpoints.jwks, userinfoEndpoint: oidc.endpoints.userinfo })
  oidc.service.once('beforeUserinfo', (res: { body: Record<string, unknown> }) => { res.body = { sub: 'user-1' } })
  t.same(await withEndpoint.fetchUserInfo('at-explicit-0123456789', 'user-1'), { sub: 'user-1', claims: {} })
  t.equal(CLIENT_ID, explicit.options.clientId)
})
