// OAuth options: one TypeBox schema, checked once at registration through
// validateOptions, and the mapping from them to @fastify/oauth2's options.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'
import { displayUrl } from '../display-url.ts'
import { isTokenStore, type TokenStore } from './store.ts'
import type { RefreshLock } from './refresh.ts'
import type { FastifyRequest } from 'fastify'
import { MAX_TOKEN_LIFETIME, type TokenMetadata } from './token.ts'

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
  providerLogout: 'get'
} as const

const HttpUrl = (description: string) => Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s]*$', description })
const RoutePath = (description: string, path: string) => Type.String({ pattern: '^/[^\\s?#]*$', description, default: path })

const ProviderSchema = Type.Union([
  // OIDC discovery: @fastify/oauth2 reads <issuer>/.well-known/openid-configuration at registration.
  Type.Object({ issuer: HttpUrl('The issuer: endpoints are read from `<issuer>/.well-known/openid-configuration` at start-up.') }, { additionalProperties: false }),
  Type.Object({
    authorizeUrl: HttpUrl('The authorization endpoint.'),
    tokenUrl: HttpUrl('The token endpoint.'),
    revokeUrl: Type.Optional(HttpUrl('The revocation endpoint (RFC 7009); needed by `revokeOnLogout`.'))
  }, { additionalProperties: false })
], { description: '`{ issuer }` for OIDC discovery, or `{ authorizeUrl, tokenUrl, revokeUrl? }`.' })
const ClientId = Type.String({ minLength: 1, description: 'The client ID registered at the provider.' })
// May be empty for a public client (PKCE only).
const ClientSecret = Type.String({ description: 'The client secret, sent with HTTP Basic auth; `\'\'` for a public client (PKCE only).' })
const Scope = Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), { description: 'The scopes requested.', default: OAUTH_DEFAULTS.scope })
const OidcSettings = Type.Object({}, { additionalProperties: true, description: 'OpenID Connect settings (docs/identity.md: clock tolerance, algorithms, profile claims, JWKS timing). Issuer, client id and timeout come from the options above; with explicit endpoints, `oidc.issuer` + `oidc.jwksUri` make the provider OpenID Connect.' })
const Userinfo = Type.Boolean({ description: 'OpenID Connect: also fetch UserInfo at login; its sub must equal the id_token\'s.', default: false })
// GET by default: a top-level navigation carries the provider's SameSite=Lax
// session cookie, a cross-site form POST does not, so a provider that finds its
// session by cookie (oidc-provider 9, for one, which also takes POST only when
// configured to) could not end it; openid-client's end-session URL is a GET too.
const ProviderLogout = Type.Union([Type.Literal('post'), Type.Literal('get'), Type.Literal(false)], { description: 'RP-initiated logout at an end_session_endpoint: `get` (a 303 to it; the id_token hint is in that URL), `post` (an auto-submitting form, keeping the hint out of URLs, for providers that accept POST and find their session without a SameSite=Lax cookie), or `false` (local logout only).', default: 'get' })
// RFC 6749 §2.3.1 / OpenID Connect Core §9: Basic is what a provider must
// accept when it advertises nothing; some register clients for POST only. A
// public client (empty secret) always sends its client_id in the body instead.
const ClientAuthMethod = Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], { description: 'How the client authenticates at the token and revocation endpoints: `client_secret_basic` (HTTP Basic) or `client_secret_post` (in the form body). Default: Basic, unless discovery advertises `client_secret_post` and not Basic. A public client (`clientSecret: \'\'`) sends only its `client_id`, in the body.' })
const MapIdentityOption = Type.Unsafe<MapIdentity>(Type.Any({ tsType: 'MapIdentity', description: 'Plain OAuth 2 providers only: `async ({ accessToken, signal }) => ({ sub, iss, claims? } | null)`, kept as `request.identity` (claims allow-listed and bounded).' }))

