// OAuth options: one TypeBox schema, checked once at registration through
// validateOptions, and the mapping from them to @fastify/oauth2's options.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'
import { isTokenStore, type TokenStore } from './store.ts'
import type { RefreshLock } from './refresh.ts'

const HttpUrl = Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s]*$' })
const RoutePath = Type.String({ pattern: '^/[^\\s?#]*$' })

export const OAuthOptionsSchema = Type.Object({
  provider: Type.Union([
    // OIDC discovery: @fastify/oauth2 reads <issuer>/.well-known/openid-configuration at registration.
    Type.Object({ issuer: HttpUrl }, { additionalProperties: false }),
    Type.Object({ authorizeUrl: HttpUrl, tokenUrl: HttpUrl, revokeUrl: Type.Optional(HttpUrl) }, { additionalProperties: false })
  ]),
  clientId: Type.String({ minLength: 1 }),
  // May be empty for a public client (PKCE only).
  clientSecret: Type.String(),
  scope: Type.Optional(Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }))),
  /** absolute URL of the callback route as the provider sees it (registered at the provider) */
  callbackUri: HttpUrl,
  loginPath: Type.Optional(RoutePath),
  callbackPath: Type.Optional(RoutePath),
  logoutPath: Type.Optional(RoutePath),
  // A local path only: `//evil.example` or `/\evil` would be an open redirect.
  redirectAfterLogin: Type.Optional(Type.String({ pattern: '^/(?![/\\\\])[^\\s]*$' })),
  refreshSkew: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  assumedLifetime: Type.Optional(Type.Integer({ minimum: 1 })),
  refreshBackoff: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 120_000 })),
  stateMaxAge: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600 })),
  hostPrefixedCookies: Type.Optional(Type.Boolean()),
  revokeOnLogout: Type.Optional(Type.Boolean()),
  tokenBackup: Type.Optional(Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
  // Checked by shape below (TypeBox cannot describe functions).
  store: Type.Optional(Type.Any()),
  refreshLock: Type.Optional(Type.Any()),
  /**
   * OpenID Connect settings (lib/oidc/options.ts: clock tolerance, algorithms, profile claims, JWKS
   * timing). With a discovery provider the issuer, client id and timeout come from the options above.
   * With explicit endpoints, `oidc.issuer` + `oidc.jwksUri` make the provider OpenID Connect.
   */
  oidc: Type.Optional(Type.Object({}, { additionalProperties: true })),
  /** OpenID Connect: also fetch UserInfo at login (its sub must equal the id_token's). @default false */
  userinfo: Type.Optional(Type.Boolean()),
  /**
   * RP-initiated logout when the provider has an end_session_endpoint: `post` (an auto-submitting
   * form: the id_token hint stays out of URLs), `get` (a redirect, for providers that accept GET
   * only), or `false` (local logout only). @default 'post'
   */
  providerLogout: Type.Optional(Type.Union([Type.Literal('post'), Type.Literal('get'), Type.Literal(false)])),
  // A function (checked below): a plain OAuth 2 provider's identity, mapped by the service.
  mapIdentity: Type.Optional(Type.Any())
}, { additionalProperties: false })

/** What `mapIdentity` gets at login from a plain OAuth 2 provider. */
export interface MapIdentityContext {
  /** the access token just received, e.g. for the provider's own profile API */
  accessToken: string
  /** aborts after the OAuth `timeout`: pass it to the fetch that reads the profile */
  signal: AbortSignal
}

/** `sub` (1–255 characters) and `iss` identify the user; `claims` are filtered by the profile allow-list. */
export interface MappedIdentity { sub: string, iss: string, claims?: Record<string, unknown> }

export type OAuthOptions = Omit<Static<typeof OAuthOptionsSchema>, 'store' | 'refreshLock' | 'mapIdentity'> & {
  /**
   * Plain OAuth 2 providers only (no id_token to verify): the service maps the user itself, for
   * example from the provider's profile API. Return null for "no identity". What it returns is
   * kept as `request.identity` (profile claims filtered and bounded like verified ones).
   */
  mapIdentity?: (context: MapIdentityContext) => Promise<MappedIdentity | null>
  /** where tokens live; default: the encrypted session (field `oauth`) */
  store?: TokenStore
  /** cross-instance single-flight, e.g. the Redis token store plugin's `refreshLock` */
  refreshLock?: RefreshLock
}

export type ResolvedOAuthOptions = Required<Omit<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock' | 'oidc' | 'mapIdentity'>> &
  Pick<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock' | 'oidc' | 'mapIdentity'>

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

/** Validate (FSS_OPTIONS_INVALID naming `oauth.<path>`) and apply defaults, once. */
export function resolveOAuthOptions (value: unknown): ResolvedOAuthOptions {
  const opts = validateOptions(OAuthOptionsSchema, value, 'oauth') as OAuthOptions
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
  return 'issuer' in p ? { kind: 'discovery', url: p.issuer } : { kind: 'explicit', url: new URL(p.tokenUrl).origin }
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
