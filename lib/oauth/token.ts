// The token schema and its normalization: whatever a provider, a caller or an
// old cookie hands us becomes one StoredToken shape, or FSS_TOKEN_INVALID.
// Nothing reaches storage or the OAuth client without passing `normalizeToken`:
// a `null` or half-filled token is refused here, not crashed on later. Nothing
// read back from storage is used without passing `isStoredToken`.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.ts'

/** The fields a token may carry (RFC 6749 §5.1 + OIDC `id_token` + simple-oauth2's `expires_at`); others are stripped. */
export const TOKEN_FIELDS = ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at', 'scope', 'id_token'] as const

/**
 * The largest token the suite stores, in bytes of its stored JSON. The default
 * store seals the token into the session cookie, whose browser-side limit is
 * 12 KB (lib/session/codec.ts): 8 KB of token leaves room for the sealing
 * overhead (base64, nonce, MAC, chunk names) and the session's other fields. A
 * larger answer is refused at validation, so no login or refresh can produce a
 * token that every later write of the session would fail on.
 */
export const MAX_TOKEN_BYTES = 8192

// RFC 6749 Appendix A.12/A.17: access-token and refresh-token are 1*VSCHAR
// (%x20-7E). CR, LF, NUL, other controls and non-ASCII are refused: the access
// token goes into an outgoing `Authorization` header, where they would split
// or break it. The id_token (a JWT, RFC 7519) is held to the same set.
const VSCHAR = '^[\\x20-\\x7E]+$'
// RFC 6749 A.4: scope-token = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E), joined by spaces.
const SCOPE_TOKEN = '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$'
const SCOPE = '^[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E]*$'
const MAX_SCOPE_CHARS = 4096

const TokenValue = Type.String({ minLength: 1, maxLength: MAX_TOKEN_BYTES, pattern: VSCHAR })
const ScopeString = Type.String({ maxLength: MAX_SCOPE_CHARS, pattern: SCOPE })

// Input as it arrives: the provider's raw JSON answer (never the OAuth
// client's parsed copy, where `null` has become a Date), `request.tokens.store()`
// from the application (which may pass a Date), or a record read back.
const TokenInput = Type.Object({
  access_token: TokenValue,
  token_type: Type.String({ maxLength: 64 }),
  refresh_token: Type.Optional(TokenValue),
  // A string ("3600") is refused on purpose: RFC 6749 §5.1 makes it a number,
  // and guessing would hide a unit error (ms vs s).
  expires_in: Type.Optional(Type.Number({ minimum: 0 })),
  expires_at: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 64 }), Type.Date()])),
  scope: Type.Optional(Type.Union([ScopeString, Type.Array(Type.String({ maxLength: MAX_SCOPE_CHARS, pattern: SCOPE_TOKEN }), { maxItems: 256 })])),
  id_token: Type.Optional(TokenValue)
})

/**
 * The one stored shape. `expires_in` is the lifetime the provider stated, in
 * seconds: its `expires_in`, or its `expires_at` minus the time the answer
 * arrived. Absent means the lifetime was assumed (`assumedLifetime`).
 */
export const StoredTokenSchema = Type.Object({
  access_token: TokenValue,
  token_type: Type.Literal('Bearer'),
  expires_at: Type.Integer({ minimum: 0 }),
  expires_in: Type.Optional(Type.Number({ minimum: 0 })),
  refresh_token: Type.Optional(TokenValue),
  scope: Type.Optional(ScopeString),
  id_token: Type.Optional(TokenValue)
}, { additionalProperties: false })

export type StoredToken = Static<typeof StoredTokenSchema>

// Compiled once at import: this runs on every token read and refresh.
const inputCheck = TypeCompiler.Compile(TokenInput)
const storedCheck = TypeCompiler.Compile(StoredTokenSchema)

/** No provider issues expiry dates beyond this (year 5138): a larger number is a millisecond timestamp. */
const MAX_EPOCH_SECONDS = 1e11

/**
 * The longest lifetime a provider may state (366 days). A millisecond
 * `expires_at`, an `expires_in` of 1e10 or 1e21, or an ISO '9999-12-31' is a
 * unit error, never a real lifetime, and would make a token that never expires.
 */
export const MAX_TOKEN_LIFETIME = 366 * 24 * 3600

/** Clock difference tolerated between the instance that stored a token and the one reading it. */
const READ_CLOCK_SKEW = 60