/** Settings a provider of `oauth.providers` may give for itself, or the single-provider options once for all. */
const PER_PROVIDER = {
  oidc: Type.Optional(OidcSettings),
  userinfo: Type.Optional(Userinfo),
  providerLogout: Type.Optional(ProviderLogout),
  clientAuthMethod: Type.Optional(ClientAuthMethod),
  mapIdentity: Type.Optional(MapIdentityOption)
}

/** A provider name: in routes (`/login/<name>`), cookie and session field names. */
export const PROVIDER_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,31}$'

/** One provider of `oauth.providers`: its endpoints, client and the settings that differ between providers. */
export const ProviderOptionsSchema = Type.Object({
  provider: ProviderSchema,
  clientId: ClientId,
  clientSecret: ClientSecret,
  scope: Type.Optional(Scope),
  ...PER_PROVIDER
}, { additionalProperties: false })

export type ProviderOptions = Static<typeof ProviderOptionsSchema>

/** What `onLogin` is told after a successful callback: never a token value. */
export interface LoginEvent {
  /** the provider whose flow completed */
  provider: string
  /** who logged in (the login provider's identity; unchanged by a connect), or null */
  identity: { sub: string, iss: string, claims: Record<string, unknown> } | null
  /** this provider's new token, described without any value */
  tokenMetadata: TokenMetadata
  /** false for a login, true when a logged-in user connected another provider */
  connect: boolean
}

export type OnLogin = (request: FastifyRequest, event: LoginEvent) => Promise<void> | void

export const OAuthOptionsSchema = Type.Object({
  provider: Type.Optional(ProviderSchema),
  clientId: Type.Optional(ClientId),
  clientSecret: Type.Optional(ClientSecret),
  providers: Type.Optional(Type.Record(Type.String({ pattern: PROVIDER_NAME_PATTERN }), ProviderOptionsSchema, {
    // A name out of the pattern is refused, not ignored.
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 16,
    description: 'Several providers by name (`^[a-z0-9][a-z0-9_-]{0,31}$`), each `{ provider, clientId, clientSecret, scope?, oidc?, userinfo?, providerLogout?, clientAuthMethod?, mapIdentity? }`; instead of `provider`, `clientId` and `clientSecret`. Each is started at `<loginPath>/<name>` and answered at `<callbackPath>/<name>` (`<callbackUri>/<name>` at the provider).'
  })),
  defaultProvider: Type.Optional(Type.String({ pattern: PROVIDER_NAME_PATTERN, description: 'With `providers`: the one `GET <loginPath>` starts and `request.tokens` serves. Default: the first.' })),
  onLogin: Type.Optional(Type.Unsafe<OnLogin>(Type.Any({ tsType: 'OnLogin', description: '`async (request, { provider, identity, tokenMetadata, connect }) => void`: awaited after a successful callback, before the redirect. If it throws, the login fails with FSS_OAUTH_LOGIN_HOOK_FAILED and nothing is stored.' }))),
  scope: Type.Optional(Scope),
  // RFC 6749 §3.1.2: a redirection endpoint URI has no fragment.
  callbackUri: Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s#]*$', description: 'The absolute URL of the callback route as the provider redirects to it, registered at the provider (no `#fragment`, RFC 6749 §3.1.2).' }),
  loginPath: Type.Optional(RoutePath('Path of the route that starts a login.', OAUTH_DEFAULTS.loginPath)),
  callbackPath: Type.Optional(RoutePath('Path of the callback route.', OAUTH_DEFAULTS.callbackPath)),
  logoutPath: Type.Optional(RoutePath('Path of the logout route (POST).', OAUTH_DEFAULTS.logoutPath)),
  // A local path only: `//evil.example` or `/\evil` would be an open redirect.
  redirectAfterLogin: Type.Optional(LocalRedirectPath('Where a login lands: a local path in visible ASCII (`//host` and `/\\host` are refused; percent-encode anything else).', { default: OAUTH_DEFAULTS.redirectAfterLogin })),
  /** seconds @default 60 */
  refreshSkew: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds before expiry at which a refresh starts (0 to 3600; at most half the token\'s announced lifetime).', default: OAUTH_DEFAULTS.refreshSkew })),
  /** seconds @default 3600 */
  // At most the longest lifetime a stored token may have: a longer assumed
  // expiry would be stored, then refused on every read (isStoredToken).
  assumedLifetime: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKEN_LIFETIME, description: 'Seconds a token is taken to live when it states no expiry (1 to 31622400: 366 days, the longest lifetime a token may have).', default: OAUTH_DEFAULTS.assumedLifetime })),
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
  // mapIdentity is a function (checked below): a plain OAuth 2 provider's identity, mapped by the service.
  ...PER_PROVIDER
}, { additionalProperties: false })

