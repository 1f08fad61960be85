// Single-flight refresh across instances. The OAuth plugin already coalesces
// refreshes within a process; this adds the fleet: one instance holds the
// Redis lock for a refresh token and calls the provider, and hands its result
// (sealed, for a short grace window) to everyone else under the hash of the
// old refresh token. Waiters need nothing but the refresh token they hold, so
// this works with the cookie store too, where other instances cannot see the
// winner's session. A failure is handed off for the backoff window as a code,
// so a dead refresh token is not replayed by every instance in turn.
import type { FastifyBaseLogger } from 'fastify'
import { REFRESH_FAILURE_CODES, refreshFailure } from '../oauth/provider-errors.ts'
import { sha256Base64url } from '../digest.ts'
import { guard, type RedisClient } from './client.ts'
import type { RedisLock } from './lock.ts'
import type { RefreshLock } from '../oauth/refresh.ts'
import { deriveStoreKeys, open, seal } from './seal.ts'

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
  log?: FastifyBaseLogger
}

type Handoff<T> = { ok: T } | { failed: string }

export function handoffKey (prefix: string, refreshToken: string): string {
  return `${prefix}handoff:${sha256Base64url(refreshToken)}`
}

/**
 * The OAuth plugin's RefreshLock over Redis: `refresh` runs once across every
 * instance for a refresh token; the others get its result or its error.
 */
export function createRedisRefreshLock (opts: RedisRefreshLockOptions): RefreshLock {
  const { client, lock, prefix, graceMs, backoffMs, commandTimeout, log } = opts
  const keys = deriveStoreKeys(opts.keys)
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)

  async function read<T> (key: string): Promise<T | null> {
    const sealed = await run(() => client.get(key))
    const opened = sealed === null ? null : open(keys, sealed, key)
    if (opened === null) return null
    const handoff = JSON.parse(opened.plaintext) as Handoff<T>
    if ('ok' in handoff) return handoff.ok
    throw refreshFailure(handoff.failed, 'on another instance')
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
            // Only the failures a code fully describes are handed over.
            if (code !== undefined && REFRESH_FAILURE_CODES.has(code)) await write(key, { failed: code }, backoffMs)
            throw err
          }
        }
      })
    }
  }
}
