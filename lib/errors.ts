// The one codes map. Every error the suite throws or answers with has a stable
// `FSS_*` code: tests and callers match the code, never the text. Messages may
// name a variable, a file, an option or a size, and never a key, token, code,
// state, verifier or cookie value.
import createError from '@fastify/error'

export const errors = {
  // ── options (every plugin) ─────────────────────────────────────────────
  FSS_OPTIONS_INVALID: createError<[string, string]>('FSS_OPTIONS_INVALID', 'Invalid option %s: %s', 500),

  // ── secret keyring ──────────────────────────────────────────────────────
  FSS_SECRET_WEAK: createError<[string]>('FSS_SECRET_WEAK', 'Secret from %s has under 32 bytes of key material; generate one with `npx fastify-session-suite keygen`', 500),
  FSS_SECRET_MALFORMED: createError<[string, string]>('FSS_SECRET_MALFORMED', 'Secret from %s cannot be decoded: %s', 500),
  FSS_KEY_FILE_UNSAFE: createError<[string, string, string]>('FSS_KEY_FILE_UNSAFE', 'Key file %s is unsafe: %s. Fix: %s', 500),
  FSS_KEY_FILE_CORRUPT: createError<[string, string, string]>('FSS_KEY_FILE_CORRUPT', 'Key file %s is corrupt: %s. Fix: %s', 500),
  FSS_KEY_FILE_IO: createError<[string, string]>('FSS_KEY_FILE_IO', 'Key file %s could not be used: %s', 500),

  // ── session ─────────────────────────────────────────────────────────────
  FSS_SESSION_NO_KEY: createError('FSS_SESSION_NO_KEY', 'The session plugin has no key: register the secret-keys plugin first or pass `key`', 500),
  FSS_SESSION_TOO_LARGE: createError<[number, number]>('FSS_SESSION_TOO_LARGE', 'The session needs %d bytes of cookies, over the limit of %d', 500),
  FSS_SESSION_KEY_RESERVED: createError<[string]>('FSS_SESSION_KEY_RESERVED', 'Session field %s is reserved for the session plugin', 500),

  // ── OAuth tokens ────────────────────────────────────────────────────────
  FSS_TOKEN_INVALID: createError<[string]>('FSS_TOKEN_INVALID', 'Token rejected: %s', 502),
  FSS_TOKEN_MISSING: createError('FSS_TOKEN_MISSING', 'No OAuth token in this session: log in', 401),
  FSS_TOKEN_REFRESH_REJECTED: createError('FSS_TOKEN_REFRESH_REJECTED', 'The provider rejected the refresh token: log in again', 401),
  FSS_TOKEN_PROVIDER_ERROR: createError<[string]>('FSS_TOKEN_PROVIDER_ERROR', 'The OAuth provider failed: %s', 502),
  FSS_TOKEN_PROVIDER_TIMEOUT: createError('FSS_TOKEN_PROVIDER_TIMEOUT', 'The OAuth provider did not answer in time', 504),
  FSS_OAUTH_DENIED: createError<[string]>('FSS_OAUTH_DENIED', 'The provider refused the authorization: %s', 400),
  FSS_OAUTH_STATE_INVALID: createError<[string]>('FSS_OAUTH_STATE_INVALID', 'OAuth state check failed: %s', 400),
  FSS_OAUTH_CODE_MISSING: createError('FSS_OAUTH_CODE_MISSING', 'The callback carries no authorization code', 400),
  FSS_OAUTH_VERIFIER_MISSING: createError('FSS_OAUTH_VERIFIER_MISSING', 'The PKCE verifier cookie is missing: start the login again', 400),
  FSS_TOKEN_BACKUP_IN_PRODUCTION: createError('FSS_TOKEN_BACKUP_IN_PRODUCTION', 'The token backup is for development only and is refused when NODE_ENV=production', 500),
  FSS_TOKEN_EXPIRED: createError('FSS_TOKEN_EXPIRED', 'The access token expired and there is no refresh token: log in again', 401),
  FSS_OAUTH_CODE_REJECTED: createError('FSS_OAUTH_CODE_REJECTED', 'The provider rejected the authorization code (invalid_grant): start the login again', 400),
  FSS_OAUTH_CALLBACK_INVALID: createError<[string]>('FSS_OAUTH_CALLBACK_INVALID', 'The callback query is malformed: %s', 400),

  // ── routes ──────────────────────────────────────────────────────────────
  FSS_DEBUG_IN_PRODUCTION: createError('FSS_DEBUG_IN_PRODUCTION', 'Debug routes are refused when NODE_ENV=production; set debug.force to override', 500),
  FSS_DEBUG_FORBIDDEN: createError('FSS_DEBUG_FORBIDDEN', 'Debug routes answer loopback clients only', 403),
  FSS_HEALTH_CHECK_DUPLICATE: createError<[string]>('FSS_HEALTH_CHECK_DUPLICATE', 'A health check named %s is already registered', 500),

  // ── CSRF ────────────────────────────────────────────────────────────────
  FSS_CSRF_INVALID: createError('FSS_CSRF_INVALID', 'Missing or invalid CSRF token', 403),

  // ── Redis token store ───────────────────────────────────────────────────
  FSS_STORE_UNAVAILABLE: createError('FSS_STORE_UNAVAILABLE', 'The token store is unavailable', 503)
} as const

export type ErrorCode = keyof typeof errors