export interface NormalizeOptions {
  /** epoch ms; default Date.now() */
  now?: number
  /** seconds assumed when the token states neither expires_in nor expires_at */
  assumedLifetime: number
}

/**
 * Validate and normalize a token. Throws FSS_TOKEN_INVALID naming the field
 * and the rule, never the value. Whatever it returns passes `isStoredToken`.
 *
 * Expiry policy: the earlier of `expires_at` (Date, ISO string, or epoch
 * seconds) and `now + expires_in` when both are stated (a stored token keeps
 * its absolute `expires_at`, which is then the earlier); with neither,
 * `now + assumedLifetime` and `expires_in` is left out so that metadata
 * reports `expiresAssumed: true`. A provider-stated expiry beyond
 * `now + MAX_TOKEN_LIFETIME` is FSS_TOKEN_INVALID: a token never "never expires".
 * (`assumedLifetime` is the operator's setting: its option schema caps it at MAX_TOKEN_LIFETIME.)
 */
export function normalizeToken (raw: unknown, opts: NormalizeOptions): StoredToken {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new errors.FSS_TOKEN_INVALID(raw === null ? 'the token is null' : `the token is ${Array.isArray(raw) ? 'an array' : typeof raw}, not an object`)
  }
  // Strip unknown fields; treat null/undefined optional fields as absent.
  const picked: Record<string, unknown> = {}
  for (const field of TOKEN_FIELDS) {
    const value = (raw as Record<string, unknown>)[field]
    if (value !== undefined && value !== null) picked[field] = value
  }
  if (!inputCheck.Check(picked)) throw firstError(inputCheck.Errors(picked).First())
  const input = picked as Static<typeof TokenInput>
  // RFC 6749 §7.1: the type is case-insensitive; only Bearer (RFC 6750) is usable here.
  if (input.token_type.toLowerCase() !== 'bearer') {
    throw new errors.FSS_TOKEN_INVALID('token_type: only Bearer tokens are supported')
  }
  const nowSeconds = Math.floor((opts.now ?? Date.now()) / 1000)
  const stated = [
    ...(input.expires_at !== undefined ? [toEpochSeconds(input.expires_at)] : []),
    ...(input.expires_in !== undefined ? [nowSeconds + Math.floor(input.expires_in)] : [])
  ]
  const expiresAt = stated.length > 0 ? Math.min(...stated) : nowSeconds + Math.floor(opts.assumedLifetime)
  if (stated.length > 0 && expiresAt > nowSeconds + MAX_TOKEN_LIFETIME) {
    throw new errors.FSS_TOKEN_INVALID(`${input.expires_at !== undefined ? 'expires_at' : 'expires_in'}: more than ${MAX_TOKEN_LIFETIME} s ahead (a unit error?)`)
  }
  const token: StoredToken = { access_token: input.access_token, token_type: 'Bearer', expires_at: expiresAt }
  // A provider that states only `expires_at` has stated a lifetime too: the time left when it arrived.
  if (input.expires_in !== undefined) token.expires_in = input.expires_in
  else if (input.expires_at !== undefined) token.expires_in = Math.max(0, expiresAt - nowSeconds)
  if (input.refresh_token !== undefined) token.refresh_token = input.refresh_token
  if (input.scope !== undefined) token.scope = Array.isArray(input.scope) ? input.scope.join(' ') : input.scope
  if (input.id_token !== undefined) token.id_token = input.id_token
  // What is returned here must read back: a joined scope array can outgrow the stored limit.
  if (!storedCheck.Check(token)) throw firstError(storedCheck.Errors(token).First())
  const bytes = Buffer.byteLength(JSON.stringify(token))
  if (bytes > MAX_TOKEN_BYTES) throw new errors.FSS_TOKEN_INVALID(`the token is ${bytes} bytes, over the limit of ${MAX_TOKEN_BYTES}`)
  return token
}

function firstError (first: { path: string, message: string } | undefined): Error {
  /* c8 ignore next 2 -- Check() failed, so Errors() has an entry */
  // Stryker disable next-line StringLiteral: unreachable for the same reason
  if (first === undefined) return new errors.FSS_TOKEN_INVALID('invalid')
  // The path names the field (`/expires_in`); the message is TypeBox's rule, never the value.
  return new errors.FSS_TOKEN_INVALID(`${first.path.slice(1).split('/')[0]}: ${first.message}`)
}

