// Refresh single-flight, per refresh token, within one process.
//
// Why: refresh tokens are often single-use (rotation, RFC 9700 §4.14.2). If two
// requests carrying the same cookie both refresh, the second replays a used
// refresh token and the provider may revoke the whole token family. So:
//  - in flight: every caller with the same refresh token awaits one call;
//  - recently refreshed (grace window): a request that still carries the old
//    cookie (sent before the winner's Set-Cookie arrived) gets the winner's
//    token instead of replaying the old refresh token, and writes that;
//  - recently failed (backoff window): callers get the same coded error
//    without a new call, so a broken provider is not hammered in a tight loop.
// Entries are keyed by sha256 of the refresh token; the token itself is never
// a key, a log field or part of an error.
import { createHash } from 'node:crypto'
import { errors } from '../errors.ts'
import { failureKind, type FailureKind } from './provider-errors.ts'
import type { StoredToken } from './token.ts'

type CodedError = Error & { code: string, statusCode?: number }

export interface RefreshCoordinatorOptions {
  /** POSTs grant_type=refresh_token; resolves to the raw token response or rejects with a coded error */
  call: (refreshToken: string) => Promise<unknown>
  /** validates + normalizes a raw response (throws FSS_TOKEN_INVALID) */
  normalize: (raw: unknown) => StoredToken
  /** ms during which a failed refresh token answers the same error without a call */
  backoffMs: number
  /** ms during which a refreshed token is handed to late callers still holding the old refresh token */
  graceMs: number
  /** bound on remembered entries (each map) */
  maxEntries?: number
  /** cross-process single-flight (the Redis plugin's `fleet`); runs `fn` once across instances */
  lock?: RefreshLock
}

/** Shape of a cross-instance lock such as the Redis token store's `fleet`. */
export interface RefreshLock {
  refresh: <T>(refreshToken: string, fn: () => Promise<T>) => Promise<T>
}

export interface RefreshCounters {
  /** successful token-endpoint refreshes */
  refreshes: number
  /** callers served by an in-flight or just-finished refresh instead of their own call */
  shared: number
  failures: Record<FailureKind, number>
  /** callers answered from the backoff window */
  backedOff: number
}

interface Remembered<T> { value: T, until: number }

export class RefreshCoordinator {
  readonly counters: RefreshCounters = {
    refreshes: 0,
    shared: 0,
    failures: { rejected: 0, provider: 0, timeout: 0, invalid: 0 },
    backedOff: 0
  }

  /** the last refresh failure (epoch ms + code), for health output */
  lastFailure: { at: number, code: string } | null = null

  readonly #opts: RefreshCoordinatorOptions & { maxEntries: number }
  readonly #inflight = new Map<string, Promise<StoredToken>>()
  readonly #recent = new Map<string, Remembered<StoredToken>>()
  readonly #failed = new Map<string, Remembered<string>>()

  constructor (opts: RefreshCoordinatorOptions) {
    this.#opts = { maxEntries: 10_000, ...opts }
  }

  /** Requests in flight right now (for tests and health output). */
  get inflight (): number {
    return this.#inflight.size
  }

  /** A fresh token for `token` (which must hold a refresh_token). Throws coded errors. */
  refresh (token: StoredToken & { refresh_token: string }): Promise<StoredToken> {
    const key = createHash('sha256').update(token.refresh_token).digest('base64url')
    const now = Date.now()
    const recent = this.#recent.get(key)
    if (recent !== undefined && recent.until > now) {
      this.counters.shared++
      return Promise.resolve(recent.value)
    }
    const failed = this.#failed.get(key)
    if (failed !== undefined && failed.until > now) {
      this.counters.backedOff++
      return Promise.reject(recreate(failed.value))
    }
    const running = this.#inflight.get(key)
    if (running !== undefined) {
      this.counters.shared++
      return running
    }
    const flight = this.#run(key, token).finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, flight)
    return flight
  }

  async #run (key: string, token: StoredToken & { refresh_token: string }): Promise<StoredToken> {
    const { call, normalize, lock } = this.#opts
    const once = async (): Promise<StoredToken> => {
      const fresh = normalize(await call(token.refresh_token))
      // RFC 6749 §6: the provider MAY issue a new refresh token; when it does
      // not, the old one stays valid. simple-oauth2 5.x drops it in that case
      // (it copies `this.refresh_token`, which is undefined), so we keep it here.
      // `scope` absent means unchanged (§5.1); an id_token is kept for logout hints.
      fresh.refresh_token ??= token.refresh_token
      if (fresh.scope === undefined && token.scope !== undefined) fresh.scope = token.scope
      if (fresh.id_token === undefined && token.id_token !== undefined) fresh.id_token = token.id_token
      this.counters.refreshes++
      return fresh
    }
    let fresh: StoredToken
    try {
      // Through the lock, another instance may have done the call: its result
      // (from Redis) is validated like any other input.
      fresh = lock === undefined ? await once() : normalize(await lock.refresh(token.refresh_token, once))
    } catch (err) {
      const code = (err as CodedError).code
      this.counters.failures[failureKind(code)]++
      this.lastFailure = { at: Date.now(), code }
      remember(this.#failed, key, code, Date.now() + this.#opts.backoffMs, this.#opts.maxEntries)
      throw err
    }
    this.#failed.delete(key)
    // Never hand out a token past its own expiry, however long the grace window.
    remember(this.#recent, key, fresh, Math.min(Date.now() + this.#opts.graceMs, fresh.expires_at * 1000), this.#opts.maxEntries)
    return fresh
  }
}

// Insertion-ordered maps: expired entries are dropped from the front, and the
// oldest goes when the bound is reached, so memory stays bounded under load.
function remember<T> (map: Map<string, Remembered<T>>, key: string, value: T, until: number, max: number): void {
  map.delete(key)
  map.set(key, { value, until })
  const now = Date.now()
  for (const [k, entry] of map) {
    if (map.size <= max && entry.until > now) break
    map.delete(k)
  }
}

// A new instance per caller: sharing one error object across requests would
// share its stack and any property a handler adds to it.
function recreate (code: string): CodedError {
  switch (code) {
    case 'FSS_TOKEN_REFRESH_REJECTED': return new errors.FSS_TOKEN_REFRESH_REJECTED()
    case 'FSS_TOKEN_PROVIDER_TIMEOUT': return new errors.FSS_TOKEN_PROVIDER_TIMEOUT()
    case 'FSS_TOKEN_INVALID': return new errors.FSS_TOKEN_INVALID('the last refresh answer was unusable; retrying after the backoff window')
    default: return new errors.FSS_TOKEN_PROVIDER_ERROR('the last refresh failed; retrying after the backoff window')
  }
}
