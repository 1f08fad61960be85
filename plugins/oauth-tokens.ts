// plugins/oauth-tokens.ts — validated OAuth token storage with single-flight
// refresh. Registers @fastify/oauth2 (PKCE S256, our state functions) and
// decorates `request.tokens`; routes/oauth.ts adds login/callback/logout.
import fp from 'fastify-plugin'
import oauth2Plugin, { type OAuth2Namespace } from '@fastify/oauth2'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { resolveOAuthOptions, describeProvider, fastifyOAuth2Options, type OAuthOptions, type ResolvedOAuthOptions } from '../lib/oauth/options.ts'
import { normalizeToken, tokenMetadata, type StoredToken, type TokenMetadata } from '../lib/oauth/token.ts'
import { checkedTokenStore, sessionTokenStore, type TokenStore } from '../lib/oauth/store.ts'
import { RefreshCoordinator, isRefreshTokenSpent, type RefreshCounters } from '../lib/oauth/refresh.ts'
import { classifyTokenEndpointError } from '../lib/oauth/provider-errors.ts'
import { captureRawAnswers, refreshGrant, type TokenClient } from '../lib/oauth/raw-answer.ts'
import { assertBackupAllowed, withTokenBackup } from '../lib/oauth/backup.ts'
import { checkState, generateState, stateCookieNames, UsedStates, type StateCookieNames } from '../lib/oauth/state.ts'

export type { OAuthOptions, StoredToken, TokenMetadata, TokenStore }

/** The per-request token API. Values leave it only through accessToken(). */
export interface RequestTokens {
  /** what is stored, without any value; null when there is no token */
  metadata (): Promise<TokenMetadata | null>
  /** a valid access token, refreshed when under `refreshSkew` seconds remain; throws coded errors */
  accessToken (): Promise<string>
  /** validates + normalizes + stores; throws FSS_TOKEN_INVALID */
  store (token: unknown): Promise<StoredToken>
  clear (): Promise<void>
}

export interface OAuthInfo {
  configured: boolean
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
}

declare module 'fastify' {
  interface FastifyInstance { oauthInfo: OAuthInfo }
  interface FastifyRequest { tokens: RequestTokens }
}

/** What routes/oauth.ts needs; reached through getOAuthRuntime, never displayed. */
export interface OAuthRuntime {
  options: ResolvedOAuthOptions
  oauth2: OAuth2Namespace
  store: TokenStore
  cookies: StateCookieNames
  usedStates: UsedStates
  info: OAuthInfo
  normalize: (raw: unknown) => StoredToken
}

const kRuntime = Symbol.for('fastify-session-suite.oauth-runtime')
const kTokens = Symbol('fss.oauth.requestTokens')
/** @fastify/oauth2's decorator name (it also adds `oauth2FssOAuth2`). */
export const OAUTH2_DECORATOR = 'fssOAuth2'

export function getOAuthRuntime (fastify: FastifyInstance): OAuthRuntime {
  const runtime = (fastify as unknown as Record<symbol, OAuthRuntime | undefined>)[kRuntime]
  if (runtime === undefined) throw new errors.FSS_OPTIONS_INVALID('oauth', 'register the oauth-tokens plugin before the OAuth routes')
  return runtime
}

/** oauthInfo for an app without OAuth (the root plugin decorates this so health output has one shape). */
export function unconfiguredOAuthInfo (): OAuthInfo {
  return {
    configured: false,
    provider: null,
    providerKind: null,
    lastRefreshFailure: null,
    policy: null,
    counters: { refreshes: 0, shared: 0, failures: { rejected: 0, provider: 0, timeout: 0, invalid: 0 }, backedOff: 0, logins: 0, loginFailures: {}, refreshInFlight: 0, rejectedStored: 0 }
  }
}

