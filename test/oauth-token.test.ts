// The token schema: exactly the allowed fields, Bearer only, expiry in epoch
// seconds, never "never expires"; and the error classification it feeds.
import t from 'tap'
import fc from 'fast-check'
import { normalizeToken, tokenMetadata, isStoredToken, MAX_TOKEN_LIFETIME, MAX_TOKEN_BYTES } from '../lib/oauth/token.ts'
import { fingerprint } from '../lib/digest.ts'
import { answeredSuccess, classifyTokenEndpointError, codeOf, failureKind, isEmptySuccess } from '../lib/oauth/provider-errors.ts'
import { errors } from '../lib/errors.ts'
import { clientAuthMethod, fastifyOAuth2Options, resolveOAuthOptions } from '../lib/oauth/options.ts'
import { backupDocument } from '../lib/oauth/backup.ts'
import { UsedStates } from '../lib/oauth/state.ts'

const now = Date.UTC(2030, 0, 1)
/** 366 days in seconds, written out: the tests must not take the bound from the code they check. */
const YEAR = 31_622_400
const norm = (raw: unknown): ReturnType<typeof normalizeToken> => normalizeToken(raw, { now, assumedLifetime: 3600 })
const code = (fn: () => unknown): string | undefined => {
  try { fn() } catch (err) { return (err as { code?: string }).code }
  return undefined
}

t.test('unknown fields are stripped and token_type is stored as Bearer', async (t) => {
  const token = norm({ access_token: 'at', token_type: 'bEaReR', expires_in: 60, refresh_token: 'rt', scope: ['a', 'b'], id_token: 'it', extra: 'x', user: { id: 1 }, refresh_expires_in: 5 })
  t.same(token, { access_token: 'at', token_type: 'Bearer', expires_at: now / 1000 + 60, expires_in: 60, refresh_token: 'rt', scope: 'a b', id_token: 'it' })
  t.ok(isStoredToken(token, now))
  t.notOk(isStoredToken({ ...token, extra: 1 }, now), 'the stored shape admits nothing else')
  t.same(norm({ access_token: 'at', token_type: 'Bearer', refresh_token: null, scope: undefined }).refresh_token, undefined, 'null optional fields are absent')
})

t.test('expires_at from a Date, an ISO string, epoch seconds or expires_in; the earlier of both wins', async (t) => {
  const at = now / 1000 + 100
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', expires_at: new Date(at * 1000) }).expires_at, at)
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', expires_at: new Date(at * 1000).toISOString() }).expires_at, at)
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', expires_at: at + 0.7 }).expires_at, at)
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', expires_at: at, expires_in: 5 }).expires_at, now / 1000 + 5, 'expires_in earlier')
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', expires_at: at, expires_in: 500 }).expires_at, at, 'expires_at earlier')
  // A stored token read back later: its absolute expires_at stays the expiry.
  const stored = norm({ access_token: 'a', token_type: 'Bearer', expires_in: 60 })
  t.equal(normalizeToken(stored, { now: now + 30_000, assumedLifetime: 3600 }).expires_at, stored.expires_at)
  t.equal(normalizeToken({ access_token: 'a', token_type: 'Bearer', expires_in: 10 }, { assumedLifetime: 1 }).expires_at, Math.floor(Date.now() / 1000) + 10, 'now defaults to Date.now()')
})

