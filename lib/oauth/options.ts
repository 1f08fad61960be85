// OAuth options: one TypeBox schema, checked once at registration through
// validateOptions, and the mapping from them to @fastify/oauth2's options.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { errors } from '../errors.ts'
import { displayUrl } from '../display-url.ts'
import { isTokenStore, type TokenStore } from './store.ts'
import type { RefreshLock } from './refresh.ts'

const HttpUrl = Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s]*$' })
const RoutePath = Type.String({ pattern: '^/[^\\s?#]*$' })
/**
 * A redirect target: a local path only (`//evil.example` or `/\evil` would be
 * an open redirect), in visible ASCII, since it goes verbatim into a Location
 * header (Node refuses characters above U+00FF there, and browsers read Latin-1
 * bytes as UTF-8): percent-encode anything else.
 */
export const LocalRedirectPath = Type.String({ pattern: '^/(?![/\\\\])[\\x21-\\x7E]*$', maxLength: 2048 })

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
  redirectAfterLogin: Type.Optional(LocalRedirectPath),
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
  refreshLock: Type.Optional(Type.Any())
}, { additionalProperties: false })

export type OAuthOptions = Omit<Static<typeof OAuthOptionsSchema>, 'store' | 'refreshLock'> & {
  /** where tokens live; default: the encrypted session (field `oauth`) */
  store?: TokenStore
  /** cross-instance single-flight, e.g. the Redis token store plugin's `fleet` */
  refreshLock?: RefreshLock
}

export type ResolvedOAuthOptions = Required<Omit<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock'>> & Pick<OAuthOptions, 'tokenBackup' | 'store' | 'refreshLock'>

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
  if (opts.refreshLock !== undefined && typeof (opts.refreshLock as { refresh?: unknown } | null)?.refresh !== 'function') {
    throw new errors.FSS_OPTIONS_INVALID('oauth.refreshLock', 'Expected an object with a refresh function')
  }
  return { ...OAUTH_DEFAULTS, scope: [...OAUTH_DEFAULTS.scope], ...opts }
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
