// plugins/oauth-tokens.ts — validated OAuth token storage with single-flight
// refresh, for one provider or several by name. Each provider (plugins/oauth-provider.ts)
// has its own @fastify/oauth2 client, discovery/JWKS, store and refresh
// coordinator; the login flows' state lives in one short-lived cookie per
// flow (lib/oauth/flow-state.ts). Decorates `request.tokens`, `request.identity`
// and `fastify.oauthFlow`; routes/oauth.ts answers login/callback/logout/disconnect
// through those and nothing else.
import fp from 'fastify-plugin'
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { resolveOAuthProviders, type LoginEvent, type OAuthOptions, type OnLogin } from '../lib/oauth/options.ts'
import { tokenMetadata, type StoredToken, type TokenMetadata } from '../lib/oauth/token.ts'
import { sessionTokenStore, type TokenStore } from '../lib/oauth/store.ts'
import { codeOf } from '../lib/oauth/provider-errors.ts'
import { classifyTokenEndpointError } from '../lib/oauth/provider-errors.ts'
import { rawAnswerOf } from '../lib/oauth/raw-answer.ts'
import { parseCallbackQuery } from '../lib/oauth/callback-query.ts'
import { assertBackupAllowed } from '../lib/oauth/backup.ts'
import { generateState, UsedStates } from '../lib/oauth/state.ts'
import { MAX_FLOWS, decodeFlow, encodeFlow, flowCookieName, flowCookiePrefix, flowMatches, flowsToDrop } from '../lib/oauth/flow-state.ts'
import { checkReturnTo } from '../lib/oauth/return-to.ts'
import { publicIdentity, readIdentity, writeIdentity, type SessionIdentity } from '../lib/oauth/identity.ts'
import { requestTokens, type ProviderTokens, type RequestTokens, type TokenContext } from '../lib/oauth/request-tokens.ts'
import { logoutTokenDispatch, type LogoutTokenDispatch } from '../lib/oidc/logout-dispatch.ts'
import type { Identity } from '../lib/oidc/identity.ts'
import type { EndSessionRequest } from '../lib/oidc/flow.ts'
import { createProvider, type OAuthProviderInfo, type ProviderRuntime } from './oauth-provider.ts'

export { OAUTH2_DECORATOR } from './oauth-provider.ts'
export type { OAuthOptions, StoredToken, TokenMetadata, TokenStore, Identity, SessionIdentity, RequestTokens, ProviderTokens, OAuthProviderInfo, LoginEvent, OnLogin }

/** A completed code exchange: which provider, its validated token, and where the flow returns to. */
export interface ExchangedCode {
  provider: string
  token: StoredToken
  /** the flow's checked returnTo, or null for `redirectAfterLogin` */
  returnTo: string | null
  /** the flow's nonce (OpenID Connect), for the id_token check */
  nonce: string | null
}

/** What a provider's routes need to know of it. */
export interface ProviderSettings {
  readonly name: string
  /** where its callback route answers */
  readonly callbackPath: string
  /** whether logout and disconnect revoke its tokens at the provider first (`revokeOnLogout`) */
  readonly revokeOnLogout: boolean
}

