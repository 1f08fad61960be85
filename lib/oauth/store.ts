// Where a request's token lives. The interface is small and async so that a
// server-side store (lib/redis/store.ts) implements it without touching callers; the
// default keeps the token in the encrypted session cookie, which the session
// plugin splits into chunks when a large id_token pushes it past 4 KB.
import type { FastifyRequest } from 'fastify'
import { getSuiteField, setSuiteField } from '../session/suite-fields.ts'
import { isStoredToken, type StoredToken } from './token.ts'

export interface TokenStore {
  /**
   * The stored token, or null when there is none. The OAuth plugin checks every
   * answer again (`isStoredToken`): anything else reads as no token, and is counted.
   */
  get (request: FastifyRequest): Promise<StoredToken | null>
  set (request: FastifyRequest, token: StoredToken): Promise<void>
  delete (request: FastifyRequest): Promise<void>
  /**
   * The store of another provider's tokens (`oauth.providers`): its own record, never the same
   * as this one's. Needed only with several providers; `name` matches `^[a-z0-9][a-z0-9_-]{0,31}$`.
   */
  forProvider?: (name: string) => TokenStore
}

/** The suite session field the default store uses (`fss.oauth`). */
export const SESSION_TOKEN_FIELD = 'oauth'

/** The cookie store: `fss.oauth` for the default provider, `fss.oauth:<name>` for another. */
export function sessionTokenStore (field = SESSION_TOKEN_FIELD): TokenStore {
  return {
    async get (request) {
      // Decrypted is not validated: checkedTokenStore, around every store, checks it.
      return (getSuiteField(request.session, field) ?? null) as StoredToken | null
    },
    async set (request, token) {
      setSuiteField(request.session, field, token)
    },
    async delete (request) {
      setSuiteField(request.session, field, undefined)
    },
    forProvider: (name) => sessionTokenStore(`${SESSION_TOKEN_FIELD}:${name}`)
  }
}

/** True when the value looks like a TokenStore (checked once, at registration). */
export function isTokenStore (value: unknown): value is TokenStore {
  if (value === null || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return typeof v.get === 'function' && typeof v.set === 'function' && typeof v.delete === 'function'
}

/**
 * `store` with every answer checked: a record from a cookie of an older
 * release, a Redis record, or an application's own store is used only when it
 * is exactly a token the suite could have stored. Anything else reads as no
 * token, and `rejected` is told (a counter, a log line without the value).
 */
export function checkedTokenStore (store: TokenStore, rejected: (request: FastifyRequest) => void): TokenStore {
  return {
    async get (request) {
      const value: unknown = await store.get(request)
      if (value === null || value === undefined) return null
      if (isStoredToken(value)) return value
      rejected(request)
      return null
    },
    set: (request, token) => store.set(request, token),
    delete: (request) => store.delete(request)
  }
}
