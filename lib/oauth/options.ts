// OAuth options: one TypeBox schema, checked once at registration through
// validateOptions, and the mapping from them to @fastify/oauth2's options.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'
import { isTokenStore, type TokenStore } from './store.ts'
import type { RefreshLock } from './refresh.ts'

export const OAUTH_DEFAULTS = {
  scope: ['openid'],
  loginPath: '/login',
  callbackPath: '/callback',
  logoutPath: '/logout',
  redirectAfterLogin: '/',
  refreshSkew: 60,
  assumedLifetime: 3600,
  refreshBackoff: 5,
  timeout: 10_000,
  stateMaxAge: 600,
  hostPrefixedCookies: true,
  revokeOnLogout: false
} as const

const HttpUrl = (description: string) => Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s]*$', description })
const RoutePath = (description: string, path: string) => Type.String({ pattern: '^/[^\\s?#]*$', description, default: path })

export const OAuthOptionsSchema = Type.Object({
  provider: Type.Union([
    // OIDC discovery: @fastify/oauth2 reads <issuer>/.well-known/openid-configuration at registration.
    Type.Object({ issuer: HttpUrl('The issuer: endpoints are read from `<issuer>/.well-known/openid-configuration` at start-up.') }, { additionalProperties: false }),
    Type.Object({
      authorizeUrl: HttpUrl('The authorization endpoint.'),
      tokenUrl: HttpUrl('The token endpoint.'),
      revokeUrl: Type.Optional(HttpUrl('The revocation endpoint (RFC 7009); needed by `revokeOnLogout`.'))
    }, { additionalProperties: false })
  ], { description: '`{ issuer }` for OIDC discovery, or `{ authorizeUrl, tokenUrl, revokeUrl? }`.' }),
  clientId: Type.String({ minLength: 1, description: 'The client ID registered at the provider.' }),
  // May be empty for a public client (PKCE only).
  clientSecret: Type.String({ description: 'The client secret, sent with HTTP Basic auth; `\'\'` for a public client (PKCE only).' }),
  scope: Type.Optional(Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), { description: 'The scopes requested.', default: OAUTH_DEFAULTS.scope })),
  callbackUri: HttpUrl('The absolute URL of the callback route as the provider redirects to it, registered at the provider.'),
  loginPath: Type.Optional(RoutePath('Path of the route that starts a login.', OAUTH_DEFAULTS.loginPath)),
  callbackPath: Type.Optional(RoutePath('Path of the callback route.', OAUTH_DEFAULTS.callbackPath)),
  logoutPath: Type.Optional(RoutePath('Path of the logout route (POST).', OAUTH_DEFAULTS.logoutPath)),
  // A local path only: `//evil.example` or `/\evil` would be an open redirect.
  redirectAfterLogin: Type.Optional(Type.String({ pattern: '^/(?![/\\\\])[^\\s]*$', description: 'Where a login lands: a local path (`//host` and `/\\host` are refused).', default: OAUTH_DEFAULTS.redirectAfterLogin })),
  /** seconds @default 60 */
  refreshSkew: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds before expiry at which a refresh starts (0 to 3600; at most half the token\'s announced lifetime).', default: OAUTH_DEFAULTS.refreshSkew })),
  /** seconds @default 3600 */
  assumedLifetime: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds a token is taken to live when it states no expiry.', default: OAUTH_DEFAULTS.assumedLifetime })),
  /** seconds @default 5 */
  refreshBackoff: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds a failed refresh token is not sent again; callers get the same coded error.', default: OAUTH_DEFAULTS.refreshBackoff })),
  /** ms @default 10000 */
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 120_000, description: 'Milliseconds a token-endpoint call may take, headers and body (1 to 120000).', default: OAUTH_DEFAULTS.timeout })),
  /** seconds @default 600 */
  stateMaxAge: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600, description: 'Seconds the state and PKCE verifier cookies live (30 to 3600).', default: OAUTH_DEFAULTS.stateMaxAge })),
  hostPrefixedCookies: Type.Optional(Type.Boolean({ description: '`__Host-` names for the state and verifier cookies.', default: OAUTH_DEFAULTS.hostPrefixedCookies })),
  revokeOnLogout: Type.Optional(Type.Boolean({ description: 'Revoke the tokens at the provider on logout (explicit endpoints then need `revokeUrl`).', default: OAUTH_DEFAULTS.revokeOnLogout })),
  tokenBackup: Type.Optional(Type.Object({ file: Type.String({ minLength: 1, description: 'The backup file, written 0600 on every store and clear.' }) }, { additionalProperties: false, description: '`{ file }`: a development-only backup of token metadata (fingerprints, never values); refused under NODE_ENV=production.' })),
  // Checked by shape below (TypeBox cannot describe functions' signatures).
  store: Type.Optional(Type.Unsafe<TokenStore>(Type.Any({ tsType: 'TokenStore', description: 'Where tokens live: `{ get, set, delete }`, all async. Default: the encrypted session (`fss.oauth`).' }))),
  refreshLock: Type.Optional(Type.Unsafe<RefreshLock>(Type.Any({ tsType: 'RefreshLock', description: 'Cross-instance single-flight: `{ refresh(refreshToken, fn), outlive?(timeoutMs) }`, e.g. the Redis token store\'s `refreshLock`.' })))
}, { additionalProperties: false })

