// OAuth options: one TypeBox schema, checked once at registration through
// validateOptions, and the mapping from them to @fastify/oauth2's options.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'
import { displayUrl } from '../display-url.ts'
import { isTokenStore, type TokenStore } from './store.ts'
import type { RefreshLock } from './refresh.ts'

/**
 * A redirect target: a local path only (`//evil.example` or `/\\evil` would be
 * an open redirect), in visible ASCII, since it goes verbatim into a Location
 * header (Node refuses characters above U+00FF there, and browsers read Latin-1
 * bytes as UTF-8): percent-encode anything else.
 */
export const LocalRedirectPath = (description: string, extra: { default?: string } = {}) =>
  Type.String({ pattern: '^/(?![/\\\\])[\\x21-\\x7E]*$', maxLength: 2048, description, ...extra })

/** What `mapIdentity` gets at login from a plain OAuth 2 provider. */
export interface MapIdentityContext {
  /** the access token just received, e.g. for the provider's own profile API */
  accessToken: string
  /** aborts after the OAuth `timeout`: pass it to the fetch that reads the profile */
  signal: AbortSignal
}

/** `sub` (1–255 characters) and `iss` identify the user; `claims` are filtered by the profile allow-list. */
export interface MappedIdentity { sub: string, iss: string, claims?: Record<string, unknown> }

export type MapIdentity = (context: MapIdentityContext) => Promise<MappedIdentity | null>

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
  revokeOnLogout: false,
  userinfo: false,
  providerLogout: 'post'
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
  redirectAfterLogin: Type.Optional(LocalRedirectPath('Where a login lands: a local path in visible ASCII (`//host` and `/\\host` are refused; percent-encode anything else).', { default: OAUTH_DEFAULTS.redirectAfterLogin })),
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
  refreshLock: Type.Optional(Type.Unsafe<RefreshLock>(Type.Any({ tsType: 'RefreshLock', description: 'Cross-instance single-flight: `{ refresh(refreshToken, fn), outlive?(timeoutMs) }`, e.g. the Redis token store\'s `refreshLock`.' }))),
  oidc: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'OpenID Connect settings (docs/identity.md: clock tolerance, algorithms, profile claims, JWKS timing). Issuer, client id and timeout come from the options above; with explicit endpoints, `oidc.issuer` + `oidc.jwksUri` make the provider OpenID Connect.' })),
  userinfo: Type.Optional(Type.Boolean({ description: 'OpenID Connect: also fetch UserInfo at login; its sub must equal the id_token\'s.', default: false })),
  providerLogout: Type.Optional(Type.Union([Type.Literal('post'), Type.Literal('get'), Type.Literal(false)], { description: 'RP-initiated logout at an end_session_endpoint: `post` (an auto-submitting form: the id_token hint stays out of URLs), `get` (a redirect, for providers that accept GET only), or `false` (local logout only).', default: 'post' })),
  // A function (checked below): a plain OAuth 2 provider's identity, mapped by the service.
  mapIdentity: Type.Optional(Type.Unsafe<MapIdentity>(Type.Any({ tsType: 'MapIdentity', description: 'Plain OAuth 2 providers only: `async ({ accessToken, signal }) => ({ sub, iss, claims? } | null)`, kept as `request.identity` (claims allow-listed and bounded).' })))
}, { additionalProperties: false })

export type OAuthOptions = Static<typeof OAuthOptionsSchema>

export type ResolvedOAuthOptions = Required<Omit<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock' | 'oidc' | 'mapIdentity'>> &
  Pick<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock' | 'oidc' | 'mapIdentity'>

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
  if (opts.mapIdentity !== undefined && typeof opts.mapIdentity !== 'function') {
    throw new errors.FSS_OPTIONS_INVALID('oauth.mapIdentity', 'Expected a function')
  }
  return { ...OAUTH_DEFAULTS, scope: [...OAUTH_DEFAULTS.scope], ...opts }
}

/** The checked endpoints @fastify/oauth2 is given for an OpenID Connect provider (never its own discovery). */
export interface ProviderEndpoints { authorizeUrl: string, tokenUrl: string, revokeUrl?: string }

function isRefreshLock (value: unknown): value is RefreshLock {
  const lock = value as { refresh?: unknown, outlive?: unknown } | null
  return typeof lock?.refresh === 'function' && (lock.outlive === undefined || typeof lock.outlive === 'function')
}

/** What oauthInfo shows about the provider: where it is, never a credential. */
export function describeProvider (opts: ResolvedOAuthOptions): { kind: 'discovery' | 'explicit', url: string } {
  const p = opts.provider
  // displayUrl: an issuer may carry userinfo or a query, and this is shown on the public /health.
  return 'issuer' in p ? { kind: 'discovery', url: displayUrl(p.issuer) } : { kind: 'explicit', url: new URL(p.tokenUrl).origin }
}

function split (url: string): { host: string, path: string } {
  const u = new URL(url)
  return { host: u.origin, path: u.pathname + u.search }
}

/** The @fastify/oauth2 options for our flow (routes are ours, so no startRedirectPath). */
export function fastifyOAuth2Options (opts: ResolvedOAuthOptions, name: string, p: ProviderEndpoints) {
  const token = split(p.tokenUrl)
  const authorize = split(p.authorizeUrl)
  // Wreck resolves an absolute path against nothing, so a revoke URL on
  // another host works as a full URL.
  const auth = {
    tokenHost: token.host,
    tokenPath: token.path,
    authorizeHost: authorize.host,
    authorizePath: authorize.path,
    ...(p.revokeUrl === undefined ? {} : { revokePath: p.revokeUrl })
  }
  return {
    name,
    scope: opts.scope,
    callbackUri: opts.callbackUri,
    // `timeout` is @hapi/wreck's: it bounds both the response headers (504)
    // and the body (408); simple-oauth2 passes `http` to Wreck.defaults.
    credentials: { client: { id: opts.clientId, secret: opts.clientSecret }, http: { timeout: opts.timeout }, auth },
    // Never `plain` (RFC 9700 §2.1.1), even when discovery would offer it.
    pkce: 'S256' as const,
    hostPrefixedCookies: opts.hostPrefixedCookies,
    cookie: { secure: true, httpOnly: true, sameSite: 'lax' as const, path: '/', maxAge: opts.stateMaxAge }
  }
}
