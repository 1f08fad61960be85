// The per-request token API (`request.tokens`): one provider's stored token,
// read, refreshed through that provider's single-flight coordinator, stored,
// cleared or revoked. Values leave it only through accessToken().
import type { FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'
import { isStoredToken, tokenMetadata, type StoredToken, type TokenMetadata } from './token.ts'
import type { TokenStore } from './store.ts'
import { isRefreshTokenSpent, type RefreshCoordinator } from './refresh.ts'
import { readIdentity, writeIdentity, type LoginIdentity } from './identity.ts'

/** The per-request token API of one provider. Values leave it only through accessToken(). */
export interface ProviderTokens {
  /** the provider these tokens belong to (`default` for the single-provider options) */
  readonly provider: string
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

/** `request.tokens`: the default provider's tokens, and every provider's through for(name). */
export interface RequestTokens extends ProviderTokens {
  /** The token API of the provider `name`; throws FSS_OAUTH_PROVIDER_UNKNOWN for a name not configured. */
  for (name: string): ProviderTokens
}

export interface TokenContext {
  name: string
  /** the default provider's name: a login identity without a provider name is its */
  defaultName: string
  store: TokenStore
  coordinator: RefreshCoordinator
  normalize: (raw: unknown) => StoredToken
  refreshSkew: number
  identity: LoginIdentity
  /** undefined when the provider has no revocation endpoint */
  revoke: ((request: FastifyRequest, token: StoredToken) => Promise<boolean>) | undefined
}

/** `request.tokens` over every provider's context; `defaultName` is the one it serves itself. */
export function requestTokens (request: FastifyRequest, contexts: ReadonlyMap<string, TokenContext>, defaultName: string): RequestTokens {
  const built = new Map<string, ProviderTokens>()
  const tokensOf = (name: string): ProviderTokens => {
    const context = contexts.get(name)
    if (context === undefined) throw new errors.FSS_OAUTH_PROVIDER_UNKNOWN()
    let tokens = built.get(name)
    if (tokens === undefined) built.set(name, tokens = providerTokens(request, context))
    return tokens
  }
  const own = tokensOf(defaultName)
  return {
    provider: own.provider,
    metadata: () => own.metadata(),
    accessToken: () => own.accessToken(),
    store: (token) => own.store(token),
    clear: () => own.clear(),
    revoke: () => own.revoke(),
    for: tokensOf
  }
}

function providerTokens (request: FastifyRequest, { name, defaultName, store, coordinator, normalize, identity, refreshSkew, revoke }: TokenContext): ProviderTokens {
  return {
    provider: name,
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
      // The login's identity binds the id_tokens of the provider it came from only.
      const login = readIdentity(request)
      const bound = login !== null && (login.provider ?? defaultName) === name ? login : null
      try {
        await identity.checkRefreshed(bound, fresh, token)
      } catch (err) {
        // Core §12.2: another user's (or an unverifiable) id_token ends this login.
        await store.delete(request)
        if (bound !== null) writeIdentity(request, null)
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
