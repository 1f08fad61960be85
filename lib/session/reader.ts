// The read path: a request's session cookies → its session, decoded on first
// access only. Any cookie that is not a session of ours is an empty session
// with a reason, counted and logged by size, never by value.
import type { FastifyRequest } from 'fastify'
import type { Session } from '@fastify/secure-session'
import type { SessionPolicy } from './policy.ts'
import { readCookies, type ReceivedCookies } from './codec.ts'
import { checkTimes, type Payload, type RejectReason } from './payload.ts'
import type { DecodedCache, DecodedCacheKey } from './decoded-cache.ts'
import { createSession, type SessionObject } from './session-object.ts'
import type { Sealer } from './sealer.ts'
import { getSuiteField, SESSION_ID_FIELD } from './suite-fields.ts'

export interface SessionCounters {
  /** requests that read a session cookie (lazy: routes that never touch request.session add nothing) */
  decoded: number
  issued: number
  chunked: number
  rolled: number
  rotated: number
  deleted: number
  tooLarge: number
  rejected: Record<string, number>
}

/** One request's session: what was received, what it became, and whether it was written back. */
export interface RequestState {
  target: SessionObject
  proxy: Session
  received: ReceivedCookies
  /** opened with an older key: re-sealed with the newest on this response */
  rotated: boolean
  rejected?: RejectReason
  written: boolean
  policy: SessionPolicy
  /** the received cookie's key in the cache of decoded sessions, when it is in there */
  cacheKey?: DecodedCacheKey
}

export function newCounters (): SessionCounters {
  return { decoded: 0, issued: 0, chunked: 0, rolled: 0, rotated: 0, deleted: 0, tooLarge: 0, rejected: {} }
}

/** Decodes the request's session cookies (called on the first read of request.session). */
export function readSession (request: FastifyRequest, policy: SessionPolicy, sealer: Sealer, counters: SessionCounters, cache: DecodedCache | null): RequestState {
  const received = readCookies(request.headers.cookie, policy.cookieName)
  let reason: RejectReason | undefined = received.problem
  let payload: Payload | undefined
  let rotated = false
  let cacheKey: DecodedCacheKey | undefined
  if (reason === undefined && received.value !== null) {
    counters.decoded++
    const opened = decode(received.value, received.parts, policy, sealer, cache)
    if (typeof opened === 'string') {
      reason = opened
    } else {
      payload = opened.payload
      rotated = opened.rotated
      cacheKey = opened.key
    }
  }
  // A check of the decoded session against server-side state belongs here,
  // after decode(): it then runs on cached and freshly opened reads alike.
  if (reason !== undefined) {
    counters.rejected[reason] = (counters.rejected[reason] ?? 0) + 1
    // Sizes and the reason only: never the cookie value.
    request.log.debug({ reason, bytes: received.bytes, chunks: received.chunks }, 'session cookie rejected: empty session')
  }
  const { target, proxy } = createSession(payload)
  return { target, proxy, received, rotated, rejected: reason, written: false, policy, cacheKey }
}

interface Decoded { payload: Payload, rotated: boolean, key?: DecodedCacheKey }

/**
 * The decode step. A value decoded before comes from the cache of decoded
 * sessions, as this request's own copy, with its times checked again now (the
 * idle and absolute limits move with the clock); any other value is opened by
 * the sealer and, when it opened with the newest key, remembered. One opened
 * with an older key is not: this response re-seals it anyway.
 */
function decode (value: string, parts: readonly string[], policy: SessionPolicy, sealer: Sealer, cache: DecodedCache | null): Decoded | RejectReason {
  if (cache === null) return sealer.open(value)
  const key = cache.key(value, parts)
  const hit = cache.get(key)
  if (hit !== undefined) {
    const expired = checkTimes(hit.issuedAt, hit.createdAt, policy.idleTimeout, policy.absoluteTimeout)
    if (expired === undefined) return { payload: hit, rotated: false, key }
    cache.delete(key)
    return expired
  }
  const opened = sealer.open(value)
  if (typeof opened === 'string' || opened.rotated) return opened
  // set() keeps its own copy: this request's writes never reach it
  return cache.set(key, opened.payload) ? { ...opened, key } : opened
}

/**
 * True when the session with this registry id was ended and must read as
 * empty: at once when the process knows, else a promise (which may reject
 * with FSS_STORE_UNAVAILABLE).
 */
export type RevocationCheck = (id: string) => boolean | Promise<boolean>

/**
 * After the decode: a session the registry tracks is checked once per
 * request. A revoked one becomes an empty session with the reason `revoked`,
 * so its cookies are expired on this response. A check that cannot answer
 * rejects, and the request fails (503) rather than serve a session that may
 * have been ended, or overwrite one that was not. Returns a promise only when
 * the check had to wait for its answer.
 */
export function checkRevocation (request: FastifyRequest, state: RequestState, check: RevocationCheck, counters: SessionCounters): Promise<void> | undefined {
  // The target, not the proxy: the same get(), without a bound method per call.
  const id = getSuiteField(state.target as unknown as Session, SESSION_ID_FIELD)
  if (id === undefined) return undefined
  const answer = check(String(id))
  if (typeof answer === 'boolean') {
    if (answer) revoke(request, state, counters)
    return undefined
  }
  return answer.then((revoked) => {
    if (revoked) revoke(request, state, counters)
  })
}

function revoke (request: FastifyRequest, state: RequestState, counters: SessionCounters): void {
  const { target, proxy } = createSession()
  state.target = target
  state.proxy = proxy
  state.rotated = false
  state.rejected = 'revoked'
  counters.rejected.revoked = (counters.rejected.revoked ?? 0) + 1
  request.log.debug({ reason: 'revoked' }, 'session revoked: empty session')
}