/** The authorization-code flow's steps, for the login, callback, logout and disconnect routes. */
export interface OAuthFlow {
  /** where the routes answer and where a login lands, from the OAuth options */
  readonly paths: { readonly login: string, readonly callback: string, readonly logout: string, readonly afterLogin: string }
  /** every provider's name, the default first */
  readonly providers: readonly string[]
  /** the provider of `GET <login>` and of `request.tokens` */
  readonly defaultProvider: string
  /** the provider named `name`, or undefined when none is */
  provider (name: string): ProviderSettings | undefined
  /** whether logging out revokes the default provider's tokens at the provider first (`revokeOnLogout`) */
  readonly revokeOnLogout: boolean
  /**
   * The provider's authorization URL for a new login; sets the flow's cookie (state, PKCE
   * verifier, nonce, returnTo) and drops the oldest flows past the bound. A returnTo that is not
   * a same-origin local path is dropped (the login lands on `afterLogin`) and its reason logged.
   * Throws FSS_OAUTH_PROVIDER_UNKNOWN for a name not configured.
   */
  authorizationUrl (request: FastifyRequest, reply: FastifyReply, options?: { provider?: string, returnTo?: unknown }): Promise<string>
  /**
   * The callback's checks and the code exchange for `provider`'s callback: clears the flow's
   * single-use cookie whatever the outcome; refuses a provider error, a missing, wrong, dropped or
   * replayed state, a flow of another provider (mix-up), a missing code; answers the validated
   * token. Throws coded errors only; stores nothing.
   */
  exchangeCode (request: FastifyRequest, reply: FastifyReply, provider?: string): Promise<ExchangedCode>
  /** Counts a login in `oauthInfo.counters` (and the provider's): a success without an error, a failure by its error's code (FSS_* or `unknown`). */
  recordLogin (error?: unknown, provider?: string): void
  /**
   * Who the exchanged token belongs to: for an OpenID Connect provider the verified id_token (this
   * flow's nonce, then UserInfo with `userinfo: true`); for a plain OAuth 2 provider `mapIdentity`'s
   * answer, or null. Throws coded errors; stores nothing.
   */
  verifyIdentity (request: FastifyRequest, exchanged: ExchangedCode): Promise<SessionIdentity | null>
  /**
   * Stores the flow's outcome. A login (nobody logged in, or the provider the user logged in
   * with): a new session (session fixation), the token and the identity; the same user logging
   * in again keeps the providers they connected. A connect (logged in
   * with another provider): this provider's token only, the login unchanged. Then awaits
   * `onLogin`; if it throws, what was stored is undone and FSS_OAUTH_LOGIN_HOOK_FAILED thrown.
   */
  completeLogin (request: FastifyRequest, exchanged: ExchangedCode, identity: SessionIdentity | null): Promise<{ connect: boolean }>
  /** Keeps the identity in the session (after regenerate() and tokens.store()). */
  rememberIdentity (request: FastifyRequest, identity: SessionIdentity | null): void
  /** The provider this session logged in with, or null when nobody is logged in. */
  loginProvider (request: FastifyRequest): Promise<string | null>
  /**
   * RP-initiated logout at the provider the user logged in with: the request that ends the
   * session there (with the stored id_token as hint and `postLogoutPath` resolved against the
   * callback URI) and how to send it, or null when that provider has no end_session_endpoint or
   * its `providerLogout` is false. Read it before clearing.
   */
  endSessionRequest (request: FastifyRequest, postLogoutPath: string): Promise<(EndSessionRequest & { via: 'post' | 'get' }) | null>
  /** how the browser is sent to the default provider's end-session endpoint */
  readonly providerLogout: 'post' | 'get' | false
  /**
   * OpenID Connect Back-Channel Logout 1.0: verifies a logout_token against the keys of the
   * OpenID Connect provider whose issuer (and client id) it names, and says which provider that
   * is (FSS_LOGOUT_TOKEN_INVALID, FSS_JWKS_UNAVAILABLE); `maxAgeSeconds` is how long one stays
   * acceptable (the longest age limit plus clock tolerance), so how long its jti must be
   * remembered. null when no provider is OpenID Connect.
   */
  readonly logoutTokens: LogoutTokenDispatch | null
  /**
   * The subject the session registry groups a login under: the default provider's `sub` as it
   * is, another provider's qualified with its name (`<provider>:<sub>`), since a subject is
   * unique only at its own provider.
   */
  registrySubject (provider: string, sub: string): string
}

export interface OAuthInfo extends OAuthProviderInfo {
  configured: boolean
  /** the default provider's name; the fields above are its */
  defaultProvider: string | null
  /** every provider by name */
  providers: Record<string, OAuthProviderInfo>
}

declare module 'fastify' {
  interface FastifyInstance { oauthInfo: OAuthInfo, oauthFlow: OAuthFlow }
  interface FastifyRequest {
    /** the default provider's tokens; `request.tokens.for(name)` for another provider's */
    tokens: RequestTokens
    /** who is logged in: verified (OpenID Connect) or mapped by `mapIdentity`; null when nobody is */
    identity: Identity | null
  }
}

const kTokens = Symbol('fss.oauth.requestTokens')
// The flow cookies' attributes: HttpOnly, Secure, Path=/ (with `__Host-` names), Lax so that the
// provider's top-level redirect back carries them.
const FLOW_COOKIE = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const }

// An RFC 6749 §4.1.2.1 error code is short ASCII; anything else is not echoed.
function providerErrorCode (value: string): string {
  return /^[a-z0-9_.-]{1,64}$/i.test(value) ? value : 'unrecognised error'
}

