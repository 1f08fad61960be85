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
  return new RequestTokensOf(request, contexts, defaultName)
}

// Classes, not object literals of closures: request.tokens is built on every
// request that reads a token, and its methods are then shared, not made anew.
class RequestTokensOf implements RequestTokens {
  readonly provider: string
  readonly #request: FastifyRequest
  readonly #contexts: ReadonlyMap<string, TokenContext>
  readonly #own: ProviderTokens
  #others: Map<string, ProviderTokens> | undefined

  constructor (request: FastifyRequest, contexts: ReadonlyMap<string, TokenContext>, defaultName: string) {
    this.#request = request
    this.#contexts = contexts
    this.#own = new ProviderTokensOf(request, contexts.get(defaultName) as TokenContext)
    this.provider = this.#own.provider
  }

  metadata (): Promise<TokenMetadata | null> { return this.#own.metadata() }
  accessToken (): Promise<string> { return this.#own.accessToken() }
  store (token: unknown): Promise<StoredToken> { return this.#own.store(token) }
  clear (): Promise<void> { return this.#own.clear() }
  revoke (): Promise<boolean> { return this.#own.revoke() }

  for (name: string): ProviderTokens {
    const context = this.#contexts.get(name)
    if (context === undefined) throw new errors.FSS_OAUTH_PROVIDER_UNKNOWN()
    if (name === this.#own.provider) return this.#own
    this.#others ??= new Map()
    let tokens = this.#others.get(name)
    if (tokens === undefined) this.#others.set(name, tokens = new ProviderTokensOf(this.#request, context))
    return tokens
  }
}

class ProviderTokensOf implements ProviderTokens {
  readonly provider: string
  readonly #request: FastifyRequest
  readonly #context: TokenContext

  constructor (request: FastifyRequest, context: TokenContext) {
    this.#request = request
    this.#context = context
    this.provider = context.name
  }

  async metadata (): Promise<TokenMetadata | null> {
    const { store } = this.#context
    const request = this.#request
    const token = await store.get(request)
    return token === null ? null : tokenMetadata(token)
  }

  async accessToken (): Promise<string> {
    const { name, defaultName, store, coordinator, identity, refreshSkew } = this.#context
    const request = this.#request
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
  }

  async store (raw: unknown): Promise<StoredToken> {
    const { store, normalize } = this.#context
    const request = this.#request
    // A token already in the stored shape (exchangeCode's result) is stored
    // as it is: normalizing it again would read its computed expires_at as a
    // provider-stated lifetime and lose `expiresAssumed`.
    const token = isStoredToken(raw) ? raw : normalize(raw)
    await store.set(request, token)
    return token
  }

  async clear (): Promise<void> {
    await this.#context.store.delete(this.#request)
  }

  async revoke (): Promise<boolean> {
    const { store, revoke } = this.#context
    const request = this.#request
    const token = await store.get(request)
    return token !== null && revoke !== undefined && await revoke(request, token)
  }
}
