// The object behind request.session. It keeps the runtime shape of
// @fastify/secure-session's Session (get/set/data/delete/options/touch/
// regenerate, `changed`/`deleted`, and property access through a Proxy with the
// same rules), so code and plugins written for secure-session (for example
// @fastify/csrf-protection with sessionPlugin '@fastify/secure-session') work
// unchanged. Internal state lives under symbols so it never shadows a field.
import type { SerializeOptions } from '@fastify/cookie'
import type { Session } from '@fastify/secure-session'
import { errors } from '../errors.ts'
import { RESERVED, nowSeconds, type Payload } from './payload.ts'
import { SESSION_ID_FIELD, SUITE_FIELD } from './suite-fields.ts'

export const kData = Symbol('fss.session.data')
export const kCreated = Symbol('fss.session.createdAt')
export const kIssued = Symbol('fss.session.issuedAt')
export const kOptions = Symbol('fss.session.options')
export const kRegenerated = Symbol('fss.session.regenerated')

// Per-response cookie options a caller may change with session.options().
// Name, Path, Domain, Secure and HttpOnly stay as the policy says: changing
// them per response would strand chunks under other attributes and undo the
// `__Host-` guarantees.
const ADJUSTABLE = ['maxAge', 'sameSite', 'priority', 'partitioned'] as const
export type AdjustableOptions = Pick<SerializeOptions, typeof ADJUSTABLE[number]>

// Names that reach an object's prototype machinery wherever the data is later
// copied with plain assignment (`obj[key] = v` on `__proto__` replaces the
// prototype). The storage itself has no prototype, so reads never return an
// Object.prototype member; these names are refused outright.
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

/** A prototype-less copy of `data`: `get('toString')` is undefined, not a function. */
function storage (data?: Record<string, unknown>): Record<string, unknown> {
  return Object.assign(Object.create(null) as Record<string, unknown>, data)
}

export class SessionObject {
  changed = false
  deleted = false;
  [kData]: Record<string, unknown>;
  /** seconds; set for a session read from a cookie or after regenerate() */
  [kCreated]: number;
  /** seconds; when the cookie we read was issued, undefined for a new session */
  [kIssued]: number | undefined;
  [kOptions]: AdjustableOptions | null = null;
  /** true once regenerate() ran in this request: the session no longer is the one its cookie held */
  [kRegenerated] = false

  constructor (payload?: Payload) {
    this[kData] = storage(payload?.data)
    this[kCreated] = payload?.createdAt ?? nowSeconds()
    this[kIssued] = payload?.issuedAt
  }

  get (key: string): unknown {
    return this[kData][key]
  }

  set (key: string, value: unknown): void {
    if (RESERVED.has(key) || FORBIDDEN_KEYS.has(key)) throw new errors.FSS_SESSION_KEY_RESERVED(key)
    this.changed = true
    // Same as secure-session: setting undefined keeps the key, JSON drops it.
    this[kData][key] = value
  }

  data (): Record<string, unknown> {
    return { ...this[kData] }
  }

  /** Ends the session: every cookie of it is expired on this response. */
  delete (): void {
    this.deleted = true
    this.changed = true
  }

  options (opts: SerializeOptions): void {
    const picked: Record<string, unknown> = {}
    for (const k of ADJUSTABLE) if (opts[k] !== undefined) picked[k] = opts[k]
    this[kOptions] = picked as AdjustableOptions
  }

  /** Re-issue the cookie on this response, extending the idle window. */
  touch (): void {
    this.changed = true
  }

  /**
   * A new session for a new privilege level (login): drops every field but
   * `ignoreFields` and starts a new creation time, so the absolute timeout
   * counts from the login. It also undoes an earlier delete() in this request.
   */
  regenerate (ignoreFields?: string[]): void {
    const kept = storage()
    if (Array.isArray(ignoreFields)) {
      for (const k of ignoreFields) if (Object.hasOwn(this[kData], k)) kept[k] = this[kData][k]
    }
    // The registry id names the session before this call: a kept suite
    // namespace never carries it into the new one (it gets its own at login).
    const own = kept[SUITE_FIELD]
    if (typeof own === 'object' && own !== null && Object.hasOwn(own, SESSION_ID_FIELD)) {
      const { [SESSION_ID_FIELD]: _old, ...rest } = own as Record<string, unknown>
      kept[SUITE_FIELD] = rest
    }
    this[kData] = kept
    this[kCreated] = nowSeconds()
    this[kRegenerated] = true
    this.deleted = false
    this.changed = true
  }
}

// The rules of secure-session's proxy: methods are bound, own properties
// (`changed`, `deleted`) are the object's, any other name is a session field.
const handler: ProxyHandler<SessionObject> = {
  get (target, prop) {
    const value = (target as unknown as Record<string | symbol, unknown>)[prop]
    if (typeof value === 'function') return value.bind(target)
    if (Object.hasOwn(target, prop)) return value
    return typeof prop === 'string' ? target.get(prop) : undefined
  },
  set (target, prop, value) {
    if (Object.hasOwn(target, prop)) {
      (target as unknown as Record<string | symbol, unknown>)[prop] = value
    } else if (typeof prop === 'string') {
      target.set(prop, value)
    } else {
      return false
    }
    return true
  }
}

export function createSession (payload?: Payload): { target: SessionObject, proxy: Session } {
  const target = new SessionObject(payload)
  return { target, proxy: new Proxy(target, handler) as unknown as Session }
}