t.test('a provider-stated expiry more than 366 days (31 622 400 s) ahead is FSS_TOKEN_INVALID, whatever its form', async (t) => {
  t.equal(MAX_TOKEN_LIFETIME, YEAR, 'the bound is 366 days')
  const year = YEAR
  const base = { access_token: 'secret-value-1', token_type: 'Bearer' }
  const bad: Array<[string, unknown]> = [
    // simple-oauth2 turns a provider's expires_at into new Date(n * 1000): a ms value becomes year ~60000.
    ['ms expires_at through simple-oauth2', { ...base, expires_at: new Date((now + 3600_000) * 1000) }],
    ['the last valid Date', { ...base, expires_at: new Date(8.64e15) }],
    ['ISO 9999-12-31', { ...base, expires_at: '9999-12-31' }],
    ['expires_in 1e10', { ...base, expires_in: 1e10 }],
    ['epoch seconds just over a year', { ...base, expires_at: now / 1000 + year + 1 }],
    ['expires_in just over a year', { ...base, expires_in: year + 1 }],
    ['both beyond', { ...base, expires_in: 1e10, expires_at: '9999-12-31' }]
  ]
  for (const [what, raw] of bad) {
    const err = t.throws(() => norm(raw), what) as Error & { code: string }
    t.equal(err.code, 'FSS_TOKEN_INVALID', what)
    t.match(err.message, /expires_(at|in): more than/, what)
    t.notMatch(err.message, /secret-value/)
  }
  // The message names the field that stated the expiry: expires_at when the token has one, else expires_in.
  const named: Array<[string, unknown, string]> = [
    ['expires_in alone', { ...base, expires_in: year + 1 }, 'expires_in'],
    ['expires_at alone', { ...base, expires_at: now / 1000 + year + 1 }, 'expires_at'],
    ['expires_at as an ISO string', { ...base, expires_at: '9999-12-31' }, 'expires_at'],
    ['both beyond', { ...base, expires_in: year + 1, expires_at: now / 1000 + year + 1 }, 'expires_at']
  ]
  for (const [what, raw, field] of named) {
    t.equal((t.throws(() => norm(raw), what) as Error).message, `Token rejected: ${field}: more than 31622400 s ahead (a unit error?)`, what)
  }
  t.equal(norm({ ...base, expires_in: year }).expires_at, now / 1000 + year, 'exactly a year is accepted')
  t.equal(norm({ ...base, expires_at: now / 1000 + year }).expires_at, now / 1000 + year)
  // One absurd field next to a sane one: the earlier (sane) one is the expiry.
  t.equal(norm({ ...base, expires_in: 60, expires_at: '9999-12-31' }).expires_at, now / 1000 + 60)
  t.equal(norm({ ...base, expires_in: 1e10, expires_at: now / 1000 + 60 }).expires_at, now / 1000 + 60)
})

t.test('no lifetime at all: the assumed lifetime, flagged in metadata', async (t) => {
  const token = norm({ access_token: 'a', token_type: 'Bearer' })
  t.equal(token.expires_at, now / 1000 + 3600)
  t.equal(tokenMetadata(token, now).expiresAssumed, true)
  t.equal(tokenMetadata(norm({ access_token: 'a', token_type: 'Bearer', expires_in: 1 }), now).expiresAssumed, false)
})

t.test('invalid tokens are FSS_TOKEN_INVALID naming the field, never the value', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /null/],
    ['a string', /string/],
    [[1], /array/],
    [{}, /access_token/],
    [{ access_token: '', token_type: 'Bearer' }, /access_token/],
    [{ access_token: 'secret-value-1', token_type: 'mac' }, /Bearer/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', expires_in: -1 }, /expires_in/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', expires_in: '3600' }, /expires_in/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', expires_at: 'tomorrow' }, /expires_at/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', expires_at: Date.now() }, /milliseconds/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', expires_at: new Date(NaN) }, /expires_at/],
    [{ access_token: 'secret-value-1', token_type: 'Bearer', refresh_token: 5 }, /refresh_token/]
  ]
  for (const [raw, reason] of bad) {
    const err = t.throws(() => norm(raw)) as Error & { code: string, statusCode: number }
    t.equal(err.code, 'FSS_TOKEN_INVALID')
    t.equal(err.statusCode, 502)
    t.match(err.message, reason)
    t.notMatch(err.message, /secret-value/)
  }
})

