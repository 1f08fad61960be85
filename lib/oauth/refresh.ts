// Refresh single-flight, per refresh token, within one process.
//
// Why: refresh tokens are often single-use (rotation, RFC 9700 §4.14.2). If two
// requests carrying the same cookie both refresh, the second replays a used
// refresh token and the provider may revoke the whole token family. So:
//  - in flight: every caller with the same refresh token awaits one call;
//  - replaced: the old → new mapping is kept for a day (not a short grace
//    window, and not only while the new access token lives), because a request
//    that still carries the old cookie may come much later: one sent before the
//    winner's Set-Cookie arrived, or a concurrent request that re-sealed the
//    old pair it had decoded (rolling re-issue, session.set) after the winner's
//    cookie. It gets the newest token (following chains) instead of replaying
//    the old refresh token, writes that, and refreshes with the newest refresh
//    token if that one is due too. A replacement is recognised by its refresh
//    token, never by a changed access token: a provider may rotate the refresh
//    token and hand back the same access token (two JWTs minted in one second);
//  - spent: a 2xx JSON answer that fails validation still consumed the
//    refresh token at the provider; the error says so, and the caller drops
//    the stored tokens rather than replay it after the backoff;
//  - recently failed (backoff window): callers get the same coded error
//    without a new call, so a broken provider is not hammered in a tight loop.
// Every map is keyed by sha256 of the refresh token; the token itself is never
// a key, a log field or part of an error.
import { sha256Base64url } from '../digest.ts'
import { errors } from '../errors.ts'
import { ExpiringMap } from '../expiring-map.ts'
import { failureKind, refreshFailure, type FailureKind } from './provider-errors.ts'
import { isStoredToken, type StoredToken } from './token.ts'

type CodedError = Error & { code: string, statusCode?: number }

export interface RefreshCoordinatorOptions {
  /** POSTs grant_type=refresh_token; resolves to the raw token response or rejects with a coded error */
  call: (refreshToken: string) => Promise<unknown>
  /** validates + normalizes a raw response (throws FSS_TOKEN_INVALID) */
  normalize: (raw: unknown) => StoredToken
  /** ms during which a failed refresh token answers the same error without a call */
  backoffMs: number
  /** bound on remembered entries (each map); default MAX_REMEMBERED */
  maxEntries?: number
  /** cross-process single-flight (the Redis token store's `refreshLock`); runs `fn` once across instances */
  lock?: RefreshLock
}

/** The contract of a cross-instance refresh lock; the Redis token store's `refreshLock` implements it. */
export interface RefreshLock {
  /** Runs `fn` once across every instance for this refresh token; the others get its result or its error. */
  refresh: <T>(refreshToken: string, fn: () => Promise<T>) => Promise<T>
  /**
   * Called by the OAuth plugin at registration with its provider-call timeout in ms. A lock that
   * expires while the call still runs lets a second instance refresh with the same refresh token,
   * which a rotating provider answers with invalid_grant: the lock must outlive the call. Throws
   * FSS_OPTIONS_INVALID, naming its own option, when it cannot.
   */
  outlive?: (callTimeoutMs: number) => void
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

const kSpent = Symbol('fss.oauth.refreshTokenSpent')

/**
 * True when the refresh token of the failed refresh must not be sent again:
 * invalid_grant, or a 2xx JSON answer that failed validation (the provider
 * has processed, and with rotation consumed, the refresh token: RFC 9700 §4.14).
 */
export function isRefreshTokenSpent (err: unknown): boolean {
  const e = err as { code?: unknown, [kSpent]?: unknown } | null
  return e?.code === 'FSS_TOKEN_REFRESH_REJECTED' || e?.[kSpent] === true
}

/** Marks `err` as a failure after which its refresh token must never be sent again (see isRefreshTokenSpent). */
export function markRefreshTokenSpent<T extends object> (err: T): T {
  Object.defineProperty(err, kSpent, { value: true })
  return err
}
const spent = markRefreshTokenSpent

/** How long a used-up refresh token (replaced or spent, by hash) is remembered: a day. */
export const SPENT_MEMORY_MS = 24 * 3600_000

/** Bound on replacement chains followed per lookup: a rotation cycle (R1 → R2 → R1) cannot loop. */
export const MAX_REPLACEMENT_CHAIN = 32

/** Entries each map remembers at most; the oldest goes first. */
export const MAX_REMEMBERED = 10_000

export class RefreshCoordinator {
  readonly counters: RefreshCounters = {
    refreshes: 0,
    shared: 0,
    failures: { rejected: 0, provider: 0, timeout: 0, invalid: 0 },
    backedOff: 0
  }

  /**
   * The last provider-side refresh failure (epoch ms + code), for health output. Cleared by the
   * next successful refresh; a rejected refresh token (invalid_grant) is never recorded here.
   */
  lastFailure: { at: number, code: string } | null = null