function toEpochSeconds (value: number | string | Date): number {
  if (typeof value === 'number') {
    // simple-oauth2 reads numbers as seconds; a ms timestamp would mean year 50000+.
    if (value >= MAX_EPOCH_SECONDS) throw new errors.FSS_TOKEN_INVALID('expires_at: a number must be epoch seconds, not milliseconds')
    return Math.floor(value)
  }
  const ms = typeof value === 'string' ? Date.parse(value) : value.getTime()
  if (!Number.isFinite(ms) || ms < 0) throw new errors.FSS_TOKEN_INVALID('expires_at: not a valid date')
  return Math.floor(ms / 1000)
}

/**
 * True when a value read back from any store (a cookie, Redis, the
 * application's own store, another instance's hand-off) is exactly a token
 * `normalizeToken` could have produced: the stored shape, its character sets
 * and sizes, and an expiry no further ahead than a provider may state.
 */
export function isStoredToken (value: unknown, nowMs = Date.now()): value is StoredToken {
  if (!passedBefore(value) && !checkInFull(value)) return false
  return value.expires_at <= Math.floor(nowMs / 1000) + MAX_TOKEN_LIFETIME + READ_CLOCK_SKEW
}

// Tokens that passed the full check, by access token. A browser sends the same
// cookie with every request, so the token read back is, field for field, the
// one that passed on its previous request (with the decoded-session cache, the
// very same strings): comparing its fields with what passed (=== on strings:
// a pointer compare, or memcmp) then replaces the schema's per-character
// pattern tests. Anything else, a token never seen, or one differing in any
// field or in its set of fields, is checked in full. Bounded, and forgotten
// all at once when full: a forgotten token is only checked in full again.
const PASSED_MAX_ENTRIES = 1024
const PASSED_MAX_CHARS = 2 * 1024 * 1024
const passed = new Map<string, { token: StoredToken, fields: number }>()
let passedChars = 0

function passedBefore (value: unknown): value is StoredToken {
  if (typeof value !== 'object' || value === null) return false
  const token = value as Record<string, unknown>
  const access = token.access_token
  if (typeof access !== 'string') return false
  const known = passed.get(access)
  if (known === undefined) return false
  // for-in also walks enumerable inherited names: any of those, or an own
  // field the token that passed does not have, changes the count.
  let fields = 0
  for (const name in token) {
    if (token[name] !== (known.token as Record<string, unknown>)[name]) return false
    fields++
  }
  return fields === known.fields
}

function checkInFull (value: unknown): value is StoredToken {
  if (!storedCheck.Check(value)) return false
  const chars = value.access_token.length + (value.refresh_token?.length ?? 0) + (value.id_token?.length ?? 0) + (value.scope?.length ?? 0)
  if (passed.size >= PASSED_MAX_ENTRIES || passedChars + chars > PASSED_MAX_CHARS) {
    passed.clear()
    passedChars = 0
  }
  // A copy: the caller's object may be changed later; strings and numbers cannot.
  const token = { ...value }
  passed.set(token.access_token, { token, fields: Object.keys(token).length })
  passedChars += chars
  return true
}

export interface TokenMetadata {
  /** the token fields present (names only) */
  fields: string[]
  tokenType: 'Bearer'
  /** epoch seconds */
  expiresAt: number
  /** seconds left, negative once expired */
  expiresIn: number
  expired: boolean
  /** true when the provider stated no lifetime and `assumedLifetime` was applied */
  expiresAssumed: boolean
  hasRefreshToken: boolean
  hasIdToken: boolean
  scopes: string[]
}

/** Everything about a token except its values. */
export function tokenMetadata (token: StoredToken, nowMs = Date.now()): TokenMetadata {
  const expiresIn = token.expires_at - Math.floor(nowMs / 1000)
  return {
    fields: TOKEN_FIELDS.filter((f) => token[f] !== undefined),
    tokenType: 'Bearer',
    expiresAt: token.expires_at,
    expiresIn,
    expired: expiresIn <= 0,
    expiresAssumed: token.expires_in === undefined,
    hasRefreshToken: token.refresh_token !== undefined,
    hasIdToken: token.id_token !== undefined,
    scopes: token.scope === undefined ? [] : token.scope.split(' ').filter(Boolean)
  }
}
