// The part id_token and logout_token verification share: jose's jwtVerify
// with an asymmetric algorithm allow-list, the exact issuer, the client id in
// the audience, bounded clock tolerance and token age, and the mapping of
// jose's errors to one reason word each.
import { jwtVerify, errors as jose, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose'
import { errors } from '../errors.ts'
import { SIGNING_ALGORITHMS } from './options.ts'
import { displayUrl } from './http.ts'
import { isCoded, type JwtReason, type OidcError } from './reasons.ts'

/** What every signed-JWT check is held against. */
export interface JwtVerifier {
  issuer: string
  clientId: string
  /** allowed JWS algorithms: asymmetric only (see signingAlgorithms) */
  algorithms: readonly string[]
  getKey: JWTVerifyGetKey
  /** seconds */
  clockTolerance: number
}

/** Larger than any id_token seen in practice (a few KiB, tens with group claims); a bound on the work per call. */
export const MAX_JWT_CHARS = 64 * 1024

/**
 * The algorithms to accept: the configured list, else the provider's
 * advertised list, else RS256 (Discovery §3: the one every provider supports),
 * narrowed by both when both exist, and always to asymmetric algorithms.
 * Throws FSS_OIDC_DISCOVERY_FAILED when nothing usable is left.
 */
export function signingAlgorithms (issuer: string, advertised: readonly string[] | undefined, configured?: readonly string[]): string[] {
  const asymmetric = new Set<string>(SIGNING_ALGORITHMS)
  let list = (configured ?? advertised ?? ['RS256']).filter((alg) => asymmetric.has(alg))
  if (configured !== undefined && advertised !== undefined) list = list.filter((alg) => advertised.includes(alg))
  if (list.length === 0) {
    throw Object.assign(new errors.FSS_OIDC_DISCOVERY_FAILED(displayUrl(issuer), 'no id_token signing algorithm is both advertised and allowed (asymmetric only: never none or HMAC)',
      'configure the provider to sign id_tokens with RS256 or another asymmetric algorithm, or fix idTokenSigningAlgs'), { reason: 'algorithm' })
  }
  return list
}

/** One reason word for each way jose refuses a token. */
export function joseReason (err: unknown): JwtReason {
  if (err instanceof jose.JOSEAlgNotAllowed) return 'algorithm'
  if (err instanceof jose.JWKSNoMatchingKey) return 'unknown_key'
  if (err instanceof jose.JWKSMultipleMatchingKeys) return 'ambiguous_key'
  if (err instanceof jose.JWSSignatureVerificationFailed) return 'signature'
  if (err instanceof jose.JWTExpired) return err.claim === 'iat' ? 'too_old' : 'expired'
  if (err instanceof jose.JWTClaimValidationFailed && err.reason === 'check_failed') {
    switch (err.claim) {
      case 'iss': return 'issuer'
      case 'aud': return 'audience'
      case 'nbf': return 'not_yet_valid'
      case 'iat': return 'issued_in_future'
    }
  }
  if (err instanceof jose.JWTClaimValidationFailed) return 'claims'
  // JWSInvalid, JWTInvalid (not JSON, not an object), JOSENotSupported, or a
  // TypeError from a value no JWT could hold.
  return 'malformed'
}

export interface VerifiedJwt {
  payload: JWTPayload
  header: ProtectedHeaderParameters
}

/**
 * jwtVerify with the verifier's rules. `refuse` builds the caller's coded
 * error from a reason; an FSS_JWKS_UNAVAILABLE from the key resolver passes
 * through unchanged.
 */
export async function verifySignedJwt (
  token: unknown,
  verifier: JwtVerifier,
  checks: { maxTokenAge: number, requiredClaims: string[] },
  refuse: (reason: JwtReason) => OidcError
): Promise<VerifiedJwt> {
  if (typeof token !== 'string' || token === '') throw refuse('malformed')
  if (token.length > MAX_JWT_CHARS) throw refuse('too_large')
  try {
    const { payload, protectedHeader } = await jwtVerify(token, verifier.getKey, {
      algorithms: [...verifier.algorithms],
      issuer: verifier.issuer,
      audience: verifier.clientId,
      clockTolerance: verifier.clockTolerance,
      // Also refuses an iat in the future (beyond the tolerance).
      maxTokenAge: checks.maxTokenAge,
      requiredClaims: checks.requiredClaims
    })
    return { payload, header: protectedHeader }
  } catch (err) {
    if (isCoded(err)) throw err
    throw refuse(joseReason(err))
  }
}

/** The JWS typ header normalised as RFC 7515 §4.1.9 asks (no `application/`, case-insensitive). */
export function typOf (header: ProtectedHeaderParameters): string | undefined {
  return typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : undefined
}