export type OAuthOptions = Static<typeof OAuthOptionsSchema>

type Shared = 'tokenBackup' | 'store' | 'refreshLock' | 'oidc' | 'mapIdentity' | 'clientAuthMethod'
export type ResolvedOAuthOptions = Required<Omit<OAuthOptions, Shared | 'providers' | 'defaultProvider' | 'onLogin'>> & Pick<OAuthOptions, Shared>

/** One provider's options, the shared ones merged in: `name` is `default` for the single-provider options. */
export type ResolvedProvider = ResolvedOAuthOptions & {
  name: string
  /** where its option errors point */
  path: string
  /** the callback path as configured (with several providers, each answers under it at `/<name>`) */
  callbackBase: string
}

export interface ResolvedOAuthProviders {
  /** in the order given; the first is the default unless `defaultProvider` names another */
  providers: ResolvedProvider[]
  defaultProvider: string
  onLogin: OnLogin | undefined
}

/** The provider name of the single-provider options (`provider`, `clientId`, `clientSecret`). */
export const DEFAULT_PROVIDER_NAME = 'default'

/**
 * Validate (FSS_OPTIONS_INVALID naming `oauth.<path>`) and apply defaults, once: either the
 * single-provider options, as provider `default`, or `providers` by name.
 */
export function resolveOAuthProviders (value: unknown): ResolvedOAuthProviders {
  const { providers, defaultProvider, onLogin, ...opts } = validateOptions(OAuthOptionsSchema, value, 'oauth')
  if (opts.store !== undefined && !isTokenStore(opts.store)) {
    throw new errors.FSS_OPTIONS_INVALID('oauth.store', 'Expected an object with get, set and delete functions')
  }
  if (opts.refreshLock !== undefined && !isRefreshLock(opts.refreshLock)) {
    throw new errors.FSS_OPTIONS_INVALID('oauth.refreshLock', 'Expected an object with a refresh function (and, if any, an outlive function)')
  }
  if (onLogin !== undefined && typeof onLogin !== 'function') throw new errors.FSS_OPTIONS_INVALID('oauth.onLogin', 'Expected a function')
  if (providers === undefined) {
    if (defaultProvider !== undefined) throw new errors.FSS_OPTIONS_INVALID('oauth.defaultProvider', 'names one of oauth.providers, which is not given')
    return { providers: [resolveProvider(DEFAULT_PROVIDER_NAME, opts, 'oauth')], defaultProvider: DEFAULT_PROVIDER_NAME, onLogin }
  }
  for (const name of ['provider', 'clientId', 'clientSecret'] as const) {
    if (opts[name] !== undefined) throw new errors.FSS_OPTIONS_INVALID(`oauth.${name}`, 'with oauth.providers, give it in each provider')
  }
  const names = Object.keys(providers)
  const chosen = defaultProvider ?? names[0] as string
  if (!names.includes(chosen)) throw new errors.FSS_OPTIONS_INVALID('oauth.defaultProvider', 'names no provider of oauth.providers')
  const callbackPath = opts.callbackPath ?? OAUTH_DEFAULTS.callbackPath
  const resolved = names.map((name) => resolveProvider(name, {
    ...opts,
    ...providers[name],
    // One redirect URI per provider (RFC 9700 §4.4.2.2): a code is only ever sent to its own provider's path.
    callbackUri: `${opts.callbackUri.replace(/\/$/, '')}/${name}`,
    callbackPath: `${callbackPath.replace(/\/$/, '')}/${name}`
  }, `oauth.providers.${name}`, callbackPath))
  return { providers: resolved, defaultProvider: chosen, onLogin }
}

