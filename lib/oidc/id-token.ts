// id_token verification (OpenID Connect Core 1.0 §3.1.3.7), the nonce check
// (§3.1.2.1, §15.5.2), auth_time against max_age, and the refresh rule
// (§12.2: a refreshed id_token keeps the login's iss, sub, aud and azp).
import { createHash, timingSafeEqual } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { JWTPayload } from 'jose'
import { typOf, verifySignedJwt, type JwtVerifier } from './jwt.ts'
import { refuse } from './reasons.ts'

// Core §2 (sub: at most 255 characters, never reassigned), §3.1.3.7.
const IdTokenClaimsSchema = Type.Object({
  iss: Type.String(),
  sub: Type.String({ minLength: 1, maxLength: 255 }),
  aud: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
  exp: Type.Number(),
  iat: Type.Number(),
  nonce: Type.Optional(Type.String()),
  azp: Type.Optional(Type.String()),
  auth_time: Type.Optional(Type.Number()),
  sid: Type.Optional(Type.String({ maxLength: 255 }))
})
const claimsCheck = TypeCompiler.Compile(IdTokenClaimsSchema)

/** A verified id_token's claims: the checked ones typed, the others as the provider sent them. */
export type IdTokenClaims = Static<typeof IdTokenClaimsSchema> & JWTPayload

export interface IdTokenVerifier extends JwtVerifier {
  /** seconds an id_token may have existed (iat) */
  maxTokenAge: number
}

export interface IdTokenExpectation {
  /**
   * The nonce this login flow sent. `null` only for an id_token from a
   * refresh, which answers no authorization request (Core §12.2).
   */
  nonce: string | null
  /** seconds, when the authorization request carried max_age (auth_time is then required) */
  maxAge?: number
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Verify an id_token. Returns its claims, or throws:
 * FSS_ID_TOKEN_INVALID (502, `reason` says which check), FSS_ID_TOKEN_NONCE_INVALID
 * (400: another login's token), or FSS_JWKS_UNAVAILABLE (502: no keys to check with).
 */
export async function verifyIdToken (token: unknown, verifier: IdTokenVerifier, expected: IdTokenExpectation): Promise<IdTokenClaims> {
  const { payload, header } = await verifySignedJwt(token, verifier, {
    maxTokenAge: verifier.maxTokenAge,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat']
  }, refuse.idToken)
  // RFC 8725 §3.11: an explicitly typed JWT of another kind (logout+jwt,
  // at+jwt…) is never an id_token, even if its claims would pass.
  if (typOf(header)?.endsWith('+jwt') === true) throw refuse.idToken('typ')
  if (!claimsCheck.Check(payload)) throw refuse.idToken('claims')
  const claims = payload
  // Core §3.1.3.7 items 4–5.
  if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp === undefined) throw refuse.idToken('azp')
  if (claims.azp !== undefined && claims.azp !== verifier.clientId) throw refuse.idToken('azp')
  if (expected.nonce !== null) {
    if (claims.nonce === undefined) throw refuse.nonce('missing')
    if (!timingSafeEqual(digest(claims.nonce), digest(expected.nonce))) throw refuse.nonce('mismatch')
  }
  if (expected.maxAge !== undefined) {
    // Core §3.1.2.1: with max_age, auth_time is required.
    if (claims.auth_time === undefined) throw refuse.idToken('auth_time_missing')
    const now = Math.floor(Date.now() / 1000)
    if (now - claims.auth_time > expected.maxAge + verifier.clockTolerance) throw refuse.idToken('auth_time_stale')
  }
  return claims
}

/** The claims a refreshed id_token must keep (Core §12.2). */
export interface IdTokenBinding {
  iss: string
  sub: string
  aud: string | string[]
  azp?: string
}

/** The binding to keep from a login's verified claims (small enough for the session). */
export function bindingOf (claims: IdTokenBinding): IdTokenBinding {
  return { iss: claims.iss, sub: claims.sub, aud: claims.aud, ...(claims.azp === undefined ? {} : { azp: claims.azp }) }
}

function audienceSet (aud: string | string[]): string {
  return JSON.stringify([...new Set(typeof aud === 'string' ? [aud] : aud)].sort())
}

/**
 * Core §12.2: a refreshed id_token (verified with `verifyIdToken`, nonce
 * `null`) names the same iss, sub and aud as the login's, and the same azp or
 * none. Throws FSS_ID_TOKEN_SUBJECT_CHANGED (401: clear the tokens, log in again).
 */
export function checkRefreshedIdToken (login: IdTokenBinding, refreshed: IdTokenBinding): void {
  if (refreshed.iss !== login.iss) throw refuse.binding('iss')
  if (refreshed.sub !== login.sub) throw refuse.binding('sub')
  if (audienceSet(refreshed.aud) !== audienceSet(login.aud)) throw refuse.binding('aud')
  if (refreshed.azp !== login.azp) throw refuse.binding('azp')
}
