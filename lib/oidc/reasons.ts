// Every OpenID Connect refusal is a coded error from lib/errors.ts plus a
// `reason`: one fixed word from the lists below. The message is the reason's
// sentence. Neither ever holds a value taken from a token, a provider answer
// or a request, so an error can be logged and answered as it is.
import { errors } from '../errors.ts'

/** Why a signed JWT (id_token or logout_token) was refused. */
export const JWT_REASONS = {
  malformed: 'it is not a signed JWT in compact serialization',
  too_large: 'it is larger than any id_token or logout_token should be',
  algorithm: 'its signing algorithm is not allowed (only the provider\'s asymmetric algorithms; never none or HMAC)',
  unknown_key: 'no key in the provider\'s JWKS matches it, even after fetching the JWKS again',
  ambiguous_key: 'it names no key id and the provider\'s JWKS has several matching keys',
  signature: 'its signature does not verify with the provider\'s key',
  typ: 'its typ header marks another kind of JWT',
  issuer: 'its iss is not the configured issuer',
  audience: 'its aud does not contain this client id',
  azp: 'its azp (authorized party) is missing or is not this client id',
  expired: 'it has expired (exp)',
  not_yet_valid: 'it is not valid yet (nbf)',
  issued_in_future: 'its iat lies in the future beyond the clock tolerance',
  too_old: 'it was issued (iat) longer ago than allowed',
  claims: 'a required claim is missing or has the wrong type',
  auth_time_missing: 'max_age was requested and it carries no auth_time',
  auth_time_stale: 'the user authenticated (auth_time) longer ago than the requested max_age',
  events: 'its events claim does not declare a back-channel logout',
  nonce_present: 'it carries a nonce, which a logout token must not',
  no_subject: 'it names neither a subject (sub) nor a session (sid)'
} as const
export type JwtReason = keyof typeof JWT_REASONS

export const NONCE_REASONS = {
  missing: 'the id_token carries none',
  mismatch: 'the id_token carries another login\'s'
} as const
export type NonceReason = keyof typeof NONCE_REASONS

export const CALLBACK_ISSUER_REASONS = {
  missing: 'the provider advertises the iss parameter and the callback carries none',
  mismatch: 'the callback\'s iss is not the configured issuer (a mix-up attack or a misconfigured issuer)'
} as const
export type CallbackIssuerReason = keyof typeof CALLBACK_ISSUER_REASONS

/** Why a provider answer (JWKS, UserInfo) could not be used. */
export const FETCH_REASONS = {
  unreachable: 'the provider could not be reached',
  timeout: 'the provider did not answer in time',
  http_status: 'the provider answered with an HTTP status other than 200',
  too_large: 'the answer is larger than allowed',
  not_json: 'the answer is not JSON',
  invalid: 'the answer does not have the required shape',
  backoff: 'a fetch failed moments ago; the next one waits for the backoff to pass'
} as const
export type FetchReason = keyof typeof FETCH_REASONS

export type BindingReason = 'iss' | 'sub' | 'aud' | 'azp'

/** A coded error with its reason word. */
export type OidcError<R extends string = string> = Error & { code: string, statusCode: number, reason: R }

function withReason<R extends string> (err: Error, reason: R): OidcError<R> {
  return Object.assign(err, { reason }) as OidcError<R>
}

export const refuse = {
  idToken: (reason: JwtReason) => withReason(new errors.FSS_ID_TOKEN_INVALID(JWT_REASONS[reason]), reason),
  logoutToken: (reason: JwtReason) => withReason(new errors.FSS_LOGOUT_TOKEN_INVALID(JWT_REASONS[reason]), reason),
  nonce: (reason: NonceReason) => withReason(new errors.FSS_ID_TOKEN_NONCE_INVALID(NONCE_REASONS[reason]), reason),
  callbackIssuer: (reason: CallbackIssuerReason) => withReason(new errors.FSS_OAUTH_ISSUER_INVALID(CALLBACK_ISSUER_REASONS[reason]), reason),
  jwks: (reason: FetchReason) => withReason(new errors.FSS_JWKS_UNAVAILABLE(FETCH_REASONS[reason]), reason),
  userinfo: (reason: FetchReason) => withReason(new errors.FSS_USERINFO_FAILED(FETCH_REASONS[reason]), reason),
  binding: (reason: BindingReason) => withReason(new errors.FSS_ID_TOKEN_SUBJECT_CHANGED(reason === 'azp' ? 'authorized party (azp)' : reason), reason)
}

/** True for an error this suite coded (FSS_*). */
export function isCoded (err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && typeof code === 'string' && code.startsWith('FSS_')
}
