// OAuth `state` (RFC 6749 §10.12) and its one-time use.
// @fastify/oauth2 writes the state into a cookie and compares it with the
// callback's `state` parameter; we supply both functions so that the state
// has 256 bits, the comparison is constant-time, each failure has its own
// coded reason, and a state that already reached the callback is refused even
// if a client re-sends the cleared cookie (replay).
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'
import { sha256, sha256Base64url } from '../digest.ts'
import { ExpiringMap } from '../expiring-map.ts'

export interface StateCookieNames { state: string, verifier: string }

/** Cookie names; `__Host-` makes the browser refuse them from a sibling subdomain or over plain HTTP. */
export function stateCookieNames (hostPrefixed: boolean): StateCookieNames {
  const prefix = hostPrefixed ? '__Host-' : ''
  return { state: `${prefix}fss-oauth-state`, verifier: `${prefix}fss-oauth-verifier` }
}

/** 32 random bytes, base64url: 256 bits, twice the 128 bits RFC 6749 §10.10 asks of a guessable value. */
export function generateState (): string {
  return randomBytes(32).toString('base64url')
}

/** Throws FSS_OAUTH_STATE_INVALID with the reason; returns the state when it matches its cookie. */
export function checkState (request: FastifyRequest, cookieName: string): string {
  const query = request.query as Record<string, unknown>
  const state = query.state
  if (typeof state !== 'string' || state === '') throw new errors.FSS_OAUTH_STATE_INVALID('the callback has no state')
  const cookie = request.cookies[cookieName]
  if (cookie === undefined || cookie === '') {
    throw new errors.FSS_OAUTH_STATE_INVALID('no state cookie (expired, already used, or the login started in another browser)')
  }
  // Hashes have equal length, so timingSafeEqual never throws and leaks no length.
  if (!timingSafeEqual(sha256(state), sha256(cookie))) throw new errors.FSS_OAUTH_STATE_INVALID('the state does not match this browser\'s login')
  return state
}

/**
 * Remembers states that reached the callback (as sha256, for `ttlMs`, which is
 * the state cookie's lifetime, after which the cookie cannot match anyway).
 * Bounded: past `max` entries the oldest are dropped, and replay defence falls
 * back to the cleared cookie and the provider's single-use code.
 */
export class UsedStates {
  readonly #seen: ExpiringMap<true>
  readonly #ttlMs: number

  constructor (ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs
    this.#seen = new ExpiringMap(max)
  }

  /** Marks the state used; throws FSS_OAUTH_STATE_INVALID if it already was. */
  consume (state: string): void {
    const key = sha256Base64url(state)
    if (this.#seen.get(key) === true) throw new errors.FSS_OAUTH_STATE_INVALID('this state was already used (replayed callback)')
    this.#seen.set(key, true, Date.now() + this.#ttlMs)
  }
}
