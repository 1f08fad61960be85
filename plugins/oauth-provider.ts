// One OAuth provider of the oauth-tokens plugin: its own @fastify/oauth2
// registration (simple-oauth2 client, timeout, client authentication), its
// relying party (discovery, JWKS), token store, refresh single-flight and
// counters. Nothing is shared between two providers but the flow cookies and
// the record of used states, which the plugin keeps.
import oauth2Plugin, { type OAuth2Namespace, type Token } from '@fastify/oauth2'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { describeProvider, fastifyOAuth2Options, type ProviderEndpoints, type ResolvedProvider } from '../lib/oauth/options.ts'
import { normalizeToken, type StoredToken } from '../lib/oauth/token.ts'
import { checkedTokenStore, type TokenStore } from '../lib/oauth/store.ts'
import { markRefreshTokenSpent, RefreshCoordinator, type RefreshCounters } from '../lib/oauth/refresh.ts'
import { answeredSuccess, classifyTokenEndpointError, isEmptySuccess } from '../lib/oauth/provider-errors.ts'
import { captureRawAnswers, refreshGrant, type TokenClient } from '../lib/oauth/raw-answer.ts'
import { withTokenBackup } from '../lib/oauth/backup.ts'
import { loginIdentity, type LoginIdentity } from '../lib/oauth/identity.ts'
import type { TokenContext } from '../lib/oauth/request-tokens.ts'
import { createRelyingParty, type RelyingParty } from '../lib/oidc/relying-party.ts'
import type { JwksState } from '../lib/oidc/jwks.ts'

/** @fastify/oauth2's decorator name for the default provider (it also adds `oauth2FssOAuth2`); another provider's is `fssOAuth2_<name>`. */
export const OAUTH2_DECORATOR = 'fssOAuth2'

/** What oauthInfo shows of one provider: where it is, its policy and counters, never a credential. */
export interface OAuthProviderInfo {
  /** the issuer (discovery) or the token endpoint's origin (explicit); never a credential */
  provider: string | null
  providerKind: 'discovery' | 'explicit' | null
  /** the last failed refresh: epoch ms and code */
  lastRefreshFailure: { at: number, code: string } | null
  policy: { refreshSkew: number, assumedLifetime: number, refreshBackoff: number, timeout: number, pkce: 'S256', stateMaxAge: number, revokeOnLogout: boolean, tokenBackup: boolean } | null
  counters: RefreshCounters & {
    logins: number
    loginFailures: Record<string, number>
    refreshInFlight: number
    /** answers of the token store that were not a valid token (read as no token) */
    rejectedStored: number
  }
  /** OpenID Connect: the issuer and the JWKS state (counts and times, never a key); null for plain OAuth 2 */
  oidc: { issuer: string, jwks: JwksState } | null
}

/** One provider, ready: what the flow and the token API of the plugin use. */
export interface ProviderRuntime {
  name: string
  opts: ResolvedProvider
  /** simple-oauth2's client (authorizeURL, getToken) */
  client: TokenClient & { authorizeURL: (params: Record<string, unknown>) => string }
  rp: RelyingParty | null
  identity: LoginIdentity
  tokens: TokenContext
  info: OAuthProviderInfo
  counters: OAuthProviderInfo['counters']
  normalize: (raw: unknown) => StoredToken
}

