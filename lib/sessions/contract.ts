// What every session registry store promises, whatever keeps the records.
// A session is live exactly while its record exists: revoking deletes it, the
// absolute timeout expires it, and a record that cannot be read is treated as
// absent. Revocation needs no tombstone to stay final: register() refuses an
// id that was ever registered, until it would have expired anyway.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.ts'
import { DEVICE_LABEL_MAX } from './device.ts'
import { isSessionId } from './id.ts'

/** Why a session ended; a fixed set, so the counters stay bounded. */
export const REVOCATION_REASONS = ['logout', 'user', 'others', 'admin', 'backchannel', 'evicted'] as const
export type RevocationReason = typeof REVOCATION_REASONS[number]

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{21}[AQgw]$' })
// OpenID Connect Core 1.0 §2: `sub` is at most 255 ASCII characters; `sid` is
// as opaque, and held to the same bound.
const Sub = Type.String({ minLength: 1, maxLength: 255 })
// A login provider other than the default qualifies its subject with its name (at most 32 characters and a colon).
const QualifiedSub = Type.String({ minLength: 1, maxLength: 288 })
const Provider = Type.String({ minLength: 1, maxLength: 100 })
const Millis = Type.Integer({ minimum: 0, description: 'ms since the epoch' })

/** One session as a store keeps it. Times are ms since the epoch. */
export const SessionRecordSchema = Type.Object({
  id: Id,
  /** The user's subject identifier (unique across the providers this app uses). */
  sub: QualifiedSub,
  provider: Provider,
  /** The provider's session id (OIDC `sid`), kept for back-channel logout. */
  sid: Type.Optional(Sub),
  createdAt: Millis,
  /** Written at most once per touch interval, so it lags by up to that interval. */
  lastSeenAt: Millis,
  /** createdAt + the absolute timeout: the record is gone after this. */
  expiresAt: Millis,
  /** "Browser on OS" from deviceLabel(), never the raw user agent. */
  device: Type.String({ minLength: 1, maxLength: DEVICE_LABEL_MAX })
}, { additionalProperties: false })
export type SessionRecord = Static<typeof SessionRecordSchema>

export const RegisterInputSchema = Type.Object({
  /** From createSessionId(): a fresh id, never one registered before. */
  id: Id,
  sub: QualifiedSub,
  provider: Provider,
  sid: Type.Optional(Sub),
  /** The User-Agent header as received; only its deviceLabel() is kept. */
  userAgent: Type.Optional(Type.String())
}, { additionalProperties: false })
export type RegisterInput = Static<typeof RegisterInputSchema>

export interface RevokeAllOptions {
  /** A session id to keep: the caller's own, for "sign out everywhere else". */
  except?: string
  reason: RevocationReason
}

export interface StoreCounters {
  registered: number
  /** Sessions this instance ended, by reason (an eviction from a full memory store counts as `evicted`). */
  revoked: Record<RevocationReason, number>
  /** Records (or index entries) that failed to open or validate and were read as absent. */
  undecodable: number
}

/** The contract the in-memory and the Redis store both keep. Every method may reject with FSS_STORE_UNAVAILABLE (Redis). */
export interface SessionRegistryStore {
  /** `memory`: one process only (say so in /health); `redis`: shared by every instance. */
  readonly kind: 'memory' | 'redis'
  /** Records a new live session; refuses an id registered before (live, revoked or evicted) within its lifetime. */
  register: (input: RegisterInput) => Promise<SessionRecord>
  /** Writes lastSeenAt when it is older than the touch interval; true when it wrote. */
  touch: (id: string) => Promise<boolean>
  /**
   * False when touch(id) would surely write nothing: this process saw the
   * session within the touch interval. Synchronous, so the per-request check
   * starts a touch (and its promise) only when one may be due.
   */
  touchDue: (id: string) => boolean
  /** The user's live sessions, most recently seen first (at most LIST_MAX). */
  list: (sub: string) => Promise<SessionRecord[]>
  /** The live record, or null (never registered, revoked, expired, unreadable, or a malformed id). */
  get: (id: string) => Promise<SessionRecord | null>
  /** Ends one session: true when it was live and this call ended it. A malformed id is FSS_SESSION_ID_INVALID. */
  revoke: (id: string, reason: RevocationReason) => Promise<boolean>
  /** Ends every live session of the user but `except`; the ids it ended. */
  revokeAll: (sub: string, opts: RevokeAllOptions) => Promise<string[]>
  /** Ends the sessions logged in through the provider session `sid` (back-channel logout); the ids it ended. */
  revokeBySid: (provider: string, sid: string) => Promise<string[]>
  /** True when the id is not a live session. Asks the store itself: the per-request check is the registry's view. */
  isRevoked: (id: string) => Promise<boolean>
  counters: () => StoreCounters
  close: () => Promise<void>
}

/** The most sessions list() returns for one user. */
export const LIST_MAX = 200

/** Time source and timers; the default is the system's, tests pass @sinonjs/fake-timers. */
export interface Clock {
  now: () => number
  setInterval (fn: () => void, ms: number): unknown
  clearInterval (handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval (fn, ms) {
    // A heartbeat must never keep the process alive on its own.
    return setInterval(fn, ms).unref()
  },
  clearInterval (handle) {
    clearInterval(handle as NodeJS.Timeout)
  }
}

export function emptyCounters (): StoreCounters {
  const revoked = Object.fromEntries(REVOCATION_REASONS.map((r) => [r, 0])) as Record<RevocationReason, number>
  return { registered: 0, revoked, undecodable: 0 }
}

export function copyCounters (c: StoreCounters): StoreCounters {
  return { ...c, revoked: { ...c.revoked } }
}

const registerInput = TypeCompiler.Compile(RegisterInputSchema)
const sessionRecord = TypeCompiler.Compile(SessionRecordSchema)

/** The input, checked; a malformed id is FSS_SESSION_ID_INVALID, any other field FSS_SESSION_RECORD_INVALID naming it. */
export function checkRegisterInput (input: RegisterInput): RegisterInput {
  if (!isSessionId(input?.id)) throw new errors.FSS_SESSION_ID_INVALID()
  if (registerInput.Check(input)) return input
  // Check() failed, so there is a first error; the id check above means the
  // input is an object, so its path names a top-level field.
  const [first] = [...registerInput.Errors(input)]
  // The message names the field and the expected shape, never the value.
  throw new errors.FSS_SESSION_RECORD_INVALID(first.path.slice(1), first.message)
}

export function newRecord (input: RegisterInput, device: string, now: number, absoluteTimeout: number): SessionRecord {
  const record: SessionRecord = {
    id: input.id,
    sub: input.sub,
    provider: input.provider,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + absoluteTimeout * 1000,
    device
  }
  if (input.sid !== undefined) record.sid = input.sid
  return record
}

/** JSON text to a record, or null for anything that is not exactly one (garbage, null, wrong types, extra fields). */
export function decodeRecord (text: string): SessionRecord | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  return sessionRecord.Check(value) ? value : null
}

export function assertRevocableId (id: unknown): asserts id is string {
  if (!isSessionId(id)) throw new errors.FSS_SESSION_ID_INVALID()
}