const oauthTokens: FastifyPluginAsync<OAuthOptions> = async (fastify, rawOpts) => {
  const opts = resolveOAuthOptions(rawOpts)
  if (opts.tokenBackup !== undefined) assertBackupAllowed()
  const cookies = stateCookieNames(opts.hostPrefixedCookies)

  await fastify.register(oauth2Plugin, {
    ...fastifyOAuth2Options(opts, OAUTH2_DECORATOR),
    redirectStateCookieName: cookies.state,
    verifierCookieName: cookies.verifier,
    generateStateFunction: (_request: FastifyRequest) => generateState(),
    // Pure comparison; the callback route also marks the state used.
    checkStateFunction: (request: FastifyRequest) => checkState(request, cookies.state) !== ''
  })
  const oauth2 = (fastify as unknown as Record<string, OAuth2Namespace>)[OAUTH2_DECORATOR]
  // simple-oauth2's client, which @fastify/oauth2 exposes as `oauth2` (untyped there).
  const client = (oauth2 as unknown as { oauth2: TokenClient }).oauth2
  captureRawAnswers(client)

  const normalize = (raw: unknown): StoredToken => normalizeToken(raw, { assumedLifetime: opts.assumedLifetime })
  let store = opts.store ?? sessionTokenStore()
  if (opts.tokenBackup !== undefined) store = withTokenBackup(store, opts.tokenBackup.file, fastify.log)

  // simple-oauth2 (through @fastify/oauth2) rather than our own POST: the same
  // client, client authentication and Wreck `timeout` as the code exchange, and
  // Wreck's Boom errors carry what classification needs (status, body, 504/408).
  // What is validated is the provider's raw answer, not simple-oauth2's copy.
  const coordinator = new RefreshCoordinator({
    async call (refreshToken) {
      try {
        return await refreshGrant(client, refreshToken)
      } catch (err) {
        throw classifyTokenEndpointError(err, 'refresh_token')
      }
    },
    normalize,
    backoffMs: opts.refreshBackoff * 1000,
    lock: opts.refreshLock
  })

  const counters = Object.assign(coordinator.counters, { logins: 0, loginFailures: {} as Record<string, number>, rejectedStored: 0 })
  store = checkedTokenStore(store, (request) => {
    counters.rejectedStored++
    request.log.warn({ event: 'stored-token-invalid' }, 'the token store answered something that is not a valid token: read as none')
  })
  Object.defineProperty(counters, 'refreshInFlight', { enumerable: true, get: () => coordinator.inflight })
  const provider = describeProvider(opts)
  const info: OAuthInfo = {
    configured: true,
    provider: provider.url,
    providerKind: provider.kind,
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
    counters: counters as OAuthInfo['counters']
  }
  fastify.decorate('oauthInfo', info)
  fastify.decorate(kRuntime, { options: opts, oauth2, store, cookies, usedStates: new UsedStates(opts.stateMaxAge * 1000), info, normalize } satisfies OAuthRuntime)

  // A getter, not a hook: requests that never touch tokens pay nothing. Built
  // once per request, on first access, then kept.
  fastify.decorateRequest(kTokens, null)
  fastify.decorateRequest('tokens', {
    getter (this: FastifyRequest): RequestTokens {
      const req = this as FastifyRequest & { [kTokens]: RequestTokens | null }
      return (req[kTokens] ??= requestTokens(this, store, coordinator, normalize, opts.refreshSkew))
    }
  })
}

function requestTokens (request: FastifyRequest, store: TokenStore, coordinator: RefreshCoordinator, normalize: (raw: unknown) => StoredToken, refreshSkew: number): RequestTokens {
  return {
    async metadata () {
      const token = await store.get(request)
      return token === null ? null : tokenMetadata(token)
    },
    async accessToken () {
      let token = await store.get(request)
      if (token === null) throw new errors.FSS_TOKEN_MISSING()
      // Before the expiry check: a pair this process already refreshed may come
      // back still looking valid (a concurrent request re-sealed the old pair
      // after the winner's cookie). Its refresh token is used up, so swap it
      // for the newest now, before it ever reaches the provider again.
      const newest = coordinator.replaced(token)
      if (newest !== null) {
        token = newest
        await store.set(request, newest)
      }
      // A token that lives 30 s must not be refreshed on every request: skew
      // is at most half the announced lifetime.
      const skew = Math.min(refreshSkew, (token.expires_in ?? Infinity) / 2)
      const left = token.expires_at - Date.now() / 1000
      if (left > skew) return token.access_token
      // Nothing to refresh with: use it while it is valid, however little is left.
      if (token.refresh_token === undefined) {
        if (left > 0) return token.access_token
        throw new errors.FSS_TOKEN_EXPIRED()
      }
      let fresh: StoredToken
      try {
        fresh = await coordinator.refresh({ ...token, refresh_token: token.refresh_token })
      } catch (err) {
        // invalid_grant, or an unusable 2xx answer: the refresh token is used
        // up; keeping it would only replay it (RFC 9700 §4.14).
        if (isRefreshTokenSpent(err)) await store.delete(request)
        throw err
      }
      // Every caller, winner or not, writes the winner's token: no request
      // sends a Set-Cookie with the stale pair.
      await store.set(request, fresh)
      return fresh.access_token
    },
    async store (raw) {
      const token = normalize(raw)
      await store.set(request, token)
      return token
    },
    async clear () {
      await store.delete(request)
    }
  }
}

export default fp(oauthTokens, {
  fastify: '5.x',
  name: 'fastify-session-suite/oauth-tokens',
  dependencies: ['fastify-session-suite/session']
})