export type OAuthOptions = Static<typeof OAuthOptionsSchema>

export type ResolvedOAuthOptions = Required<Omit<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock'>> & Pick<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock'>

/** Validate (FSS_OPTIONS_INVALID naming `oauth.<path>`) and apply defaults, once. */
export function resolveOAuthOptions (value: unknown): ResolvedOAuthOptions {
  const opts = validateOptions(OAuthOptionsSchema, value, 'oauth')
  if (opts.store !== undefined && !isTokenStore(opts.store)) {
    throw new errors.FSS_OPTIONS_INVALID('oauth.store', 'Expected an object with get, set and delete functions')
  }
  // simple-oauth2 would otherwise revoke at its default `/oauth/revoke` on the token host.
  if (opts.revokeOnLogout === true && !('issuer' in opts.provider) && opts.provider.revokeUrl === undefined) {
    throw new errors.FSS_OPTIONS_INVALID('oauth.provider.revokeUrl', 'required when revokeOnLogout is true')
  }
  if (opts.refreshLock !== undefined && !isRefreshLock(opts.refreshLock)) {
    throw new errors.FSS_OPTIONS_INVALID('oauth.refreshLock', 'Expected an object with a refresh function (and, if any, an outlive function)')
  }
  return { ...OAUTH_DEFAULTS, scope: [...OAUTH_DEFAULTS.scope], ...opts }
}

function isRefreshLock (value: unknown): value is RefreshLock {
  const lock = value as { refresh?: unknown, outlive?: unknown } | null
  return typeof lock?.refresh === 'function' && (lock.outlive === undefined || typeof lock.outlive === 'function')
}

/** What oauthInfo shows about the provider: where it is, never a credential. */
export function describeProvider (opts: ResolvedOAuthOptions): { kind: 'discovery' | 'explicit', url: string } {
  const p = opts.provider
  return 'issuer' in p ? { kind: 'discovery', url: p.issuer } : { kind: 'explicit', url: new URL(p.tokenUrl).origin }
}

function split (url: string): { host: string, path: string } {
  const u = new URL(url)
  return { host: u.origin, path: u.pathname + u.search }
}

/** The @fastify/oauth2 options for our flow (routes are ours, so no startRedirectPath). */
export function fastifyOAuth2Options (opts: ResolvedOAuthOptions, name: string) {
  const p = opts.provider
  let auth
  if (!('issuer' in p)) {
    const token = split(p.tokenUrl)
    const authorize = split(p.authorizeUrl)
    // Wreck resolves an absolute path against nothing, so a revoke URL on
    // another host works as a full URL.
    auth = {
      tokenHost: token.host,
      tokenPath: token.path,
      authorizeHost: authorize.host,
      authorizePath: authorize.path,
      ...(p.revokeUrl === undefined ? {} : { revokePath: p.revokeUrl })
    }
  }
  return {
    name,
    scope: opts.scope,
    callbackUri: opts.callbackUri,
    // `timeout` is @hapi/wreck's: it bounds both the response headers (504)
    // and the body (408); simple-oauth2 passes `http` to Wreck.defaults.
    credentials: { client: { id: opts.clientId, secret: opts.clientSecret }, http: { timeout: opts.timeout }, ...(auth === undefined ? {} : { auth }) },
    ...('issuer' in p ? { discovery: { issuer: p.issuer } } : {}),
    // Never `plain` (RFC 9700 §2.1.1), even when discovery would offer it.
    pkce: 'S256' as const,
    hostPrefixedCookies: opts.hostPrefixedCookies,
    cookie: { secure: true, httpOnly: true, sameSite: 'lax' as const, path: '/', maxAge: opts.stateMaxAge }
  }
}