/** The single-provider options, validated and with defaults (`resolveOAuthProviders` for several). */
export function resolveOAuthOptions (value: unknown): ResolvedProvider {
  return resolveOAuthProviders(value).providers[0] as ResolvedProvider
}

function resolveProvider (name: string, opts: Omit<OAuthOptions, 'providers' | 'defaultProvider' | 'onLogin'>, path: string, callbackBase = opts.callbackPath ?? OAUTH_DEFAULTS.callbackPath): ResolvedProvider {
  for (const field of ['provider', 'clientId', 'clientSecret'] as const) {
    if (opts[field] === undefined) throw new errors.FSS_OPTIONS_INVALID(`oauth.${field}`, 'required (or oauth.providers)')
  }
  const provider = opts.provider as NonNullable<OAuthOptions['provider']>
  // simple-oauth2 would otherwise revoke at its default `/oauth/revoke` on the token host.
  if (opts.revokeOnLogout === true && !('issuer' in provider) && provider.revokeUrl === undefined) {
    throw new errors.FSS_OPTIONS_INVALID(`${path}.provider.revokeUrl`, 'required when revokeOnLogout is true')
  }
  if (opts.mapIdentity !== undefined && typeof opts.mapIdentity !== 'function') {
    throw new errors.FSS_OPTIONS_INVALID(`${path}.mapIdentity`, 'Expected a function')
  }
  return { ...OAUTH_DEFAULTS, ...opts as ResolvedOAuthOptions, scope: opts.scope ?? [...OAUTH_DEFAULTS.scope], name, path, callbackBase }
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

/**
 * How the client authenticates at the token endpoint: a public client sends
 * its client_id in the body (RFC 6749 §2.3.1: no Basic header without a
 * secret); otherwise the configured method, else Basic unless the provider
 * advertises only `client_secret_post` of the two (RFC 8414 §2: absent means Basic).
 */
export function clientAuthMethod (opts: Pick<ResolvedOAuthOptions, 'clientSecret' | 'clientAuthMethod'>, advertised?: readonly string[]): 'none' | 'client_secret_basic' | 'client_secret_post' {
  if (opts.clientSecret === '') return 'none'
  if (opts.clientAuthMethod !== undefined) return opts.clientAuthMethod
  return advertised !== undefined && !advertised.includes('client_secret_basic') && advertised.includes('client_secret_post') ? 'client_secret_post' : 'client_secret_basic'
}

/** The @fastify/oauth2 options for our flow (routes are ours, so no startRedirectPath). */
export function fastifyOAuth2Options (opts: ResolvedOAuthOptions, name: string, p: ProviderEndpoints, advertisedAuthMethods?: readonly string[]) {
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
    credentials: {
      client: { id: opts.clientId, secret: opts.clientSecret },
      http: { timeout: opts.timeout },
      auth,
      // simple-oauth2's `body` sends client_id and client_secret as form fields.
      options: { authorizationMethod: clientAuthMethod(opts, advertisedAuthMethods) === 'client_secret_basic' ? 'header' as const : 'body' as const }
    },
    // Never `plain` (RFC 9700 §2.1.1), even when discovery would offer it.
    pkce: 'S256' as const,
    hostPrefixedCookies: opts.hostPrefixedCookies,
    cookie: { secure: true, httpOnly: true, sameSite: 'lax' as const, path: '/', maxAge: opts.stateMaxAge }
  }
}
