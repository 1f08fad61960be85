// OpenID Connect options: one TypeBox schema, checked once through
// validateOptions, defaults applied once. Durations name their unit.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'

/**
 * The JWS algorithms an id_token or logout_token may use: asymmetric only.
 * `none` never verifies anything, and an HMAC (HS*) key is a shared secret:
 * a verifier that looked up an HS* key from a JWKS would be keyed with public
 * data (the classic algorithm-confusion forgery), and one keyed with the client
 * secret would let anyone holding that secret mint identities.
 */
export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const

// OpenID Connect Discovery §3: the issuer is a URL with no query or fragment.
// http is accepted for loopback development providers.
const IssuerUrl = Type.String({ pattern: '^https?://[^\\s/?#@]+(/[^\\s?#]*)?$', maxLength: 2048 })
const HttpUrl = Type.String({ pattern: '^https?://[^\\s/?#@]+[^\\s#]*$', maxLength: 2048 })
const ClaimName = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' })

/** Protocol claims: they describe the token, not the user, and never belong in the profile. */
export const PROTOCOL_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 's_hash', 'sid', 'events', 'cnf', 'typ'])

export const OidcOptionsSchema = Type.Object({
  /** the provider's issuer identifier, compared exactly (no normalisation) */
  issuer: IssuerUrl,
  clientId: Type.String({ minLength: 1 }),
  /** the provider's JWKS URL: set it to skip discovery (explicit provider) */
  jwksUri: Type.Optional(HttpUrl),
  /** explicit provider only: RP-initiated logout endpoint */
  endSessionEndpoint: Type.Optional(HttpUrl),
  /** explicit provider only: UserInfo endpoint */
  userinfoEndpoint: Type.Optional(HttpUrl),
  /** narrows the provider's advertised id_token algorithms; asymmetric only. @default the provider's list, or RS256 */
  idTokenSigningAlgs: Type.Optional(Type.Array(Type.Union(SIGNING_ALGORITHMS.map((alg) => Type.Literal(alg))), { minItems: 1, uniqueItems: true })),
  /** Milliseconds for each call to the provider (discovery, JWKS, UserInfo). @default 10000 */
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 120_000, description: 'milliseconds' })),
  /** Seconds of clock difference allowed on exp, nbf, iat and auth_time. @default 30 */
  clockTolerance: Type.Optional(Type.Integer({ minimum: 0, maximum: 300, description: 'seconds' })),
  /** Seconds an id_token may have existed (iat) when verified. @default 600 */
  idTokenMaxAge: Type.Optional(Type.Integer({ minimum: 60, maximum: 86_400, description: 'seconds' })),
  /** Seconds a logout_token may have existed (iat) when verified (Back-Channel Logout §4: at most about two minutes). @default 120 */
  logoutTokenMaxAge: Type.Optional(Type.Integer({ minimum: 10, maximum: 3600, description: 'seconds' })),
  /** Milliseconds after a JWKS fetch during which an unknown key id fetches nothing. @default 30000 */
  jwksCooldown: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000, description: 'milliseconds' })),
  /** Milliseconds a fetched JWKS is used before it is fetched again. @default 600000 */
  jwksCacheMaxAge: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000, description: 'milliseconds' })),
  /** Milliseconds after a failed JWKS fetch during which no new fetch is tried. @default 5000 */
  jwksFailureBackoff: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'milliseconds' })),
  /** profile claims kept in the identity, in this order of priority. @default name, email, email_verified, picture, preferred_username */
  profileClaims: Type.Optional(Type.Array(ClaimName, { maxItems: 32, uniqueItems: true })),
  /** Bytes (JSON) one claim value may take; a larger one is left out. @default 1024 */
  maxClaimBytes: Type.Optional(Type.Integer({ minimum: 16, maximum: 8192, description: 'bytes' })),
  /** Bytes (JSON) the whole identity may take; claims past it are left out. @default 4096 */
  maxIdentityBytes: Type.Optional(Type.Integer({ minimum: 256, maximum: 16_384, description: 'bytes' }))
}, { additionalProperties: false })

export type OidcOptions = Static<typeof OidcOptionsSchema>

export const OIDC_DEFAULTS = {
  timeout: 10_000,
  clockTolerance: 30,
  idTokenMaxAge: 600,
  logoutTokenMaxAge: 120,
  jwksCooldown: 30_000,
  jwksCacheMaxAge: 600_000,
  jwksFailureBackoff: 5_000,
  profileClaims: ['name', 'email', 'email_verified', 'picture', 'preferred_username'],
  maxClaimBytes: 1024,
  maxIdentityBytes: 4096
} as const

export type ResolvedOidcOptions = Required<Omit<OidcOptions, 'jwksUri' | 'endSessionEndpoint' | 'userinfoEndpoint' | 'idTokenSigningAlgs' | 'profileClaims'>> &
  Pick<OidcOptions, 'jwksUri' | 'endSessionEndpoint' | 'userinfoEndpoint' | 'idTokenSigningAlgs'> & { profileClaims: readonly string[] }

/** Validate (FSS_OPTIONS_INVALID naming `<prefix>.<path>`) and apply defaults, once. */
export function resolveOidcOptions (value: unknown, prefix = 'oidc'): ResolvedOidcOptions {
  const opts = validateOptions(OidcOptionsSchema, value, prefix)
  if (opts.jwksUri === undefined) {
    // With discovery the provider's document names these; two sources would disagree silently.
    for (const name of ['endSessionEndpoint', 'userinfoEndpoint'] as const) {
      if (opts[name] !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${prefix}.${name}`, 'only with jwksUri (an explicit provider); discovery reads it from the provider')
    }
  }
  const reserved = opts.profileClaims?.find((name) => PROTOCOL_CLAIMS.has(name))
  if (reserved !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${prefix}.profileClaims`, `${reserved} is a protocol claim, not a profile claim`)
  return { ...OIDC_DEFAULTS, ...opts, profileClaims: [...(opts.profileClaims ?? OIDC_DEFAULTS.profileClaims)] }
}
