// Where a request's token lives. The interface is small and async so that a
// server-side store (lib/redis/store.ts) implements it without touching callers; the
// default keeps the token in the encrypted session cookie, which the session
// plugin splits into chunks when a large id_token pushes it past 4 KB.
import type { FastifyRequest } from 'fastify'
import { getSuiteField, setSuiteField } from '../session/suite-fields.ts'
import { isStoredToken, type StoredToken } from './token.ts'

export interface TokenStore {
  /** The stored token, or null when there is none or what is stored is not a valid token. */
  get (request: FastifyRequest): Promise<StoredToken | null>
  set (request: FastifyRequest, token: StoredToken): Promise<void>
  delete (request: FastifyRequest): Promise<void>
}

/** The suite session field the default store uses (`fss.oauth`). */
export const SESSION_TOKEN_FIELD = 'oauth'

export function sessionTokenStore (): TokenStore {
  const field = SESSION_TOKEN_FIELD
  return {
    async get (request) {
      const value = getSuiteField(request.session, field)
      // Decrypted is not validated: anything that is not exactly a
      // StoredToken reads as "no token".
      return isStoredToken(value) ? value : null
    },
    async set (request, token) {
      setSuiteField(request.session, field, token)
    },
    async delete (request) {
      setSuiteField(request.session, field, undefined)
    }
  }
}

/** True when the value looks like a TokenStore (checked once, at registration). */
export function isTokenStore (value: unknown): value is TokenStore {
  if (value === null || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return typeof v.get === 'function' && typeof v.set === 'function' && typeof v.delete === 'function'
}
