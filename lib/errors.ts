// The one codes map. Every error the suite throws or answers with has a stable
// `FSS_*` code: tests and callers match the code, never the text. Messages may
// name a variable, a file, an option or a size, and never a key, token, code,
// state, verifier or cookie value.
import originalCreateError from '@fastify/error'

// Set on the prototype of every class below: what `instanceof FssError` looks for.
const kFssError = Symbol('fastify-session-suite.error')

/**
 * The base of every error in `errors`: `err instanceof FssError` tells the suite's
 * errors from any other (then `err.code` is one of the `FSS_*` codes). Option
 * errors are also `TypeError`s, as Fastify core's own option errors are, and a
 * class has one parent: the check is on a mark every class below carries.
 */
export class FssError extends Error {
  /** one of the `FSS_*` codes (ErrorCode) */
  declare readonly code: string
  declare readonly statusCode: number

  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [kFssError]?: unknown })[kFssError] === true
  }
}

/** A class of `errors`: called with or without `new`, as @fastify/error's are. */
export interface FssErrorConstructor<Arg extends unknown[]> {
  new (...args: Arg): FssError
  (...args: Arg): FssError
  readonly prototype: FssError
}

/** @fastify/error's createError, for a class that is an FssError whatever its `Base`. */
function createError<Arg extends unknown[] = []> (code: string, message: string, statusCode: number, Base = FssError as unknown as ErrorConstructor): FssErrorConstructor<Arg> {
  const Ctor = originalCreateError<Arg>(code, message, statusCode, Base)
  Object.defineProperty(Ctor.prototype, kFssError, { value: true })
  return Ctor as unknown as FssErrorConstructor<Arg>
}

