// plugins/oauth-tokens.ts — validated OAuth token storage with single-flight
// refresh. Registers @fastify/oauth2 (PKCE S256, our state functions) and
// decorates `request.tokens` and `fastify.oauthFlow`; routes/oauth.ts answers
// login/callback/logout through those two and nothing else.
import fp from 'fastify-plugin'
import oauth2Plugin, { type OAuth2Namespace, type Token } from '@fastify/oauth2'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { resolveOAuthOptions, describeProvider, fastifyOAuth2Options, type OAuthOptions, type ProviderEndpoints, type ResolvedOAuthOptions } from '../lib/oauth/options.ts'
import { isStoredToken, normalizeToken, tokenMetadata, type StoredToken, type TokenMetadata } from '../lib/oauth/token.ts'
import { checkedTokenStore, sessionTokenStore, type TokenStore } from '../lib/oauth/store.ts'
import { RefreshCoordinator, isRefreshTokenSpent, type RefreshCounters } from '../lib/oauth/refresh.ts'
import { classifyTokenEndpointError, codeOf, isEmptySuccess } from '../lib/oauth/provider-errors.ts'
import { captureRawAnswers, rawAnswerOf, refreshGrant, type TokenClient } from '../lib/oauth/raw-answer.ts'
import { parseCallbackQuery } from '../lib/oauth/callback-query.ts'
import { assertBackupAllowed, withTokenBackup } from '../lib/oauth/backup.ts'
import { checkState, generateState, stateCookieNames, UsedStates } from '../lib/oauth/state.ts'
import { loginIdentity, publicIdentity, readIdentity, writeIdentity, type LoginIdentity, type SessionIdentity } from '../lib/oauth/identity.ts'
import { createRelyingParty, type RelyingParty } from '../lib/oidc/relying-party.ts'
import type { LogoutTokenClaims } from '../lib/oidc/logout-token.ts'
import type { Identity } from '../lib/oidc/identity.ts'
import type { JwksState } from '../lib/oidc/jwks.ts'
import type { EndSessionRequest } from '../lib/oidc/flow.ts'

export type { OAuthOptions, StoredToken, TokenMetadata, TokenStore, Identity, SessionIdentity }

/** The per-request token API. Values leave it only through accessToken(). */
export interface RequestTokens {
  /** what is stored, without any value; null when there is no token */
  metadata (): Promise<TokenMetadata | null>
  /** a valid access token, refreshed when under `refreshSkew` seconds remain; throws coded errors */
  accessToken (): Promise<string>
  /** validates + normalizes + stores; throws FSS_TOKEN_INVALID */
  store (token: unknown): Promise<StoredToken>
  /** deletes the stored token (not at the provider: see revoke()) */
  clear (): Promise<void>
  /**
   * Revokes the stored tokens at the provider (RFC 7009): the refresh token, then the access
   * token. True when the provider accepted both; false when there is no token, the provider has
   * no revocation endpoint (explicit endpoints without `revokeUrl`), or it failed (logged with
   * its code only). Keeps the stored token: clear() drops it.
   */
  revoke (): Promise<boolean>
}

