// Single-flight refresh across instances. The OAuth plugin already coalesces
// refreshes within a process; this adds the fleet: one instance holds the
// Redis lock for a refresh token and calls the provider, and hands its result
// (sealed, for a short grace window) to everyone else under the hash of the
// old refresh token. Waiters need nothing but the refresh token they hold, so
// this works with the cookie store too, where other instances cannot see the
// winner's session. A failure is handed off for the backoff window as a code,
// so a dead refresh token is not replayed by every instance in turn.
import type { FastifyBaseLogger } from 'fastify'
import { errors } from '../errors.ts'
import { REFRESH_FAILURE_CODES, refreshFailure } from '../oauth/provider-errors.ts'
import { isRefreshTokenSpent, markRefreshTokenSpent, SPENT_MEMORY_MS } from '../oauth/refresh.ts'
import { sha256Base64url } from '../digest.ts'
import { guard, type RedisClient } from './client.ts'
import type { RedisLock } from './lock.ts'
import type { RefreshLock } from '../oauth/refresh.ts'
import { deriveStoreKeys, open, seal } from './seal.ts'
import { parseJson, type RecordCounters } from './store.ts'

export interface RedisRefreshLockOptions {
  client: RedisClient
  lock: RedisLock
  keys: Buffer[]
  prefix: string
  /** ms a result stays available to instances still holding the old refresh token. */
  graceMs: number
  /** ms a failure is repeated to the fleet instead of calling the provider again. */
  backoffMs: number
  commandTimeout: number
  /** Counts hand-off records that could not be used; default a counter of its own. */
  counters?: RecordCounters
  log?: FastifyBaseLogger
}

// `spent`: the refresh token was used up at the provider (invalid_grant, or a
// 2xx answer that failed validation); no instance may send it again.
type Handoff<T> = { ok: T } | { failed: string, spent?: true }

/** Same hash tag as the refresh lock's key: on a Cluster both live in one slot. */
export function handoffKey (prefix: string, refreshToken: string): string {
  return `${prefix}handoff:{${sha256Base64url(refreshToken)}}`
}

/**
 * The OAuth plugin's RefreshLock over Redis: `refresh` runs once across every
 * instance for a refresh token; the others get its result or its error.
 */
export function createRedisRefreshLock (opts: RedisRefreshLockOptions): RefreshLock {
  const { client, lock, prefix, graceMs, backoffMs, commandTimeout, counters = { rejectedRecords: 0 }, log } = opts
  const keys = deriveStoreKeys(opts.keys)
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)

  async function read<T> (key: string): Promise<T | null> {
    const sealed = await run(() => client.get(key))
    if (sealed === null) return null
    const opened = open(keys, sealed, key)
    const handoff = opened === null ? undefined : parseJson(opened.plaintext)
    if (isSuccess<T>(handoff)) return handoff.ok
    if (isFailure(handoff)) {
      const err = refreshFailure(handoff.failed, 'on another instance')
      throw handoff.spent === true ? markRefreshTokenSpent(err) : err
    }
    // A record under this refresh token's hash exists, so some instance used the
    // token: refreshing again would replay it. Whatever the record holds, it is spent.
    counters.rejectedRecords++
    log?.warn({ event: 'refresh-handoff-invalid' }, 'a refresh hand-off record is unreadable: its refresh token counts as used up')
    throw markRefreshTokenSpent(new errors.FSS_TOKEN_INVALID('the refresh result handed over by another instance is unreadable'))
  }

  async function write<T> (key: string, handoff: Handoff<T>, ttl: number): Promise<void> {
    const sealed = seal(keys, JSON.stringify(handoff), key)
    try {
      // A failure is written NX: it never replaces a success already handed off. (A holder that
      // outlived its lock, or a provider slower than lockTtl, lets a second instance refresh with
      // the same token; with rotation its invalid_grant must not hide the first call's result.)
      await run(() => 'ok' in handoff
        ? client.set(key, sealed, 'PX', ttl)
        : client.set(key, sealed, 'PX', ttl, 'NX'))
    } catch {
      // The refresh itself is done; waiters time out or retry after the lock's expiry.
      log?.warn({ event: 'refresh-handoff-failed' }, 'could not share a refresh result with other instances')
    }
  }

  return {
    outlive: (callTimeoutMs) => lock.outlive(callTimeoutMs),
    async refresh (refreshToken, refresh) {
      const key = handoffKey(prefix, refreshToken)
      return await lock.singleFlight(refreshToken, {
        check: () => read(key),
        async run () {
          try {
            const fresh = await refresh()
            await write(key, { ok: fresh }, graceMs)
            return fresh
          } catch (err) {
            const code = (err as { code?: string }).code
            // Only the failures a code fully describes are handed over; a used-up
            // refresh token is remembered as long as the coordinator's own memory of it.
            const spent = isRefreshTokenSpent(err)
            if (code !== undefined && REFRESH_FAILURE_CODES.has(code)) await write(key, spent ? { failed: code, spent } : { failed: code }, spent ? SPENT_MEMORY_MS : backoffMs)
            throw err
          }
        }
      })
    }
  }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `{ ok: <object> }` exactly; the object itself is checked by the refresh coordinator. (`null` would read as "no hand-off yet".) */
function isSuccess<T> (value: unknown): value is { ok: T } {
  return isRecord(value) && Object.keys(value).length === 1 && isRecord(value.ok)
}

/** `{ failed: <code> }` or `{ failed: <code>, spent: true }` exactly. */
function isFailure (value: unknown): value is { failed: string, spent?: true } {
  if (!isRecord(value) || typeof value.failed !== 'string') return false
  const keys = Object.keys(value).length
  return keys === 1 || (keys === 2 && value.spent === true)
}