function emptyCounters (): OAuthProviderInfo['counters'] {
  return { refreshes: 0, shared: 0, failures: { rejected: 0, provider: 0, timeout: 0, invalid: 0 }, backedOff: 0, logins: 0, loginFailures: {}, refreshInFlight: 0, rejectedStored: 0 }
}

/** oauthInfo for an app without OAuth (the root plugin decorates this so health output has one shape). */
export function unconfiguredOAuthInfo (): OAuthInfo {
  return {
    configured: false,
    provider: null,
    providerKind: null,
    lastRefreshFailure: null,
    policy: null,
    counters: emptyCounters(),
    oidc: null,
    defaultProvider: null,
    providers: {}
  }
}

const oauthTokens: FastifyPluginAsync<OAuthOptions> = async (fastify, rawOpts) => {
  const { providers: resolved, defaultProvider, onLogin } = resolveOAuthProviders(rawOpts)
  // Options every provider shares (the store, the lock, timings, paths) are the default's.
  const shared = resolved.find((p) => p.name === defaultProvider) as (typeof resolved)[number]
  if (shared.tokenBackup !== undefined) assertBackupAllowed()
  // Where the lock meets the provider timeout: refused here, however the plugins were registered.
  shared.refreshLock?.outlive?.(shared.timeout)
  const baseStore = shared.store ?? sessionTokenStore()
  if (resolved.length > 1 && typeof baseStore.forProvider !== 'function') {
    throw new errors.FSS_OPTIONS_INVALID('oauth.store', 'with several providers the store needs forProvider(name), giving each provider a record of its own')
  }
  // In the order given, the default first: it is the one request.tokens and GET <login> serve.
  const runtimes = new Map<string, ProviderRuntime>()
  for (const opts of [shared, ...resolved.filter((p) => p !== shared)]) {
    runtimes.set(opts.name, await createProvider(fastify, opts, baseStore, defaultProvider))
  }
  const main = runtimes.get(defaultProvider) as ProviderRuntime
  // No name: the default provider (or, for endSessionRequest, nobody logged in: the default's end-session endpoint).
  const runtime = (name: string | null | undefined): ProviderRuntime => {
    const found = runtimes.get(name ?? defaultProvider)
    if (found === undefined) throw new errors.FSS_OAUTH_PROVIDER_UNKNOWN()
    return found
  }

  // The default provider's at the top (what /health and single-provider apps read), each provider's below.
  const providersInfo = Object.fromEntries([...runtimes].map(([name, r]) => [name, r.info]))
  const info: OAuthInfo = {
    configured: true,
    provider: main.info.provider,
    providerKind: main.info.providerKind,
    get lastRefreshFailure () { return main.info.lastRefreshFailure },
    policy: main.info.policy,
    counters: main.counters,
    get oidc () { return main.info.oidc },
    defaultProvider,
    providers: providersInfo
  }
  fastify.decorate('oauthInfo', info)

  const prefix = flowCookiePrefix(shared.hostPrefixedCookies)
  const cookie = { ...FLOW_COOKIE, maxAge: shared.stateMaxAge }
  const usedStates = new UsedStates(shared.stateMaxAge * 1000)
  const contexts: ReadonlyMap<string, TokenContext> = new Map([...runtimes].map(([name, r]) => [name, r.tokens]))

  async function loginProvider (request: FastifyRequest): Promise<string | null> {
    const stored = readIdentity(request)
    if (stored !== null) return stored.provider ?? defaultProvider
    // A plain OAuth 2 login without mapIdentity has tokens and no identity.
    return await main.tokens.store.get(request) === null ? null : defaultProvider
  }

  const flow: OAuthFlow = {
    paths: Object.freeze({ login: shared.loginPath, callback: shared.callbackBase, logout: shared.logoutPath, afterLogin: shared.redirectAfterLogin }),
    providers: Object.freeze([...runtimes.keys()]),
    defaultProvider,
    provider (name) {
      const r = runtimes.get(name)
      return r === undefined ? undefined : { name, callbackPath: r.opts.callbackPath, revokeOnLogout: r.opts.revokeOnLogout }
    },
    revokeOnLogout: main.opts.revokeOnLogout,
    providerLogout: main.opts.providerLogout,
    async authorizationUrl (request, reply, options = {}) {
      const p = runtime(options.provider)
      const returnTo = acceptedReturnTo(request, options.returnTo)
      const state = generateState()
      // RFC 7636 §4.1: 32 random octets, base64url (43 characters); S256 only (RFC 9700 §2.1.1).
      const verifier = randomBytes(32).toString('base64url')
      const nonce = p.identity.begin()
      const name = flowCookieName(prefix, state)
      const value = encodeFlow({ provider: p.name, state, verifier, nonce, returnTo, startedAt: Date.now() })
      // The bound: the oldest flows go, and their states can never complete (a client that
      // kept the cookie is refused as for a replay).
      for (const dropped of flowsToDrop(request.cookies, prefix, name.length + value.length)) {
        reply.clearCookie(dropped.name, cookie)
        if (dropped.flow !== null) usedStates.retire(dropped.flow.state)
      }
      reply.setCookie(name, value, cookie)
      const url = new URL(p.client.authorizeURL({
        redirect_uri: p.opts.callbackUri,
        scope: p.opts.scope,
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256'
      }))
      // Core §3.1.2.1: the nonce travels in this request only; the browser keeps it in the HttpOnly flow cookie.
      if (nonce !== null) url.searchParams.set('nonce', nonce)
      return url.href
    },
    async exchangeCode (request, reply, provider) {
      const p = runtime(provider)
      const raw = request.query as Record<string, unknown>
      // The flow's single-use cookie: cleared on every outcome (its value was read from the request).
      // Only this state's: another tab's flow stays. A state given more than once is refused below;
      // each flow it names is cleared all the same (only flows this browser holds a cookie for; a
      // browser holds at most MAX_FLOWS, so the first few values are enough).
      const held = typeof raw.state === 'string' && raw.state !== '' ? flowCookieName(prefix, raw.state) : undefined
      const value = held === undefined ? undefined : request.cookies[held]
      const states = Array.isArray(raw.state) ? raw.state.slice(0, 2 * MAX_FLOWS) : [raw.state]
      for (const state of new Set(states)) {
        const name = typeof state === 'string' && state !== '' ? flowCookieName(prefix, state) : undefined
        if (name !== undefined && request.cookies[name] !== undefined) reply.clearCookie(name, cookie)
      }
      // Fastify's querystring parser gives an object of strings, or arrays of
      // strings for repeated names; parseCallbackQuery refuses anything else
      // (FSS_OAUTH_CALLBACK_INVALID), after the cookie above is cleared.
      const query = parseCallbackQuery(raw)
      if (query.error !== undefined) throw new errors.FSS_OAUTH_DENIED(providerErrorCode(query.error))
      if (query.state === undefined) throw new errors.FSS_OAUTH_STATE_INVALID('the callback has no state')
      const started = value === undefined || value === '' ? null : decodeFlow(value)
      if (started === null) {
        throw new errors.FSS_OAUTH_STATE_INVALID('no flow for this state (expired, already used, dropped for newer logins, or started in another browser)')
      }
      // A flow cookie named after this state holds this state; checked all the same.
      if (!flowMatches(started, query.state)) throw new errors.FSS_OAUTH_STATE_INVALID('the state does not match this browser\'s login')
      usedStates.consume(query.state)
      // The mix-up defence: a state is answered only at its own provider's callback.
      if (started.provider !== p.name) throw new errors.FSS_OAUTH_PROVIDER_MISMATCH()
      if (query.code === undefined) throw new errors.FSS_OAUTH_CODE_MISSING()
      // RFC 9207 and the flow's nonce: before the code is spent at the provider.
      p.identity.checkCallback(request, started.nonce)
      let answer: unknown
      try {
        // The provider's raw JSON is what gets validated, not simple-oauth2's rewritten copy.
        answer = await rawAnswerOf(() => p.client.getToken({ code: query.code as string, redirect_uri: p.opts.callbackUri, code_verifier: started.verifier }))
      } catch (err) {
        throw classifyTokenEndpointError(err, 'authorization_code')
      }
      return { provider: p.name, token: p.normalize(answer), returnTo: started.returnTo, nonce: started.nonce }
    },
    recordLogin (error, provider) {
      const counters = runtime(provider).counters
      if (error === undefined) {
        counters.logins++
        return
      }
      const code = codeOf(error)
      counters.loginFailures[code] = (counters.loginFailures[code] ?? 0) + 1
    },
    verifyIdentity: async (_request, exchanged) => {
      const identity = await runtime(exchanged.provider).identity.verify(exchanged.token, exchanged.nonce)
      // The default provider's identity is kept as the single-provider suite always kept it.
      return identity === null || exchanged.provider === defaultProvider ? identity : { ...identity, provider: exchanged.provider }
    },
    async completeLogin (request, exchanged, identity) {
      const p = runtime(exchanged.provider)
      const login = await loginProvider(request)
      const connect = login !== null && login !== p.name
      const tokens = request.tokens.for(p.name)
      const previous = connect ? await p.tokens.store.get(request) : null
      if (!connect) {
        // The same user logging in again keeps the providers they connected; anyone else starts empty.
        const carried: Array<[TokenContext, StoredToken]> = []
        const before = readIdentity(request)
        if (before !== null && identity !== null && (before.provider ?? defaultProvider) === p.name && before.sub === identity.sub && before.iss === identity.iss) {
          for (const other of contexts.values()) {
            const token = other === p.tokens ? null : await other.store.get(request)
            if (token === null) continue
            carried.push([other, token])
            // Its record goes with the old session; the new session gets a new one.
            await other.store.delete(request)
          }
        }
        // New privilege level, new session (session fixation, OWASP ASVS 3.2.1).
        request.session.regenerate()
        for (const [other, token] of carried) await other.store.set(request, token)
      }
      await tokens.store(exchanged.token)
      if (!connect) writeIdentity(request, identity)
      if (onLogin === undefined) return { connect }
      try {
        await onLogin(request, {
          provider: p.name,
          // The login's: the one just stored, or for a connect the one already there.
          identity: request.identity,
          tokenMetadata: tokenMetadata(exchanged.token),
          connect
        })
      } catch {
        // Nothing of this login stays: a login's new session goes, a connect's token is put back.
        if (connect) {
          if (previous === null) await tokens.clear()
          else await p.tokens.store.set(request, previous)
        } else {
          await tokens.clear()
          request.session.delete()
        }
        // The hook's own error is the service's: never its message (it may hold anything).
        request.log.warn({ event: 'on-login-failed', provider: p.name }, 'onLogin failed: the login is refused')
        throw new errors.FSS_OAUTH_LOGIN_HOOK_FAILED()
      }
      return { connect }
    },
    rememberIdentity: writeIdentity,
    // Back-channel logout: each OpenID Connect provider's keys verify the tokens it signs.
    logoutTokens: logoutTokenDispatch([...runtimes.values()].flatMap(({ opts, rp }) => rp === null
      ? []
      : [{ name: opts.name, issuer: rp.options.issuer, clientId: rp.options.clientId, verify: rp.verifyLogoutToken, maxAgeSeconds: rp.options.logoutTokenMaxAge + rp.options.clockTolerance }])),
    registrySubject: (provider, sub) => provider === defaultProvider ? sub : `${provider}:${sub}`,
    loginProvider,
    async endSessionRequest (request, postLogoutPath) {
      const p = runtime(await loginProvider(request))
      if (p.rp === null || p.opts.providerLogout === false) return null
      const token = await p.tokens.store.get(request)
      const built = p.rp.endSessionRequest({
        ...(token?.id_token === undefined ? {} : { idTokenHint: token.id_token }),
        postLogoutRedirectUri: new URL(postLogoutPath, p.opts.callbackUri).href,
        state: generateState()
      })
      return built === null ? null : { ...built, via: p.opts.providerLogout }
    }
  }
  fastify.decorate('oauthFlow', flow)

  // A getter, not a hook: requests that never touch tokens pay nothing. Built
  // once per request, on first access, then kept.
  fastify.decorateRequest(kTokens, null)
  fastify.decorateRequest('tokens', {
    getter (this: FastifyRequest): RequestTokens {
      const req = this as FastifyRequest & { [kTokens]: RequestTokens | null }
      return (req[kTokens] ??= requestTokens(this, contexts, defaultProvider))
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

/** The returnTo a login keeps: a checked local path, or null (the default page) with the reason logged, never the value. */
function acceptedReturnTo (request: FastifyRequest, value: unknown): string | null {
  if (value === undefined || value === '') return null
  const checked = typeof value === 'string' ? checkReturnTo(value) : { ok: false as const, reason: 'not-a-local-path' as const }
  if (checked.ok) return checked.path
  request.log.warn({ event: 'return-to-refused', reason: checked.reason }, 'returnTo refused: the login lands on the default page')
  return null
}

export default fp(oauthTokens, {
  fastify: '5.x',
  name: 'fastify-session-suite/oauth-tokens',
  dependencies: ['fastify-session-suite/session']
})