/** The authorization-code flow's steps, for the login, callback and logout routes. */
export interface OAuthFlow {
  /** where the routes answer and where a login lands, from the OAuth options */
  readonly paths: { readonly login: string, readonly callback: string, readonly logout: string, readonly afterLogin: string }
  /** whether logging out revokes the tokens at the provider first (`revokeOnLogout`) */
  readonly revokeOnLogout: boolean
  /** The provider's authorization URL for a new login; sets the state and PKCE verifier cookies. */
  authorizationUrl (request: FastifyRequest, reply: FastifyReply): Promise<string>
  /**
   * The callback's checks and the code exchange: clears the single-use state and verifier cookies
   * whatever the outcome; refuses a provider error, a missing, wrong or replayed state, a missing
   * code or verifier; answers the validated token. Throws coded errors only; stores nothing.
   */
  exchangeCode (request: FastifyRequest, reply: FastifyReply): Promise<StoredToken>
  /** Counts a login in `oauthInfo.counters`: a success without an argument, a failure by its error's code (FSS_* or `unknown`). */
  recordLogin (error?: unknown): void
  /**
   * Who the exchanged token belongs to: for an OpenID Connect provider the verified id_token (this
   * flow's nonce, then UserInfo with `userinfo: true`); for a plain OAuth 2 provider `mapIdentity`'s
   * answer, or null. Throws coded errors; stores nothing.
   */
  verifyIdentity (request: FastifyRequest, token: StoredToken): Promise<SessionIdentity | null>
  /** Keeps the identity in the session (after regenerate() and tokens.store()). */
  rememberIdentity (request: FastifyRequest, identity: SessionIdentity | null): void
  /**
   * RP-initiated logout: the request that ends the session at the provider (with the stored
   * id_token as hint and `postLogoutPath` resolved against the callback URI), or null when the
   * provider has no end_session_endpoint or `providerLogout` is false. Read it before clearing.
   */
  endSessionRequest (request: FastifyRequest, postLogoutPath: string): Promise<EndSessionRequest | null>
  /** how the browser is sent to the end-session endpoint */
  readonly providerLogout: 'post' | 'get' | false
  /**
   * OpenID Connect Back-Channel Logout 1.0: verifies a logout_token against the provider's keys
   * (FSS_LOGOUT_TOKEN_INVALID, FSS_JWKS_UNAVAILABLE); `maxAgeSeconds` is how long one stays
   * acceptable (its age limit plus the clock tolerance), so how long its jti must be remembered.
   * null for a plain OAuth 2 provider.
   */
  readonly logoutTokens: { verify: (token: unknown) => Promise<LogoutTokenClaims>, maxAgeSeconds: number } | null
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
  /** OpenID Connect: the issuer and the JWKS state (counts and times, never a key); null for plain OAuth 2 */
  oidc: { issuer: string, jwks: JwksState } | null
}

declare module 'fastify' {
  interface FastifyInstance { oauthInfo: OAuthInfo, oauthFlow: OAuthFlow }
  interface FastifyRequest {
    tokens: RequestTokens
    /** who is logged in: verified (OpenID Connect) or mapped by `mapIdentity`; null when nobody is */
    identity: Identity | null
  }
}

const kTokens = Symbol('fss.oauth.requestTokens')
/** @fastify/oauth2's decorator name (it also adds `oauth2FssOAuth2`). */
export const OAUTH2_DECORATOR = 'fssOAuth2'
// The state and verifier cookies' attributes, as @fastify/oauth2 sets them (fastifyOAuth2Options).
const STATE_COOKIE = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const }

// An RFC 6749 §4.1.2.1 error code is short ASCII; anything else is not echoed.
function providerErrorCode (value: string): string {
  return /^[a-z0-9_.-]{1,64}$/i.test(value) ? value : 'unrecognised error'
}

/** oauthInfo for an app without OAuth (the root plugin decorates this so health output has one shape). */
export function unconfiguredOAuthInfo (): OAuthInfo {
  return {
    configured: false,
    provider: null,
    providerKind: null,
    lastRefreshFailure: null,
    policy: null,
    counters: { refreshes: 0, shared: 0, failures: { rejected: 0, provider: 0, timeout: 0, invalid: 0 }, backedOff: 0, logins: 0, loginFailures: {}, refreshInFlight: 0, rejectedStored: 0 },
    oidc: null
  }
}

