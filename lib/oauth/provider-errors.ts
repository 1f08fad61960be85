// Token-endpoint failures, as thrown by simple-oauth2's HTTP client (@hapi/wreck
// Boom errors), become one of four coded errors. The original error is never
// kept as a `cause`: pino would serialise it, and Boom's `data` carries the
// response object and body.
import { errors, FssError } from '../errors.ts'

export type FailureKind = 'rejected' | 'provider' | 'timeout' | 'invalid'

interface BoomLike {
  isBoom: true
  output: { statusCode: number }
  data?: { isResponseError?: boolean, payload?: unknown, res?: { statusCode?: number } } | null
}

function isBoom (err: unknown): err is BoomLike {
  return typeof err === 'object' && err !== null && (err as { isBoom?: unknown }).isBoom === true
}

// RFC 6749 §5.2: `error` is a short ASCII code such as invalid_client. Anything
// else (a long or odd string) is not repeated in our messages.
function errorCode (payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return undefined
  const value = (payload as { error?: unknown }).error
  return typeof value === 'string' && /^[a-z0-9_.-]{1,64}$/i.test(value) ? value : undefined
}

/**
 * Map a failed token-endpoint call to a coded error.
 * `grant` says what was exchanged: an invalid_grant on a refresh means "log in
 * again" (401); on an authorization code it means "start the login again" (400).
 */
export function classifyTokenEndpointError (err: unknown, grant: 'refresh_token' | 'authorization_code'): FssError {
  if (err instanceof FssError) return err
  if (!isBoom(err)) {
    // simple-oauth2 builds its AccessToken from the parsed body: a null or
    // primitive JSON body (`null`, `"x"`, `5`) fails there, not in Wreck.
    return new errors.FSS_TOKEN_INVALID('the token endpoint answered an unusable body')
  }
  const boomStatus = err.output.statusCode
  // 504: no response headers within `timeout`; 408: the body stalled.
  if (boomStatus === 504 || boomStatus === 408) return new errors.FSS_TOKEN_PROVIDER_TIMEOUT()
  const httpStatus = err.data?.res?.statusCode
  if (httpStatus === undefined) return new errors.FSS_TOKEN_PROVIDER_ERROR('the token endpoint could not be reached')
  if (httpStatus >= 500) return new errors.FSS_TOKEN_PROVIDER_ERROR(`the token endpoint answered HTTP ${httpStatus}`)
  if (err.data?.isResponseError === true) {
    const code = errorCode(err.data.payload)
    if (code === 'invalid_grant') {
      return grant === 'refresh_token' ? new errors.FSS_TOKEN_REFRESH_REJECTED() : new errors.FSS_OAUTH_CODE_REJECTED()
    }
    // invalid_client, invalid_request, unauthorized_client…: our configuration, not the user's fault.
    return new errors.FSS_TOKEN_PROVIDER_ERROR(`the token endpoint answered HTTP ${httpStatus}${code === undefined ? '' : ` ${code}`}`)
  }
  // A 2xx/3xx whose body Wreck refused: 406 = not a JSON content type, otherwise unparsable JSON.
  return new errors.FSS_TOKEN_INVALID(boomStatus === 406 ? 'the token endpoint answered non-JSON' : 'the token endpoint answered malformed JSON')
}

/**
 * True when the token endpoint answered 2xx with a JSON content type whose
 * body did not parse (truncated, or a `__proto__` member, which Wreck refuses):
 * the provider reported success, so it has processed the grant, and a rotated
 * refresh token is used up there although its replacement never arrived. A 2xx
 * that is not JSON at all (Wreck's 406) may be a proxy's page that never
 * reached the provider, and is not counted.
 */
export function answeredSuccess (err: unknown): boolean {
  if (!isBoom(err) || err.output.statusCode === 406) return false
  const status = err.data?.res?.statusCode
  return status !== undefined && status >= 200 && status < 300
}

/**
 * RFC 7009 §2.2: a revocation answers 200 with no body. simple-oauth2 asks
 * Wreck for strict JSON, so an empty 2xx answer arrives as a 406 error.
 */
export function isEmptySuccess (err: unknown): boolean {
  if (!isBoom(err)) return false
  const status = err.data?.res?.statusCode
  return err.output.statusCode === 406 && status !== undefined && status >= 200 && status < 300
}

/** The refresh failures a caller can be told again by their code alone: within the backoff window, or from another instance. */
export const REFRESH_FAILURE_CODES: ReadonlySet<string> = new Set(['FSS_TOKEN_REFRESH_REJECTED', 'FSS_TOKEN_PROVIDER_TIMEOUT', 'FSS_TOKEN_PROVIDER_ERROR', 'FSS_TOKEN_INVALID'])

/**
 * A new error for a refresh failure known by its code only; `why` says why no
 * call was made (`retrying after the backoff window`, `on another instance`).
 * A new instance per caller: one error object shared across requests would
 * share its stack and any property a handler adds to it. Any code other than
 * REFRESH_FAILURE_CODES' is a provider error.
 */
export function refreshFailure (code: string, why: string): FssError {
  switch (code) {
    case 'FSS_TOKEN_REFRESH_REJECTED': return new errors.FSS_TOKEN_REFRESH_REJECTED()
    case 'FSS_TOKEN_PROVIDER_TIMEOUT': return new errors.FSS_TOKEN_PROVIDER_TIMEOUT()
    case 'FSS_TOKEN_INVALID': return new errors.FSS_TOKEN_INVALID(`the refresh answer was unusable (${why})`)
    default: return new errors.FSS_TOKEN_PROVIDER_ERROR(`the refresh failed (${why})`)
  }
}

/** The FSS_* code of an error, or 'unknown' for anything else (for counters). */
export function codeOf (err: unknown): string {
  return err instanceof FssError ? err.code : 'unknown'
}

/** The counter bucket of a coded error. */
export function failureKind (code: string): FailureKind {
  if (code === 'FSS_TOKEN_REFRESH_REJECTED' || code === 'FSS_OAUTH_CODE_REJECTED') return 'rejected'
  if (code === 'FSS_TOKEN_PROVIDER_TIMEOUT') return 'timeout'
  if (code === 'FSS_TOKEN_INVALID') return 'invalid'
  return 'provider'
}
