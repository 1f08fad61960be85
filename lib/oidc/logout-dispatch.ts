// One Back-Channel Logout endpoint for several OpenID Connect providers. A
// logout_token names its issuer and audience (§2.4); those unverified claims
// only choose which provider's verifier to run, and that verifier then checks
// the signature against that provider's keys and the iss and aud exactly, so a
// token can never be verified with keys other than its own issuer's.
import { decodeJwt } from 'jose'
import { refuse } from './reasons.ts'
import { MAX_JWT_CHARS } from './jwt.ts'
import type { LogoutTokenClaims } from './logout-token.ts'

export interface LogoutTokenSource {
  /** the provider's name in the suite */
  name: string
  issuer: string
  clientId: string
  verify: (token: unknown) => Promise<LogoutTokenClaims>
  /** seconds a token stays acceptable (its age limit plus the clock tolerance) */
  maxAgeSeconds: number
}

export interface LogoutTokenDispatch {
  /** verifies with the provider the token names; its claims plus that provider's name */
  verify: (token: unknown) => Promise<LogoutTokenClaims & { provider: string }>
  /** the longest any provider's token stays acceptable: how long a jti must be remembered */
  maxAgeSeconds: number
}

/** null when no provider is OpenID Connect (nothing could sign a logout_token). */
export function logoutTokenDispatch (sources: readonly LogoutTokenSource[]): LogoutTokenDispatch | null {
  if (sources.length === 0) return null
  return {
    maxAgeSeconds: Math.max(...sources.map((s) => s.maxAgeSeconds)),
    async verify (token) {
      const source = chooseSource(sources, token)
      return { ...await source.verify(token), provider: source.name }
    }
  }
}

function chooseSource (sources: readonly LogoutTokenSource[], token: unknown): LogoutTokenSource {
  // A single provider verifies everything itself, malformed tokens included.
  if (sources.length === 1) return sources[0] as LogoutTokenSource
  if (typeof token !== 'string' || token === '') throw refuse.logoutToken('malformed')
  if (token.length > MAX_JWT_CHARS) throw refuse.logoutToken('too_large')
  let claims: { iss?: unknown, aud?: unknown }
  try {
    claims = decodeJwt(token)
  } catch {
    throw refuse.logoutToken('malformed')
  }
  const byIssuer = sources.filter((s) => s.issuer === claims.iss)
  if (byIssuer.length === 0) throw refuse.logoutToken('issuer')
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  // Two providers may share an issuer with different clients: the audience tells them apart.
  // With none of them named, the first verifies, and refuses the audience.
  return byIssuer.find((s) => audience.includes(s.clientId)) ?? byIssuer[0] as LogoutTokenSource
}