t.test('edges of the expiry forms: empty values, negative numbers and dates before 1970 are refused', async (t) => {
  const base = { access_token: 'secret-value-1', token_type: 'Bearer' }
  const refused: Array<[string, unknown]> = [
    ['an empty refresh_token', { ...base, refresh_token: '' }],
    ['an empty id_token', { ...base, id_token: '' }],
    ['an empty access_token', { ...base, access_token: '' }],
    ['expires_at -1', { ...base, expires_at: -1 }],
    ['expires_at -0.5', { ...base, expires_at: -0.5 }],
    ['expires_in -0.001', { ...base, expires_in: -0.001 }],
    ['an ISO date 1 ms before 1970', { ...base, expires_at: '1969-12-31T23:59:59.999Z' }],
    ['a Date 1 ms before 1970', { ...base, expires_at: new Date(-1) }],
    ['an empty expires_at string', { ...base, expires_at: '' }],
    ['expires_at of exactly 1e11 (a millisecond timestamp)', { ...base, expires_at: 1e11 }]
  ]
  for (const [what, raw] of refused) t.equal(code(() => norm(raw)), 'FSS_TOKEN_INVALID', what)
  // The accepted side of each edge: epoch 0 is a (long expired) expiry, not an error.
  t.equal(norm({ ...base, expires_at: 0 }).expires_at, 0, 'expires_at 0')
  t.equal(norm({ ...base, expires_at: '1970-01-01T00:00:00.000Z' }).expires_at, 0, 'the first ms of 1970')
  t.equal(norm({ ...base, expires_at: new Date(0) }).expires_at, 0)
  // 1e11 is the first number taken for milliseconds; one less is read as seconds (and is then too far ahead).
  t.match((t.throws(() => norm({ ...base, expires_at: 1e11 })) as Error).message, /milliseconds/)
  t.match((t.throws(() => norm({ ...base, expires_at: 1e11 - 1 })) as Error).message, /more than 31622400 s ahead/)
  t.equal(norm({ ...base, expires_in: 0 }).expires_at, now / 1000, 'expires_in 0')
  // A date string or Date that is no date at all, or lies before 1970, is named as such, not as
  // a shape error of what it would have become.
  for (const [what, at] of [['an unparsable string', 'tomorrow'], ['an ISO date 1 ms before 1970', '1969-12-31T23:59:59.999Z'], ['a Date 1 ms before 1970', new Date(-1)], ['a Date in 1900', new Date(Date.UTC(1900, 0, 1))]] as const) {
    t.equal((t.throws(() => norm({ ...base, expires_at: at }), what) as Error).message, 'Token rejected: expires_at: not a valid date', what)
  }
  // A date string is at most 64 characters: the edge, with a date that parses at any length.
  const padded = (length: number): string => '2030-01-01T00:01:40.' + '0'.repeat(length - 21) + 'Z'
  t.equal(padded(64).length, 64)
  t.equal(norm({ ...base, expires_at: padded(64) }).expires_at, now / 1000 + 100, 'a 64-character date string')
  t.equal(Date.parse(padded(65)), now + 100_000, 'the 65-character string is a valid date')
  t.equal(code(() => norm({ ...base, expires_at: padded(65) })), 'FSS_TOKEN_INVALID', 'and is refused for its length')
})

t.test('null counts as absent for every optional field, and a lone expires_at is a stated lifetime', async (t) => {
  const base = { access_token: 'a', token_type: 'Bearer' }
  for (const field of ['refresh_token', 'expires_in', 'expires_at', 'scope', 'id_token']) {
    const token = norm({ ...base, [field]: null })
    t.equal(field in token && field !== 'expires_at', false, `${field}: null is not stored`)
    t.equal(token.expires_at, now / 1000 + 3600, `${field}: null leaves the assumed lifetime`)
  }
  t.equal(norm({ ...base, expires_at: null, expires_in: 60 }).expires_at, now / 1000 + 60, 'expires_at: null beside expires_in is not epoch 0')
  t.equal(norm({ ...base, expires_in: null, expires_at: now / 1000 + 90 }).expires_at, now / 1000 + 90)
  // Only expires_at: the provider stated the lifetime; metadata must not call it assumed.
  const atOnly = norm({ ...base, expires_at: now / 1000 + 900 })
  t.equal(atOnly.expires_in, 900, 'the lifetime left when it arrived')
  t.equal(tokenMetadata(atOnly, now).expiresAssumed, false)
  t.equal(norm({ ...base, expires_at: now / 1000 - 5 }).expires_in, 0, 'an expiry already past states a lifetime of 0, not a negative one')
  t.equal(tokenMetadata(norm(base), now).expiresAssumed, true, 'neither field: assumed')
})