export async function createProvider (fastify: FastifyInstance, opts: ResolvedProvider, baseStore: TokenStore, defaultName: string): Promise<ProviderRuntime> {
  const { name } = opts
  const rp = await relyingParty(opts)
  const identity = loginIdentity({ rp, userinfo: opts.userinfo, mapIdentity: opts.mapIdentity, timeout: opts.timeout })
  // The endpoints discovery checked (issuer, URLs): @fastify/oauth2 never runs its own, unchecked one.
  // (Discovery's schema requires both endpoints; revocation is optional.)
  const meta = rp?.metadata
  const checked = meta === undefined || !('issuer' in opts.provider)
    ? undefined
    : { authorizeUrl: meta.authorization_endpoint as string, tokenUrl: meta.token_endpoint as string, ...(meta.revocation_endpoint === undefined ? {} : { revokeUrl: meta.revocation_endpoint }) }

  const decorator = name === defaultName ? OAUTH2_DECORATOR : `${OAUTH2_DECORATOR}_${name}`
  // Without discovery the provider is explicit endpoints (a discovery provider always has a relying party).
  // Only its client is used: the flow's state, verifier and nonce live in the suite's own flow cookies.
  await fastify.register(oauth2Plugin, fastifyOAuth2Options(opts, decorator, checked ?? opts.provider as ProviderEndpoints, meta?.token_endpoint_auth_methods_supported))
  const oauth2 = (fastify as unknown as Record<string, OAuth2Namespace>)[decorator] as OAuth2Namespace
  // simple-oauth2's client, which @fastify/oauth2 exposes as `oauth2` (untyped there).
  const client = (oauth2 as unknown as { oauth2: ProviderRuntime['client'] }).oauth2
  captureRawAnswers(client)

  const normalize = (raw: unknown): StoredToken => normalizeToken(raw, { assumedLifetime: opts.assumedLifetime })
  let store = name === defaultName ? baseStore : forProvider(baseStore, name)
  // The development backup is one file: the default provider's tokens.
  if (opts.tokenBackup !== undefined && name === defaultName) store = withTokenBackup(store, opts.tokenBackup.file, fastify.log)

  // simple-oauth2 (through @fastify/oauth2) rather than our own POST: the same
  // client, client authentication and Wreck `timeout` as the code exchange, and
  // Wreck's Boom errors carry what classification needs (status, body, 504/408).
  // What is validated is the provider's raw answer, not simple-oauth2's copy.
  const coordinator = new RefreshCoordinator({
    async call (refreshToken) {
      try {
        return await refreshGrant(client, refreshToken)
      } catch (err) {
        const coded = classifyTokenEndpointError(err, 'refresh_token')
        // A 2xx whose body could not be used still used the refresh token at the
        // provider: like an invalid 2xx answer, it is never sent again.
        throw answeredSuccess(err) ? markRefreshTokenSpent(coded) : coded
      }
    },
    normalize,
    backoffMs: opts.refreshBackoff * 1000,
    lock: opts.refreshLock
  })

  const counters = Object.assign(coordinator.counters, { logins: 0, loginFailures: {} as Record<string, number>, rejectedStored: 0 })
  store = checkedTokenStore(store, (request) => {
    counters.rejectedStored++
    request.log.warn({ event: 'stored-token-invalid', provider: name }, 'the token store answered something that is not a valid token: read as none')
  })
  Object.defineProperty(counters, 'refreshInFlight', { enumerable: true, get: () => coordinator.inflight })
  const described = describeProvider(opts)
  const info: OAuthProviderInfo = {
    provider: described.url,
    providerKind: described.kind,
    get lastRefreshFailure () { return coordinator.lastFailure },
    policy: {
      refreshSkew: opts.refreshSkew,
      assumedLifetime: opts.assumedLifetime,
      refreshBackoff: opts.refreshBackoff,
      timeout: opts.timeout,
      pkce: 'S256',
      stateMaxAge: opts.stateMaxAge,
      revokeOnLogout: opts.revokeOnLogout,
      tokenBackup: opts.tokenBackup !== undefined
    },
    counters: counters as OAuthProviderInfo['counters'],
    get oidc () { return rp === null ? null : { issuer: rp.options.issuer, jwks: rp.jwksState() } }
  }

  // simple-oauth2 would revoke at its default `/oauth/revoke` on the token host.
  const canRevoke = checked === undefined ? 'issuer' in opts.provider || opts.provider.revokeUrl !== undefined : checked.revokeUrl !== undefined
  const tokens: TokenContext = {
    name,
    defaultName,
    store,
    coordinator,
    normalize,
    identity,
    refreshSkew: opts.refreshSkew,
    revoke: canRevoke ? (request, token) => revoke(oauth2, request, token) : undefined
  }
  return { name, opts, client, rp, identity, tokens, info, counters: info.counters, normalize }
}

function forProvider (store: TokenStore, name: string): TokenStore {
  // Checked at registration for every provider but the default (see the plugin).
  return (store.forProvider as (name: string) => TokenStore)(name)
}

/**
 * The relying party for an OpenID Connect provider (discovery, or explicit endpoints with
 * `oidc.issuer`), created once: discovery failures stop start-up with the URL and the fix.
 * The issuer, client id and timeout come from the OAuth options, never twice.
 */
async function relyingParty (opts: ResolvedProvider): Promise<RelyingParty | null> {
  const { issuer: oidcIssuer, ...oidc } = (opts.oidc ?? {}) as Record<string, unknown>
  const discovery = 'issuer' in opts.provider
  const at = opts.path
  for (const name of ['clientId', 'timeout'] as const) {
    if (oidc[name] !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${at}.oidc.${name}`, `the OpenID Connect ${name} is oauth.${name}: give it once`)
  }
  if (discovery && oidcIssuer !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${at}.oidc.issuer`, 'the issuer is provider.issuer: give it once')
  if (!discovery && oidcIssuer === undefined) {
    if (opts.oidc !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${at}.oidc.issuer`, 'required (with oidc.jwksUri) to verify id_tokens from explicit endpoints')
    if (opts.userinfo) throw new errors.FSS_OPTIONS_INVALID(`${at}.userinfo`, 'needs an OpenID Connect provider (provider.issuer, or oidc.issuer with oidc.jwksUri)')
    return null
  }
  if (opts.mapIdentity !== undefined) throw new errors.FSS_OPTIONS_INVALID(`${at}.mapIdentity`, 'an OpenID Connect provider\'s identity is its verified id_token; mapIdentity is for plain OAuth 2 providers')
  if (!opts.scope.includes('openid')) throw new errors.FSS_OPTIONS_INVALID(`${at}.scope`, 'must include openid for an OpenID Connect provider')
  const issuer = discovery ? (opts.provider as { issuer: string }).issuer : oidcIssuer
  return await createRelyingParty({ timeout: opts.timeout, ...oidc, issuer, clientId: opts.clientId }, `${at}.oidc`)
}

// RFC 7009: the refresh token first (servers should then drop its access
// tokens too), then the access token. A failure is logged with its code only.
async function revoke (oauth2: OAuth2Namespace, request: FastifyRequest, token: StoredToken): Promise<boolean> {
  const revokeOne = async (type: 'refresh_token' | 'access_token'): Promise<void> => {
    await oauth2.revokeToken(token as unknown as Token, type, undefined).catch((err: unknown) => {
      if (!isEmptySuccess(err)) throw err
    })
  }
  try {
    if (token.refresh_token !== undefined) await revokeOne('refresh_token')
    await revokeOne('access_token')
    return true
  } catch (err) {
    const coded = classifyTokenEndpointError(err, 'refresh_token')
    request.log.warn({ code: coded.code }, 'token revocation failed')
    return false
  }
}