  readonly #opts: RefreshCoordinatorOptions
  readonly #inflight = new Map<string, Promise<StoredToken>>()
  readonly #recent: ExpiringMap<StoredToken>
  readonly #failed: ExpiringMap<{ code: string, spent: boolean }>

  constructor (opts: RefreshCoordinatorOptions) {
    this.#opts = opts
    this.#recent = new ExpiringMap(opts.maxEntries ?? MAX_REMEMBERED)
    this.#failed = new ExpiringMap(opts.maxEntries ?? MAX_REMEMBERED)
  }

  /** Requests in flight right now (for tests and health output). */
  get inflight (): number {
    return this.#inflight.size
  }

  /**
   * The newest token that replaced `token` (its refresh token was refreshed
   * here, maybe more than once), or null when `token` is the newest known.
   * With rotation, any entry for the caller's refresh token is a replacement:
   * that refresh token is used up, whatever the access token says. A provider
   * that does not rotate maps R1 to a pair that still holds R1: that is a
   * replacement only for a caller still holding an older access token.
   */
  replaced (token: StoredToken): StoredToken | null {
    if (this.#recent.size === 0) return null
    let current = token
    let newest: StoredToken | null = null
    for (let i = 0; i < MAX_REPLACEMENT_CHAIN && current.refresh_token !== undefined; i++) {
      const next = this.#recent.get(sha256Base64url(current.refresh_token))
      if (next === undefined) break
      const rotated = next.refresh_token !== current.refresh_token
      if (!rotated && next.access_token === current.access_token) break
      current = newest = next
    }
    if (newest !== null) this.counters.shared++
    return newest
  }

  /** A fresh token for `token` (which must hold a refresh_token). Throws coded errors. */
  refresh (token: StoredToken & { refresh_token: string }): Promise<StoredToken> {
    // The plugin asks replaced() itself first; another request may have
    // finished a refresh since, and no caller may replay a used-up token.
    const newest = this.replaced(token)
    if (newest !== null) return Promise.resolve(newest)
    const key = sha256Base64url(token.refresh_token)
    const failed = this.#failed.get(key)
    if (failed !== undefined) {
      this.counters.backedOff++
      return Promise.reject(recreate(failed))
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
      const raw = await call(token.refresh_token)
      let fresh: StoredToken
      try {
        fresh = normalize(raw)
      } catch (err) {
        // call() resolved: a 2xx JSON object the provider built after using
        // the refresh token. (A 2xx body that is not JSON at all rejects inside
        // call(), marked spent there for the same reason; a non-2xx keeps the token.)
        throw spent(err as CodedError)
      }
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
      fresh = lock === undefined ? await once() : handedOver(await lock.refresh(token.refresh_token, once))
    } catch (err) {
      const code = (err as CodedError).code
      this.counters.failures[failureKind(code)]++
      // invalid_grant is one user's refresh token (revoked, expired, replayed), not the
      // provider's health: counted above, but not what /health reports.
      if (code !== 'FSS_TOKEN_REFRESH_REJECTED') this.lastFailure = { at: Date.now(), code }
      // A used-up refresh token is remembered for a day, not the backoff: an
      // old cookie from another tab must not replay it once the backoff ends.
      const isSpent = isRefreshTokenSpent(err)
      this.#failed.set(key, { code, spent: isSpent }, Date.now() + Math.max(this.#opts.backoffMs, isSpent ? SPENT_MEMORY_MS : 0))
      throw err
    }
    this.#failed.delete(key)
    // The provider answered: an earlier failure no longer describes its health.
    this.lastFailure = null
    // Kept for a day, past the new access token's expiry: a stale cookie holding
    // the old pair may be re-sealed by a concurrent request and come back long
    // after a short grace window. Handed out expired, the newest pair is then
    // refreshed with its own (current) refresh token, never the old one.
    this.#recent.set(key, fresh, Date.now() + SPENT_MEMORY_MS)
    return fresh
  }
}

/**
 * Through the lock another instance may have done the call: its result, read
 * back from Redis, must be a token this suite could have stored. If it is not,
 * the refresh token it was made with is used up all the same.
 */
function handedOver (value: unknown): StoredToken {
  if (isStoredToken(value)) return value
  throw spent(new errors.FSS_TOKEN_INVALID('the refresh result handed over by another instance is not a valid token'))
}

// A new instance per caller: sharing one error object across requests would
// share its stack and any property a handler adds to it.
function recreate ({ code, spent: isSpent }: { code: string, spent: boolean }): CodedError {
  return isSpent
    ? spent(refreshFailure(code, 'the answer used up the refresh token'))
    : refreshFailure(code, 'retrying after the backoff window')
}