t.test('token values are printable ASCII (RFC 6749 VSCHAR), scopes NQCHAR tokens; anything else is FSS_TOKEN_INVALID', async (t) => {
  const printable = /^[\x20-\x7E]+$/
  const scopeChars = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/
  // Strings drawn from all of Unicode, with controls and the ASCII edges made likely.
  const edgy = fc.constantFrom('\u0000', '\t', '\n', '\r', '\u001f', ' ', '~', '\u007f', '\u0080', 'é', '\u2028', '"', '\\', '\ud83d\ude00')
  const text = fc.array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 3 }), edgy, fc.string({ maxLength: 3 })), { maxLength: 8 }).map((parts) => parts.join(''))
  for (const field of ['access_token', 'refresh_token', 'id_token'] as const) {
    fc.assert(fc.property(text, (value) => {
      const outcome = code(() => norm({ access_token: 'a', token_type: 'Bearer', [field]: value }))
      return printable.test(value) ? outcome === undefined : outcome === 'FSS_TOKEN_INVALID'
    }), { numRuns: 500 })
  }
  fc.assert(fc.property(text, (value) => {
    const outcome = code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: value }))
    return scopeChars.test(value) ? outcome === undefined : outcome === 'FSS_TOKEN_INVALID'
  }), { numRuns: 500 })
  // An array scope: each entry is one scope-token (no space), joined with single spaces.
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', scope: ['a', 'b:c'] }).scope, 'a b:c')
  for (const bad of [['a b'], ['a\n'], ['']]) t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: bad })), 'FSS_TOKEN_INVALID', JSON.stringify(bad))
  const err = t.throws(() => norm({ access_token: 'secret-value-1\r\nX-Injected: 1', token_type: 'Bearer' })) as Error
  t.match(err.message, /^Token rejected: access_token: /)
  t.notMatch(err.message, /secret-value|Injected/, 'the value is never in the message')
  t.pass('every value field and scope checked')
})

t.test('a token is at most 8192 bytes of stored JSON, and what normalizes always reads back', async (t) => {
  t.equal(MAX_TOKEN_BYTES, 8192, 'the bound is 8 KB')
  // access_token padded so that the stored JSON has an exact size.
  const sized = (bytes: number): Record<string, unknown> => {
    const rest = JSON.stringify({ access_token: '', token_type: 'Bearer', expires_at: now / 1000 + 60, expires_in: 60 })
    return { access_token: 'a'.repeat(bytes - rest.length), token_type: 'Bearer', expires_in: 60 }
  }
  t.equal(JSON.stringify(norm(sized(8192))).length, 8192, 'exactly 8192 bytes is stored')
  const err = t.throws(() => norm(sized(8193))) as Error & { code: string }
  t.equal(err.code, 'FSS_TOKEN_INVALID')
  t.match(err.message, /8193 bytes, over the limit of 8192/)
  for (const field of ['access_token', 'refresh_token', 'id_token']) {
    t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', [field]: 'x'.repeat(8193) })), 'FSS_TOKEN_INVALID', `${field} alone over 8192`)
    t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', [field]: 'x'.repeat(1 << 20) })), 'FSS_TOKEN_INVALID', `${field} of 1 MB`)
  }
  // Quotes and backslashes are escaped in JSON: the bound counts the stored bytes, not the characters.
  const quoted = sized(8192)
  quoted.access_token = '"' + (quoted.access_token as string).slice(2)
  t.equal(code(() => norm(quoted)), undefined, 'one quote, one character fewer: 8192 bytes')
  quoted.access_token = '"' + (quoted.access_token as string)
  t.equal(code(() => norm(quoted)), 'FSS_TOKEN_INVALID', '8193 bytes once escaped')
  // A scope array joined past the stored scope limit would store a token that never reads back.
  const scopes = Array.from({ length: 200 }, (_, i) => `scope-${i}-${'s'.repeat(20)}`)
  t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: scopes })), 'FSS_TOKEN_INVALID', 'a joined scope over 4096 characters')
  t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: 's'.repeat(4096) })), undefined, 'a scope of exactly 4096 characters')
  t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: 's'.repeat(4097) })), 'FSS_TOKEN_INVALID')
  const many = (n: number): string[] => Array.from({ length: n }, (_, i) => `s${i}`)
  t.equal(norm({ access_token: 'a', token_type: 'Bearer', scope: many(256) }).scope?.split(' ').length, 256, 'a scope array of 256 entries')
  t.equal(code(() => norm({ access_token: 'a', token_type: 'Bearer', scope: many(257) })), 'FSS_TOKEN_INVALID', '257 entries')
  t.equal(code(() => norm({ access_token: 'a', token_type: 'B'.repeat(65) })), 'FSS_TOKEN_INVALID', 'a token_type over 64 characters')
})

