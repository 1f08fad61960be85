// The encrypted payload: `{ ...data, __ts: issuedAt, __c: createdAt }` in
// whole seconds. `__ts` is the field @fastify/secure-session checks against its
// `expiry` (our idle timeout); `__c` carries the creation time for the absolute
// timeout, inside the ciphertext so no client can move it.
//
// Raw secure-session trusts whatever decrypts: a payload without `__ts` never
// expires and a `null` payload throws (a 500). Every decoded payload passes
// `checkPayload` here; anything else is an empty session with a reason.
export const ISSUED = '__ts'
export const CREATED = '__c'
export const RESERVED: ReadonlySet<string> = new Set([ISSUED, CREATED])

/** Tolerated clock difference between instances behind one load balancer. */
export const CLOCK_SKEW = 60

/** What TypeBox's `Type.Integer({ minimum: 0 })` checks, for the two times. */
function isTime (value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0
}

export type RejectReason =
  | 'format' // not our cookie syntax, bad base64 or percent-escape
  | 'decrypt' // too short, wrong nonce length, MAC failure, unknown key
  | 'idle' // idle timeout passed (secure-session's expiry)
  | 'payload' // plaintext not JSON, null, or not an object
  | 'timestamp' // no valid issued/created time
  | 'future' // a time beyond the tolerated skew
  | 'absolute' // absolute timeout passed
  | 'duplicate' // the same cookie name twice
  | 'chunks' // a chunk missing or out of bounds

export interface Payload { data: Record<string, unknown>, createdAt: number, issuedAt: number }

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

/**
 * `data` is secure-session's `session.data()` of what it decoded, and
 * `issuedAt` its `__ts`: a plaintext that is not JSON or is `null`/a primitive
 * makes its decoder throw (the sealer maps that to 'payload'), and an array
 * arrives spread into an object without a creation time. `data()` returns a
 * fresh copy without `__ts`, so it becomes the session's data as is (only
 * `__c` is taken out): no further copies on the read path.
 */
export function checkPayload (data: Record<string, unknown>, issuedAt: unknown, absoluteTimeout: number): Payload | RejectReason {
  const createdAt = data[CREATED]
  if (!isTime(issuedAt) || !isTime(createdAt)) return 'timestamp'
  const now = nowSeconds()
  if (issuedAt > now + CLOCK_SKEW || createdAt > now + CLOCK_SKEW) return 'future'
  if (createdAt > issuedAt) return 'timestamp'
  if (createdAt + absoluteTimeout <= now) return 'absolute'
  delete data[CREATED]
  return { data, createdAt, issuedAt }
}

export function buildPayload (data: Record<string, unknown>, createdAt: number, issuedAt: number): Record<string, unknown> {
  // Internal fields last: user data cannot shadow them (set() refuses them too).
  return { ...data, [ISSUED]: issuedAt, [CREATED]: createdAt }
}
