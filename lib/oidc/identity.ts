// The identity kept for a logged-in user: sub and iss from the verified
// id_token plus an allow-list of profile claims, each typed (Core §5.1 for
// the standard ones), each and all bounded in size. A claim of the wrong type
// or over its bound is left out rather than failing the login: the profile is
// a convenience, sub + iss is the identity.
import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'

/** Core §5.1 standard claims as typed values. */
export interface StandardClaims {
  name?: string
  given_name?: string
  family_name?: string
  middle_name?: string
  nickname?: string
  preferred_username?: string
  profile?: string
  picture?: string
  website?: string
  email?: string
  email_verified?: boolean
  gender?: string
  birthdate?: string
  zoneinfo?: string
  locale?: string
  phone_number?: string
  phone_number_verified?: boolean
  address?: Record<string, string>
  updated_at?: number
}

/** A claim outside Core §5.1: scalars and lists of strings only. */
export type ClaimValue = string | number | boolean | string[] | Record<string, string>
export type IdentityClaims = StandardClaims & Record<string, ClaimValue | undefined>

export interface Identity {
  sub: string
  iss: string
  claims: IdentityClaims
}

export interface IdentityLimits {
  /** claim names to keep, in priority order */
  profileClaims: readonly string[]
  /** bytes of JSON one value may take */
  maxClaimBytes: number
  /** bytes of JSON the whole identity may take */
  maxIdentityBytes: number
}

// A page renders profile/picture/website as links and images: only http(s) URLs.
const WebUrl = Type.String({ pattern: '^https?://[^\\s]+$' })
const Str = Type.String()
const Bool = Type.Boolean()
const STANDARD: Record<string, TSchema> = {
  profile: WebUrl,
  picture: WebUrl,
  website: WebUrl,
  email_verified: Bool,
  phone_number_verified: Bool,
  updated_at: Type.Number(),
  address: Type.Record(Type.String(), Type.String())
}
for (const name of ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'email', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number']) {
  STANDARD[name] = Str
}
const OTHER = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Array(Type.String())])

const checks = new Map<string, TypeCheck<TSchema>>()
function checkFor (name: string): TypeCheck<TSchema> {
  const schema = Object.hasOwn(STANDARD, name) ? STANDARD[name] : OTHER
  let check = checks.get(name)
  if (check === undefined) {
    check = TypeCompiler.Compile(schema)
    checks.set(name, check)
  }
  return check
}

function bytes (value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value))
}

/**
 * The allow-listed claims of `source` that have their type and fit: each
 * within `maxClaimBytes`, all together (with `reserved` bytes already spent)
 * within `maxIdentityBytes`. Earlier names in the list win the budget.
 */
export function pickClaims (source: Record<string, unknown>, limits: IdentityLimits, reserved = 0): IdentityClaims {
  const claims: IdentityClaims = {}
  let total = reserved
  for (const name of limits.profileClaims) {
    if (!Object.hasOwn(source, name)) continue
    const value = source[name]
    // TypeBox numbers are finite, so every kept value survives JSON.
    if (!checkFor(name).Check(value)) continue
    const size = bytes(value)
    if (size > limits.maxClaimBytes) continue
    const entry = bytes(name) + size + 2 // "name":value,
    if (total + entry > limits.maxIdentityBytes) continue
    total += entry
    // defineProperty: a claim named __proto__ stays a plain own field.
    Object.defineProperty(claims, name, { value, enumerable: true, writable: true, configurable: true })
  }
  return claims
}

/** The identity from a verified id_token's claims (sub and iss were checked by verifyIdToken). */
export function extractIdentity (verified: { sub: string, iss: string } & Record<string, unknown>, limits: IdentityLimits): Identity {
  const reserved = bytes({ sub: verified.sub, iss: verified.iss, claims: {} })
  return { sub: verified.sub, iss: verified.iss, claims: pickClaims(verified, limits, reserved) }
}
