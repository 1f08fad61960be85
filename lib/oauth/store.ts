// Where a request's token lives. The interface is small and async so that the
// Redis store (its own issue) can implement it without touching callers; the
// default keeps the token in the encrypted session cookie, which the session
// plugin splits into chunks when a large id_token pushes it past 4 KB.
import type { FastifyRequest } from 'fastify'
import type {} from '@fastify/secure-session'
import { isStoredToken, type StoredToken } from './token.ts'

declare module '@fastify/secure-session' {
  interface SessionData {
    /** the default token store's field; read back through checkedTokenStore, never trusted as is */
    oauth?: StoredToken
  }
}

export interface TokenStore {
  /**
   * The stored token, or null when there is none. The OAuth plugin checks every
   * answer again (`isStoredToken`): anything else reads as no token, and is counted.
   */
  get (request: FastifyRequest): Promise<StoredToken | null>
  set (request: FastifyRequest, token: StoredToken): Promise<void>
  delete (request: FastifyRequest): Promise<void>
}

/** The session field the default store uses. */
export const SESSION_TOKEN_FIELD = 'oauth'

export function sessionTokenStore (): TokenStore {
  const field = SESSION_TOKEN_FIELD
  return {
    async get (request) {
      // Not trusted as is: checkedTokenStore, around every store, checks it.
      return (request.session.get(field) ?? null) as StoredToken | null
    },
    async set (request, token) {
      request.session.set(field, token)
    },
    async delete (request) {
      if (request.session.get(field) !== undefined) request.session.set(field, undefined)
    }
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