export const errors = {
  // ── options (every plugin) ─────────────────────────────────────────────
  FSS_OPTIONS_INVALID: createError<[string, string]>('FSS_OPTIONS_INVALID', 'Invalid option %s: %s', 500, TypeError),

  // ── secret keyring ──────────────────────────────────────────────────────
  FSS_SECRET_WEAK: createError<[string]>('FSS_SECRET_WEAK', 'Secret from %s has under 32 bytes of key material; generate one with `npx fastify-session-suite keygen`', 500),
  FSS_SECRET_MALFORMED: createError<[string, string]>('FSS_SECRET_MALFORMED', 'Secret from %s cannot be decoded: %s', 500),
  FSS_KEY_FILE_UNSAFE: createError<[string, string, string]>('FSS_KEY_FILE_UNSAFE', 'Key file %s is unsafe: %s. Fix: %s', 500),
  FSS_KEY_FILE_CORRUPT: createError<[string, string, string]>('FSS_KEY_FILE_CORRUPT', 'Key file %s is corrupt: %s. Fix: %s', 500),
  FSS_KEY_FILE_IO: createError<[string, string]>('FSS_KEY_FILE_IO', 'Key file %s could not be used: %s', 500),
  FSS_KEYRING_TOO_LARGE: createError<[string, number, number]>('FSS_KEYRING_TOO_LARGE', 'The keyring from %s holds %d keys, more than %d: remove the oldest (the last lines, or entries of X_PREVIOUS)', 500),

  // ── session ─────────────────────────────────────────────────────────────
  FSS_SESSION_NO_KEY: createError('FSS_SESSION_NO_KEY', 'The session plugin has no key: register the secret-keys plugin first or pass `key`', 500),
  FSS_SESSION_TOO_LARGE: createError<[number, number]>('FSS_SESSION_TOO_LARGE', 'The session needs %d bytes of cookies, over the limit of %d: keep OAuth tokens in Redis (the `redis` option) instead of the cookie', 500),
  FSS_SESSION_KEY_RESERVED: createError<[string]>('FSS_SESSION_KEY_RESERVED', 'Session field %s is reserved: the session plugin\'s own fields and __proto__, constructor, prototype cannot be set', 500),

  // ── OAuth tokens ────────────────────────────────────────────────────────
  FSS_TOKEN_INVALID: createError<[string]>('FSS_TOKEN_INVALID', 'Token rejected: %s', 502),
  FSS_TOKEN_MISSING: createError('FSS_TOKEN_MISSING', 'No OAuth token in this session: log in', 401),
  FSS_TOKEN_REFRESH_REJECTED: createError('FSS_TOKEN_REFRESH_REJECTED', 'The provider rejected the refresh token: log in again', 401),
  FSS_TOKEN_PROVIDER_ERROR: createError<[string]>('FSS_TOKEN_PROVIDER_ERROR', 'The OAuth provider failed: %s', 502),
  FSS_TOKEN_PROVIDER_TIMEOUT: createError('FSS_TOKEN_PROVIDER_TIMEOUT', 'The OAuth provider did not answer in time', 504),
  FSS_OAUTH_DENIED: createError<[string]>('FSS_OAUTH_DENIED', 'The provider refused the authorization: %s', 400),
  FSS_OAUTH_STATE_INVALID: createError<[string]>('FSS_OAUTH_STATE_INVALID', 'OAuth state check failed: %s', 400),
  FSS_OAUTH_CODE_MISSING: createError('FSS_OAUTH_CODE_MISSING', 'The callback carries no authorization code', 400),
  FSS_TOKEN_BACKUP_IN_PRODUCTION: createError('FSS_TOKEN_BACKUP_IN_PRODUCTION', 'The token backup is for development only and is refused when NODE_ENV=production', 500),
  FSS_TOKEN_EXPIRED: createError('FSS_TOKEN_EXPIRED', 'The access token expired and there is no refresh token: log in again', 401),
  FSS_OAUTH_CODE_REJECTED: createError('FSS_OAUTH_CODE_REJECTED', 'The provider rejected the authorization code (invalid_grant): start the login again', 400),
  FSS_OAUTH_CALLBACK_INVALID: createError<[string]>('FSS_OAUTH_CALLBACK_INVALID', 'The callback query is malformed: %s', 400),
  // The name is not echoed: it comes from the URL.
  FSS_OAUTH_PROVIDER_UNKNOWN: createError('FSS_OAUTH_PROVIDER_UNKNOWN', 'No OAuth provider of that name is configured', 404),
  FSS_OAUTH_PROVIDER_MISMATCH: createError('FSS_OAUTH_PROVIDER_MISMATCH', 'This login was started for another provider than the one answering it (mix-up): start the login again', 400),
  FSS_OAUTH_LOGIN_HOOK_FAILED: createError('FSS_OAUTH_LOGIN_HOOK_FAILED', 'The login was refused by the service (onLogin failed): nothing was stored', 500),
  FSS_OAUTH_DISCONNECT_LOGIN: createError('FSS_OAUTH_DISCONNECT_LOGIN', 'This provider is the one the user logged in with: log out instead of disconnecting it', 409),

  // ── OpenID Connect (verified identity) ──────────────────────────────────
  // Every one of these carries a `reason` (a fixed word, see lib/oidc/reasons.ts)
  // so a caller or a test can tell failures apart without reading the text.
  FSS_OIDC_DISCOVERY_FAILED: createError<[string, string, string]>('FSS_OIDC_DISCOVERY_FAILED', 'OpenID Connect discovery at %s failed: %s. Fix: %s', 502),
  FSS_OIDC_DISCOVERY_TIMEOUT: createError<[string, number]>('FSS_OIDC_DISCOVERY_TIMEOUT', 'OpenID Connect discovery at %s did not answer within %d ms. Fix: check that this host can reach the provider, or raise the timeout', 504),
  FSS_OIDC_ISSUER_MISMATCH: createError<[string, string, string]>('FSS_OIDC_ISSUER_MISMATCH', 'The discovery document at %s names the issuer %s, not the configured %s. Fix: set the issuer to exactly the provider\'s issuer identifier (scheme, host, path, trailing slash)', 502),
  FSS_JWKS_UNAVAILABLE: createError<[string]>('FSS_JWKS_UNAVAILABLE', 'The provider\'s signing keys (JWKS) could not be used: %s', 502),
  FSS_ID_TOKEN_INVALID: createError<[string]>('FSS_ID_TOKEN_INVALID', 'The id_token was refused: %s', 502),
  FSS_ID_TOKEN_NONCE_INVALID: createError<[string]>('FSS_ID_TOKEN_NONCE_INVALID', 'The id_token does not belong to this login (nonce: %s): start the login again', 400),
  FSS_OAUTH_ISSUER_INVALID: createError<[string]>('FSS_OAUTH_ISSUER_INVALID', 'The authorization response failed the RFC 9207 issuer check: %s', 400),
  FSS_ID_TOKEN_SUBJECT_CHANGED: createError<[string]>('FSS_ID_TOKEN_SUBJECT_CHANGED', 'The refreshed id_token names another %s than the login\'s: log in again', 401),
  FSS_USERINFO_FAILED: createError<[string]>('FSS_USERINFO_FAILED', 'The UserInfo endpoint failed: %s', 502),
  FSS_USERINFO_SUBJECT_MISMATCH: createError('FSS_USERINFO_SUBJECT_MISMATCH', 'The UserInfo answer names another subject than the id_token', 502),
  FSS_LOGOUT_TOKEN_INVALID: createError<[string]>('FSS_LOGOUT_TOKEN_INVALID', 'The logout_token was refused: %s', 400),

  // ── routes ──────────────────────────────────────────────────────────────
  FSS_DEBUG_IN_PRODUCTION: createError('FSS_DEBUG_IN_PRODUCTION', 'Debug routes are refused when NODE_ENV=production; set debug.force to override', 500),
  FSS_DEBUG_FORBIDDEN: createError('FSS_DEBUG_FORBIDDEN', 'Debug routes answer loopback clients only, on a loopback host name (or those in debug.allow and debug.hosts)', 403),
  FSS_HEALTH_CHECK_DUPLICATE: createError<[string]>('FSS_HEALTH_CHECK_DUPLICATE', 'A health check named %s is already registered', 500),

  // ── CSRF ────────────────────────────────────────────────────────────────
  FSS_CSRF_INVALID: createError('FSS_CSRF_INVALID', 'Missing or invalid CSRF token', 403),

  // ── Redis token store ───────────────────────────────────────────────────
  FSS_STORE_UNAVAILABLE: createError('FSS_STORE_UNAVAILABLE', 'The token store is unavailable', 503),
  FSS_REDIS_CLIENT_MISSING: createError<[string, string]>('FSS_REDIS_CLIENT_MISSING', 'The Redis token store needs the optional peer dependency %s, which could not be loaded: install it with `npm install %s`', 500),

  // ── session registry ────────────────────────────────────────────────────
  FSS_SESSION_ID_INVALID: createError('FSS_SESSION_ID_INVALID', 'The session id is malformed', 400),
  // 404, never 403, for another user's id too: ids cannot be probed.
  FSS_SESSION_NOT_FOUND: createError('FSS_SESSION_NOT_FOUND', 'No such session', 404),
  FSS_SESSION_RECORD_INVALID: createError<[string, string]>('FSS_SESSION_RECORD_INVALID', 'Session record field %s is invalid: %s', 500),
  FSS_SESSION_REQUIRED: createError('FSS_SESSION_REQUIRED', 'This needs a logged-in session: log in', 401)
} as const

export type ErrorCode = keyof typeof errors
