// The encrypted payload: `{ ...data, __ts: issuedAt, __i: issuedAt, __c: createdAt }`
// in whole seconds. `__i` is our issue time and the one the idle timeout is
// checked against, here; `__c` carries the creation time for the absolute
// timeout, inside the ciphertext so no client can move it.
//
// Why not secure-session's `__ts` alone: its Session constructor fills a
// missing `__ts` with "now" before we can see the payload, so a payload
// without one would pass any idle check, and its expiry failure is only told
// apart by a debug-message text. `__i` is never filled by anyone but us.
// `__ts` is still written (the same value) so that instances running the
// previous release read our cookies during a rolling deploy; a payload without
// `__i` is a cookie of that release and is read on its `__ts` (drop that
// fallback one idle timeout after the last such instance is gone).
//
// Raw secure-session trusts whatever decrypts: a payload without `__ts` never
// expires and a `null` payload throws (a 500). Every decoded payload passes
// `checkPayload` here; anything else is an empty session with a reason.
//
// The suite's own fields live under SUITE_FIELD (suite-fields.ts). Release
// 0.1.0 kept them at the top level (LEGACY_FIELDS): a payload without
// SUITE_FIELD has them moved under it as it is read. So that a service's own
// field of such a name is never taken for one of ours, a payload that has one
// is always written with a SUITE_FIELD, if only an empty one.
import { SUITE_FIELD } from './suite-fields.ts'

/** Top-level fields of release 0.1.0 → their names under SUITE_FIELD. */
const LEGACY_FIELDS: ReadonlyArray<readonly [string, string]> = [['oauth', 'oauth'], ['tokenRef', 'tokenRef'], ['fssPersistenceTest', 'persistenceTest']]

export const ISSUED = '__ts'
export const OWN_ISSUED = '__i'
export const CREATED = '__c'
export const RESERVED: ReadonlySet<string> = new Set([ISSUED, OWN_ISSUED, CREATED])

/** Tolerated clock difference between instances behind one load balancer. */
export const CLOCK_SKEW = 60

/** What TypeBox's `Type.Integer({ minimum: 0 })` checks, for the two times. */
function isTime (value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0
}

export type RejectReason =
  | 'format' // not our cookie syntax, bad base64 or percent-escape
  | 'decrypt' // too short, wrong nonce length, MAC failure, unknown key
  | 'idle' // idle timeout passed since the issue time
  | 'payload' // plaintext not JSON, null, or not an object
  | 'timestamp' // no valid issued/created time
  | 'future' // a time beyond the tolerated skew
  | 'absolute' // absolute timeout passed
  | 'duplicate' // the same cookie name twice
  | 'chunks' // a chunk missing or out of bounds
  | 'revoked' // the session registry says this session was ended

export interface Payload { data: Record<string, unknown>, createdAt: number, issuedAt: number }

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

/**
 * `data` is secure-session's `session.data()` of what it decoded, and
 * `legacyIssuedAt` its `__ts` (used only for a payload without `__i`): a
 * plaintext that is not JSON or is `null`/a primitive makes its decoder throw
 * (the sealer maps that to 'payload'), and an array arrives spread into an
 * object without a creation time. `data()` returns a fresh copy without
 * `__ts`, so it becomes the session's data as is (`__c` and `__i` taken out):
 * no further copies on the read path.
 */
export function checkPayload (data: Record<string, unknown>, legacyIssuedAt: unknown, idleTimeout: number, absoluteTimeout: number): Payload | RejectReason {
  const own = data[OWN_ISSUED]
  const issuedAt = own === undefined ? legacyIssuedAt : own
  const createdAt = data[CREATED]
  const problem = checkTimes(issuedAt, createdAt, idleTimeout, absoluteTimeout)
  if (problem !== undefined) return problem
  delete data[CREATED]
  delete data[OWN_ISSUED]
  if (!Object.hasOwn(data, SUITE_FIELD)) adoptLegacyFields(data)
  // checkTimes() accepted both: whole seconds
  return { data, createdAt: createdAt as number, issuedAt: issuedAt as number }
}

/**
 * Whether a session issued and created at these times is usable now: run on
 * every read, including a session served from the cache of decoded sessions,
 * since the idle and absolute limits move with the clock.
 */
export function checkTimes (issuedAt: unknown, createdAt: unknown, idleTimeout: number, absoluteTimeout: number): RejectReason | undefined {
  if (!isTime(issuedAt) || !isTime(createdAt)) return 'timestamp'
  const now = nowSeconds()
  if (issuedAt > now + CLOCK_SKEW || createdAt > now + CLOCK_SKEW) return 'future'
  if (createdAt > issuedAt) return 'timestamp'
  // The same instant secure-session's own check used: expired once
  // now ≥ issuedAt + idleTimeout.
  if (issuedAt + idleTimeout <= now) return 'idle'
  if (createdAt + absoluteTimeout <= now) return 'absolute'
  return undefined
}

function adoptLegacyFields (data: Record<string, unknown>): void {
  let fields: Record<string, unknown> | undefined
  for (const [legacy, name] of LEGACY_FIELDS) {
    if (data[legacy] === undefined) continue
    (fields ??= {})[name] = data[legacy]
    delete data[legacy]
  }
  if (fields !== undefined) data[SUITE_FIELD] = fields
}

/** Sets a field; an own `__proto__` field (JSON.parse makes them) stays a field instead of setting the prototype. */
export function putField (out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true })
  else out[key] = value
}

/**
 * The payload without its three times: what reading back the cookie sealed
 * from it decodes to. A copy, not `delete` on the payload: deleting fields
 * turns a V8 object into a slow dictionary, for whoever reads it next.
 */
export function withoutTimes (payload: Record<string, unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {}
  const keys = Object.keys(payload)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (RESERVED.has(key)) continue
    putField(data, key, payload[key])
  }
  return data
}

export function buildPayload (data: Record<string, unknown>, createdAt: number, issuedAt: number): Record<string, unknown> {
  // Copied key by key, not with `{ ...data }`: a decoded session's data is a
  // dictionary-mode object (secure-session's data() deletes `__ts` from the
  // middle of it), and V8 spreads those on a slow path, ten times slower here.
  const payload: Record<string, unknown> = {}
  const keys = Object.keys(data)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    putField(payload, key, data[key])
  }
  if (data[SUITE_FIELD] === undefined && LEGACY_FIELDS.some(([legacy]) => data[legacy] !== undefined)) payload[SUITE_FIELD] = {}
  // Internal fields last: user data cannot shadow them (set() refuses them too).
  payload[ISSUED] = issuedAt
  payload[OWN_ISSUED] = issuedAt
  payload[CREATED] = createdAt
  return payload
}
