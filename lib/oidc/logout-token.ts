// Logout token verification, OpenID Connect Back-Channel Logout 1.0 §2.6:
// signed by the provider like an id_token, for this client, recent, declaring
// a back-channel logout event, naming a subject or a session, and never
// carrying a nonce (so it cannot pass as an id_token, §4.1). Replay detection
// (an already seen jti) is the caller's: it returns the jti for that.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { typOf, verifySignedJwt, type JwtVerifier } from './jwt.ts'
import { refuse } from './reasons.ts'

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

const LogoutClaimsSchema = Type.Object({
  iss: Type.String(),
  aud: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
  iat: Type.Number(),
  exp: Type.Optional(Type.Number()),
  jti: Type.String({ minLength: 1, maxLength: 256 }),
  sub: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  sid: Type.Optional(Type.String({ minLength: 1, maxLength: 255 }))
})
const claimsCheck = TypeCompiler.Compile(LogoutClaimsSchema)

/** What the caller acts on: who (sub and/or sid) and the jti for its replay check. */
export type LogoutTokenClaims = Static<typeof LogoutClaimsSchema>

export interface LogoutTokenVerifier extends JwtVerifier {
  /** seconds a logout_token may have existed (iat) */
  maxTokenAge: number
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// §2.4: typ logout+jwt is recommended; providers that predate it send JWT or nothing.
const ACCEPTED_TYP = new Set([undefined, 'jwt', 'logout+jwt'])

/**
 * Verify a logout_token. Returns its claims (iss, aud, iat, exp when present,
 * jti, sub and/or sid), or throws FSS_LOGOUT_TOKEN_INVALID (400, `reason` says
 * which check; §2.8 answers 400) or FSS_JWKS_UNAVAILABLE (502).
 */
export async function verifyLogoutToken (token: unknown, verifier: LogoutTokenVerifier): Promise<LogoutTokenClaims> {
  const { payload, header } = await verifySignedJwt(token, verifier, {
    maxTokenAge: verifier.maxTokenAge,
    requiredClaims: ['iss', 'aud', 'iat', 'jti']
  }, refuse.logoutToken)
  if (!ACCEPTED_TYP.has(typOf(header))) throw refuse.logoutToken('typ')
  const events: unknown = payload.events
  if (!claimsCheck.Check(payload)) throw refuse.logoutToken('claims')
  const event = isObject(events) ? events[BACKCHANNEL_LOGOUT_EVENT] : undefined
  if (!isObject(event)) throw refuse.logoutToken('events')
  if ('nonce' in payload) throw refuse.logoutToken('nonce_present')
  if (payload.sub === undefined && payload.sid === undefined) throw refuse.logoutToken('no_subject')
  const out: LogoutTokenClaims = { iss: payload.iss, aud: payload.aud, iat: payload.iat, jti: payload.jti }
  for (const name of ['exp', 'sub', 'sid'] as const) {
    if (payload[name] !== undefined) Object.assign(out, { [name]: payload[name] })
  }
  return out
}