const oauthTokens: FastifyPluginAsync<OAuthOptions> = async (fastify, rawOpts) => {
  const opts = resolveOAuthOptions(rawOpts)
  if (opts.tokenBackup !== undefined) assertBackupAllowed()
  // Where the lock meets the provider timeout: refused here, however the plugins were registered.
  opts.refreshLock?.outlive?.(opts.timeout)
  const cookies = stateCookieNames(opts.hostPrefixedCookies)
  const rp = await relyingParty(opts)
  const identity = loginIdentity({
    rp,
    nonceCookie: `${opts.hostPrefixedCookies ? '__Host-' : ''}fss-oauth-nonce`,
    cookie: { ...STATE_COOKIE, maxAge: opts.stateMaxAge },
    userinfo: opts.userinfo,
    mapIdentity: opts.mapIdentity,
    timeout: opts.timeout
  })
  // The endpoints discovery checked (issuer, URLs): @fastify/oauth2 never runs its own, unchecked one.
  // (Discovery's schema requires both endpoints; revocation is optional.)
  const meta = rp?.metadata
  const checked = meta === undefined || !('issuer' in opts.provider)
    ? undefined
    : { authorizeUrl: meta.authorization_endpoint as string, tokenUrl: meta.token_endpoint as string, ...(meta.revocation_endpoint === undefined ? {} : { revokeUrl: meta.revocation_endpoint }) }

  await fastify.register(oauth2Plugin, {
    // Without discovery the provider is explicit endpoints (a discovery provider always has a relying party).
    ...fastifyOAuth2Options(opts, OAUTH2_DECORATOR, checked ?? opts.provider as ProviderEndpoints),
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
    counters: counters as OAuthInfo['counters'],
    get oidc () { return rp === null ? null : { issuer: rp.options.issuer, jwks: rp.jwksState() } }
  }
  fastify.decorate('oauthInfo', info)

  const usedStates = new UsedStates(opts.stateMaxAge * 1000)
  const flow: OAuthFlow = {
    paths: Object.freeze({ login: opts.loginPath, callback: opts.callbackPath, logout: opts.logoutPath, afterLogin: opts.redirectAfterLogin }),
    revokeOnLogout: opts.revokeOnLogout,
    providerLogout: opts.providerLogout,
    async authorizationUrl (request, reply) {
      const uri = await oauth2.generateAuthorizationUri(request, reply)
      const nonce = identity.begin(reply)
      if (nonce === null) return uri
      // Core §3.1.2.1: the nonce travels in this request only; the browser keeps it in an HttpOnly cookie.
      const url = new URL(uri)
      url.searchParams.set('nonce', nonce)
      return url.href
    },
    async exchangeCode (request, reply) {
      // Single-use cookies: cleared on every outcome (the values were read from the request).
      reply.clearCookie(cookies.state, STATE_COOKIE)
      reply.clearCookie(cookies.verifier, STATE_COOKIE)
      identity.clear(reply)
      // Fastify's querystring parser gives an object of strings, or arrays of
      // strings for repeated names; parseCallbackQuery refuses anything else
      // (FSS_OAUTH_CALLBACK_INVALID), after the cookies above are cleared.
      const query = parseCallbackQuery(request.query as Record<string, unknown>)
      if (query.error !== undefined) throw new errors.FSS_OAUTH_DENIED(providerErrorCode(query.error))
      usedStates.consume(checkState(request, cookies.state))
      if (query.code === undefined) throw new errors.FSS_OAUTH_CODE_MISSING()
      const verifier = request.cookies[cookies.verifier]
      if (verifier === undefined || verifier === '') throw new errors.FSS_OAUTH_VERIFIER_MISSING()
      // RFC 9207 and the nonce cookie: before the code is spent at the provider.
      identity.checkCallback(request)
      let raw: unknown
      try {
        // Without `reply`: the cookies are already cleared above. It runs our
        // state check again (pure) and POSTs code + code_verifier. The provider's
        // raw JSON is what gets validated, not simple-oauth2's rewritten copy.
        raw = await rawAnswerOf(() => oauth2.getAccessTokenFromAuthorizationCodeFlow(request))
      } catch (err) {
        throw classifyTokenEndpointError(err, 'authorization_code')
      }
      return normalize(raw)
    },
    recordLogin (error) {
      if (error === undefined) {
        counters.logins++
        return
      }
      const code = codeOf(error)
      counters.loginFailures[code] = (counters.loginFailures[code] ?? 0) + 1
    },
    verifyIdentity: (request, token) => identity.verify(request, token),
    rememberIdentity: writeIdentity,
    logoutTokens: rp === null ? null : { verify: rp.verifyLogoutToken, maxAgeSeconds: rp.options.logoutTokenMaxAge + rp.options.clockTolerance },
    async endSessionRequest (request, postLogoutPath) {
      if (rp === null || opts.providerLogout === false) return null
      const token = await store.get(request)
      return rp.endSessionRequest({
        ...(token?.id_token === undefined ? {} : { idTokenHint: token.id_token }),
        postLogoutRedirectUri: new URL(postLogoutPath, opts.callbackUri).href,
        state: generateState()
      })
    }
  }
  fastify.decorate('oauthFlow', flow)

  // simple-oauth2 would revoke at its default `/oauth/revoke` on the token host.
  const canRevoke = 'issuer' in opts.provider || opts.provider.revokeUrl !== undefined
  const canRevokeChecked = checked === undefined ? canRevoke : checked.revokeUrl !== undefined
  const context: TokenContext = { store, coordinator, normalize, identity, refreshSkew: opts.refreshSkew, revoke: canRevokeChecked ? (request, token) => revoke(oauth2, request, token) : undefined }
  // A getter, not a hook: requests that never touch tokens pay nothing. Built
  // once per request, on first access, then kept.
  fastify.decorateRequest(kTokens, null)
  fastify.decorateRequest('tokens', {
    getter (this: FastifyRequest): RequestTokens {
      const req = this as FastifyRequest & { [kTokens]: RequestTokens | null }
      return (req[kTokens] ??= requestTokens(this, context))
    }
  })
  // Read from the session on access: requests that never ask decode nothing.
  fastify.decorateRequest('identity', {
    getter (this: FastifyRequest): Identity | null {
      const stored = readIdentity(this)
      return stored === null ? null : publicIdentity(stored)
    }
  })
}

/**
 * The relying party for an OpenID Connect provider (discovery, or explicit endpoints with
 * `oidc.issuer`), created once: discovery failures stop start-up with the URL and the fix.
 * The issuer, client id and timeout come from the OAuth options, never twice.
 */
async function relyingParty (opts: ResolvedOAuthOptions): Promise<RelyingParty | null> {
  const { issuer: oidcIssuer, ...oidc } = (opts.oidc ?? {}) as Record<string, unknown>
  const discovery = 'issuer' in opts.provider
  for (const name of ['clientId', 'timeout'] as const) {
    if (oidc[name] !== undefined) throw new errors.FSS_OPTIONS_INVALID(`oauth.oidc.${name}`, `the OpenID Connect ${name} is oauth.${name}: give it once`)
  }
  if (discovery && oidcIssuer !== undefined) throw new errors.FSS_OPTIONS_INVALID('oauth.oidc.issuer', 'the issuer is oauth.provider.issuer: give it once')
  if (!discovery && oidcIssuer === undefined) {
    if (opts.oidc !== undefined) throw new errors.FSS_OPTIONS_INVALID('oauth.oidc.issuer', 'required (with oidc.jwksUri) to verify id_tokens from explicit endpoints')
    if (opts.userinfo) throw new errors.FSS_OPTIONS_INVALID('oauth.userinfo', 'needs an OpenID Connect provider (provider.issuer, or oidc.issuer with oidc.jwksUri)')
    return null
  }
  if (opts.mapIdentity !== undefined) throw new errors.FSS_OPTIONS_INVALID('oauth.mapIdentity', 'an OpenID Connect provider\'s identity is its verified id_token; mapIdentity is for plain OAuth 2 providers')
  if (!opts.scope.includes('openid')) throw new errors.FSS_OPTIONS_INVALID('oauth.scope', 'must include openid for an OpenID Connect provider')
  const issuer = discovery ? (opts.provider as { issuer: string }).issuer : oidcIssuer
  return await createRelyingParty({ timeout: opts.timeout, ...oidc, issuer, clientId: opts.clientId }, 'oauth.oidc')
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

interface TokenContext {
  store: TokenStore
  coordinator: RefreshCoordinator
  normalize: (raw: unknown) => StoredToken
  refreshSkew: number
  identity: LoginIdentity
  /** undefined when the provider has no revocation endpoint */
  revoke: ((request: FastifyRequest, token: StoredToken) => Promise<boolean>) | undefined
}

function requestTokens (request: FastifyRequest, { store, coordinator, normalize, identity, refreshSkew, revoke }: TokenContext): RequestTokens {
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
      try {
        await identity.checkRefreshed(readIdentity(request), fresh, token)
      } catch (err) {
        // Core §12.2: another user's (or an unverifiable) id_token ends this login.
        await store.delete(request)
        writeIdentity(request, null)
        throw err
      }
      // Every caller, winner or not, writes the winner's token: no request
      // sends a Set-Cookie with the stale pair.
      await store.set(request, fresh)
      return fresh.access_token
    },
    async store (raw) {
      // A token already in the stored shape (exchangeCode's result) is stored
      // as it is: normalizing it again would read its computed expires_at as a
      // provider-stated lifetime and lose `expiresAssumed`.
      const token = isStoredToken(raw) ? raw : normalize(raw)
      await store.set(request, token)
      return token
    },
    async clear () {
      await store.delete(request)
    },
    async revoke () {
      const token = await store.get(request)
      return token !== null && revoke !== undefined && await revoke(request, token)
    }
  }
}

export default fp(oauthTokens, {
  fastify: '5.x',
  name: 'fastify-session-suite/oauth-tokens',
  dependencies: ['fastify-session-suite/session']
})