t.test('isStoredToken: a record read back must be exactly a token normalizeToken could have made', async (t) => {
  const good = norm({ access_token: 'at', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt', scope: 'a', id_token: 'it' })
  t.ok(isStoredToken(good, now))
  const nowS = now / 1000
  const bad: Array<[string, unknown]> = [
    ['null', null],
    ['a string', JSON.stringify(good)],
    ['an array', [good]],
    ['an empty access_token', { ...good, access_token: '' }],
    ['a number access_token', { ...good, access_token: 5 }],
    ['token_type bearer (not normalized)', { ...good, token_type: 'bearer' }],
    ['a fractional expires_at', { ...good, expires_at: nowS + 0.5 }],
    ['a string expires_at', { ...good, expires_at: String(nowS) }],
    ['a negative expires_at', { ...good, expires_at: -1 }],
    ['a negative expires_in', { ...good, expires_in: -1 }],
    ['a string expires_in', { ...good, expires_in: '60' }],
    ['an extra field', { ...good, user: 'x' }],
    ['a control character', { ...good, refresh_token: 'r\n' }],
    ['an empty id_token', { ...good, id_token: '' }],
    ['an access_token over 8192', { ...good, access_token: 'a'.repeat(8193) }],
    ['an expiry centuries ahead', { ...good, expires_at: 9_999_999_999 }],
    ['an expiry 366 days + 61 s ahead', { ...good, expires_at: nowS + YEAR + 61 }]
  ]
  for (const [what, value] of bad) t.notOk(isStoredToken(value, now), what)
  t.ok(isStoredToken({ ...good, expires_at: nowS + YEAR + 60 }, now), '366 days + 60 s (an instance whose clock is ahead wrote it) is still read')
  t.ok(isStoredToken({ ...good, expires_at: 0 }, now), 'a long expired token is a token (it is refreshed, not dropped)')
  t.ok(isStoredToken({ access_token: 'a', token_type: 'Bearer', expires_at: nowS }, now), 'only the required fields')
  t.ok(isStoredToken({ access_token: 'a', token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) }), 'now defaults to Date.now()')
})

t.test('isStoredToken: a token equal to one that passed is accepted without the full check, anything else is checked in full', async (t) => {
  const good = norm({ access_token: 'at-seen', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt', id_token: 'it' })
  t.ok(isStoredToken(good, now), 'checked in full, and remembered')
  t.ok(isStoredToken(JSON.parse(JSON.stringify(good)), now), 'the same token decoded again (other strings, same characters)')
  const nowS = now / 1000
  // the same access token, so the remembered one is found: every other field still decides
  const near: Array<[string, unknown]> = [
    ['a control character in the refresh token', { ...good, refresh_token: 'rt\n' }],
    ['a control character in the id_token', { ...good, id_token: 'it\u0000' }],
    ['a non-ASCII id_token', { ...good, id_token: 'ït' }],
    ['an extra field', { ...good, user: 'x' }],
    ['an extra field holding undefined', { ...good, user: undefined }],
    ['a field left out that is required', (({ token_type: _, ...rest }) => rest)(good)],
    ['token_type bearer', { ...good, token_type: 'bearer' }],
    ['an expiry centuries ahead', { ...good, expires_at: 9_999_999_999 }],
    ['an expiry 366 days + 61 s ahead', { ...good, expires_at: nowS + YEAR + 61 }]
  ]
  for (const [what, value] of near) t.notOk(isStoredToken(value, now), what)
  t.ok(isStoredToken(good, now), 'the remembered token still passes')
  t.notOk(isStoredToken(good, now + (YEAR + 120) * -1000), 'the expiry bound moves with the clock, remembered or not')
  const withInherited = Object.assign(Object.create({ inherited: 'x' }) as Record<string, unknown>, good)
  t.ok(isStoredToken(withInherited, now), 'an inherited field is not an own field: checked in full, as before')
  t.ok(isStoredToken({ ...good, refresh_token: 'rt-2' }, now), 'a field changed to another valid value: checked in full, and passes')
  // past the bound the remembered tokens are forgotten; every answer stays the same
  for (let i = 0; i < 1100; i++) t.equal(isStoredToken({ ...good, access_token: `at-${i}` }, now), true)
  t.ok(isStoredToken(good, now))
  t.notOk(isStoredToken({ ...good, refresh_token: 'rt\r' }, now))
  const large = 'x'.repeat(8000)
  for (let i = 0; i < 300; i++) t.equal(isStoredToken({ ...good, access_token: `${large}-${i}` }, now), true, 'past the character bound too')
})

t.test('any input either normalizes to the stored shape or throws FSS_TOKEN_INVALID', async (t) => {
  const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.date(), fc.array(fc.string()), fc.boolean())
  const input = fc.oneof(
    fc.anything(),
    fc.record({ access_token: field, token_type: fc.oneof(fc.constantFrom('Bearer', 'bearer', 'MAC'), fc.string()), expires_in: field, expires_at: field, refresh_token: field, scope: field, id_token: field }, { requiredKeys: [] })
  )
  fc.assert(fc.property(input, (raw) => {
    try {
      const token = norm(raw)
      return isStoredToken(token, now) && Number.isInteger(token.expires_at) && token.expires_at <= now / 1000 + YEAR
    } catch (err) {
      return (err as { code?: string }).code === 'FSS_TOKEN_INVALID'
    }
  }), { numRuns: 2000 })
  t.pass('2000 inputs')
})

t.test('metadata carries no value', async (t) => {
  const token = norm({ access_token: 'access-value-123', token_type: 'Bearer', expires_in: 60, refresh_token: 'refresh-value-123', id_token: 'id-value-123', scope: 'openid  email' })
  const meta = tokenMetadata(token, now + 61_000)
  t.same(meta, { fields: ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at', 'scope', 'id_token'], tokenType: 'Bearer', expiresAt: now / 1000 + 60, expiresIn: -1, expired: true, expiresAssumed: false, hasRefreshToken: true, hasIdToken: true, scopes: ['openid', 'email'] })
  t.same(tokenMetadata(norm({ access_token: 'a', token_type: 'Bearer' }), now).scopes, [])
  // A token with only the required fields has no refresh token and no id_token.
  t.same(tokenMetadata(norm({ access_token: 'a', token_type: 'Bearer', expires_in: 60 }), now), { fields: ['access_token', 'token_type', 'expires_in', 'expires_at'], tokenType: 'Bearer', expiresAt: now / 1000 + 60, expiresIn: 60, expired: false, expiresAssumed: false, hasRefreshToken: false, hasIdToken: false, scopes: [] })
  // Expired from the second of expires_at on, not only after it.
  const at = token.expires_at
  t.same([at * 1000 - 1, at * 1000, at * 1000 + 999].map((ms) => [tokenMetadata(token, ms).expiresIn, tokenMetadata(token, ms).expired]), [[1, false], [0, true], [0, true]])
  t.notMatch(JSON.stringify(meta), /value-123/)
  const doc = JSON.stringify(backupDocument(token, now))
  t.notMatch(doc, /value-123/)
  t.match(doc, fingerprint('access-value-123'))
  t.match(fingerprint('x'), /^[0-9a-f]{8}$/)
  t.same(backupDocument(null, now), { savedAt: new Date(now).toISOString(), token: null })
})

t.test('token-endpoint errors map to codes by kind', async (t) => {
  const boom = (status: number, data?: Record<string, unknown> | null): unknown => ({ isBoom: true, output: { statusCode: status }, data })
  const res = (statusCode: number) => ({ statusCode })
  const cases: Array<[unknown, 'refresh_token' | 'authorization_code', string]> = [
    [boom(504), 'refresh_token', 'FSS_TOKEN_PROVIDER_TIMEOUT'], // no headers in time
    [boom(408, { res: res(200) }), 'refresh_token', 'FSS_TOKEN_PROVIDER_TIMEOUT'], // body stalled
    [boom(502, null), 'refresh_token', 'FSS_TOKEN_PROVIDER_ERROR'], // connection refused
    [boom(503, { isResponseError: true, res: res(503), payload: {} }), 'refresh_token', 'FSS_TOKEN_PROVIDER_ERROR'],
    [boom(400, { isResponseError: true, res: res(400), payload: { error: 'invalid_grant' } }), 'refresh_token', 'FSS_TOKEN_REFRESH_REJECTED'],
    [boom(400, { isResponseError: true, res: res(400), payload: { error: 'invalid_grant' } }), 'authorization_code', 'FSS_OAUTH_CODE_REJECTED'],
    [boom(400, { isResponseError: true, res: res(400), payload: 'x' }), 'authorization_code', 'FSS_TOKEN_PROVIDER_ERROR'],
    [boom(406, { res: res(200) }), 'refresh_token', 'FSS_TOKEN_INVALID'],
    [new TypeError('Cannot use \'in\' operator'), 'refresh_token', 'FSS_TOKEN_INVALID']
  ]
  for (const [err, grant, expected] of cases) t.equal(classifyTokenEndpointError(err, grant).code, expected, expected)
  const odd = classifyTokenEndpointError(boom(400, { isResponseError: true, res: res(400), payload: { error: 'x'.repeat(100) } }), 'refresh_token')
  t.notMatch(odd.message, /xxxx/, 'a long provider error string is not echoed')
  t.same(['FSS_OAUTH_CODE_REJECTED', 'FSS_TOKEN_PROVIDER_TIMEOUT', 'FSS_TOKEN_INVALID', 'FSS_TOKEN_PROVIDER_ERROR'].map(failureKind), ['rejected', 'timeout', 'invalid', 'provider'])
  const coded = new errors.FSS_TOKEN_PROVIDER_TIMEOUT()
  t.equal(classifyTokenEndpointError(coded, 'refresh_token'), coded, 'a coded error passes through')
  t.equal(classifyTokenEndpointError(null, 'refresh_token').code, 'FSS_TOKEN_INVALID')
  t.equal(classifyTokenEndpointError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'refresh_token').code, 'FSS_TOKEN_INVALID')
  t.equal(codeOf(coded), 'FSS_TOKEN_PROVIDER_TIMEOUT')
  t.equal(codeOf(new Error('x')), 'unknown')
  t.ok(isEmptySuccess(boom(406, { res: res(200) })))
  t.notOk(isEmptySuccess(boom(406, { res: res(503) })))
  // A 2xx JSON answer that did not parse used the grant; a non-JSON 2xx (406) or any other status did not.
  const used: Array<[unknown, boolean]> = [
    [boom(502, { res: res(200) }), true],
    [boom(502, { res: res(201) }), true],
    [boom(502, { res: res(299) }), true],
    [boom(406, { res: res(200) }), false],
    [boom(502, { res: res(199) }), false],
    [boom(502, { res: res(300) }), false],
    [boom(400, { res: res(400), isResponseError: true }), false],
    [boom(502, {}), false],
    [boom(502, null), false],
    [boom(504), false],
    [new Error('x'), false]
  ]
  for (const [err, expected] of used) t.equal(answeredSuccess(err), expected)
  t.notOk(isEmptySuccess(new Error('x')))
})

t.test('explicit endpoints map to @fastify/oauth2 hosts and paths; PKCE is always S256', async (t) => {
  const opts = resolveOAuthOptions({ provider: { authorizeUrl: 'https://id.example/oauth/authorize?tenant=a', tokenUrl: 'https://api.example/oauth/token' }, clientId: 'c', clientSecret: '', callbackUri: 'https://app.example/cb' })
  const mapped = fastifyOAuth2Options(opts, 'x', opts.provider as { authorizeUrl: string, tokenUrl: string })
  t.same(mapped.credentials.auth, { tokenHost: 'https://api.example', tokenPath: '/oauth/token', authorizeHost: 'https://id.example', authorizePath: '/oauth/authorize?tenant=a' })
  t.equal(mapped.pkce, 'S256')
  t.same(mapped.scope, ['openid'])
  t.equal(mapped.credentials.http.timeout, 10_000)
})

t.test('client authentication: a public client in the body, else the configured method, else Basic unless only POST is advertised', async (t) => {
  const base = { provider: { authorizeUrl: 'https://id.example/a', tokenUrl: 'https://id.example/t' }, clientId: 'c', callbackUri: 'https://app.example/cb' }
  const cases: Array<[string, Record<string, unknown>, string[] | undefined, string, 'header' | 'body']> = [
    ['public client', { clientSecret: '' }, ['client_secret_basic'], 'none', 'body'],
    ['public client, post configured', { clientSecret: '', clientAuthMethod: 'client_secret_post' }, undefined, 'none', 'body'],
    ['nothing advertised', { clientSecret: 's' }, undefined, 'client_secret_basic', 'header'],
    ['an empty list', { clientSecret: 's' }, [], 'client_secret_basic', 'header'],
    ['both advertised', { clientSecret: 's' }, ['client_secret_post', 'client_secret_basic'], 'client_secret_basic', 'header'],
    ['only post advertised', { clientSecret: 's' }, ['private_key_jwt', 'client_secret_post'], 'client_secret_post', 'body'],
    ['neither advertised', { clientSecret: 's' }, ['private_key_jwt'], 'client_secret_basic', 'header'],
    ['basic configured, only post advertised', { clientSecret: 's', clientAuthMethod: 'client_secret_basic' }, ['client_secret_post'], 'client_secret_basic', 'header'],
    ['post configured, only basic advertised', { clientSecret: 's', clientAuthMethod: 'client_secret_post' }, ['client_secret_basic'], 'client_secret_post', 'body']
  ]
  for (const [name, extra, advertised, method, wire] of cases) {
    const opts = resolveOAuthOptions({ ...base, ...extra })
    t.equal(clientAuthMethod(opts, advertised), method, name)
    t.equal(fastifyOAuth2Options(opts, 'x', opts.provider as { authorizeUrl: string, tokenUrl: string }, advertised).credentials.options.authorizationMethod, wire, `${name}: simple-oauth2 ${wire}`)
  }
  t.throws(() => resolveOAuthOptions({ ...base, clientSecret: 's', clientAuthMethod: 'private_key_jwt' }), { code: 'FSS_OPTIONS_INVALID' }, 'an unsupported method is refused')
})

t.test('used states are remembered for their lifetime, within a bound', async (t) => {
  const used = new UsedStates(60_000, 2)
  used.consume('a')
  t.equal(code(() => used.consume('a')), 'FSS_OAUTH_STATE_INVALID')
  used.consume('b')
  used.consume('c') // over the bound: 'a' is forgotten
  t.equal(code(() => used.consume('a')), undefined)
})
