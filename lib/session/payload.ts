// The encrypted payload: `{ ...data, __ts: issuedAt, __c: createdAt }` in
// whole seconds. `__ts` is the field @fastify/secure-session checks against its
// `expiry` (our idle timeout); `__c` carries the creation time for the absolute
// timeout, inside the ciphertext so no client can move it.
//
// Raw secure-session trusts whatever decrypts: a payload without `__ts` never
// expires and a `null` payload throws (a 500). Every decoded payload passes
// `checkPayload` here; anything else is an empty session with a reason.
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

export const ISSUED = '__ts'
export const CREATED = '__c'
export const RESERVED: ReadonlySet<string> = new Set([ISSUED, CREATED])

/** Tolerated clock difference between instances behind one load balancer. */
export const CLOCK_SKEW = 60

const payloadSchema = Type.Object({
  [ISSUED]: Type.Integer({ minimum: 0 }),
  [CREATED]: Type.Integer({ minimum: 0 })
})
const checkShape = TypeCompiler.Compile(payloadSchema)

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
 * `raw` is what secure-session decoded, already an object: a plaintext that is
 * not JSON or is `null`/a primitive makes its decoder throw (the sealer maps
 * that to 'payload'), and an array arrives spread into an object without times.
 */
export function checkPayload (raw: Record<string, unknown>, absoluteTimeout: number): Payload | RejectReason {
  if (!checkShape.Check(raw)) return 'timestamp'
  const issuedAt = raw[ISSUED]
  const createdAt = raw[CREATED]
  const now = nowSeconds()
  if (issuedAt > now + CLOCK_SKEW || createdAt > now + CLOCK_SKEW) return 'future'
  if (createdAt > issuedAt) return 'timestamp'
  if (createdAt + absoluteTimeout <= now) return 'absolute'
  const data: Record<string, unknown> = { ...raw }
  delete data[ISSUED]
  delete data[CREATED]
  return { data, createdAt, issuedAt }
}

export function buildPayload (data: Record<string, unknown>, createdAt: number, issuedAt: number): Record<string, unknown> {
  // Internal fields last: user data cannot shadow them (set() refuses them too).
  return { ...data, [ISSUED]: issuedAt, [CREATED]: createdAt }
}
