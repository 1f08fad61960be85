// RedisLock: the SET NX lock under the fleet's single refresh. A short Redis
// lock per refresh token (SET NX PX with a random owner token, released by a
// compare-and-delete script so a holder that outlived its expiry cannot free a
// successor's lock).
// Losers poll the token store with a bounded backoff and take the winner's
// token; a holder that dies blocks nobody past the lock's expiry because the
// next poll simply acquires it.
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { errors } from '../errors.ts'
import { sha256Base64url } from '../digest.ts'
import { OAUTH_DEFAULTS } from '../oauth/options.ts'
import { guard, type RedisClient } from './client.ts'

// Redis docs, "Distributed locks with Redis": delete only if we still own it.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

/** ms a lock outlives one provider call, and a waiter waits beyond the lock's life, by default. */
export const LOCK_MARGIN_MS = 5000

export interface RedisLockOptions {
  client: RedisClient
  prefix: string
  /**
   * ms the lock lives: longer than one refresh call to the provider, short enough that a crash
   * costs little. Default: the longest call timeout given to outlive() + LOCK_MARGIN_MS (before
   * any, the OAuth plugin's default timeout + LOCK_MARGIN_MS).
   */
  lockTtl?: number
  /** ms a loser waits for the winner before giving up with FSS_TOKEN_PROVIDER_TIMEOUT; > lockTtl so a dead holder's lock can expire and be taken. Default lockTtl + LOCK_MARGIN_MS. */
  maxWait?: number
  /** ms before a Redis command counts as an outage. */
  commandTimeout: number
  /** The option that sets lockTtl, named by the error that refuses it; default `lockTtl`. */
  lockTtlOption?: string
}

export interface SingleFlightSteps<T> {
  /** The already-refreshed token if someone else has finished (read from the store), else null. May throw (e.g. tokens were cleared). */
  check: () => Promise<T | null>
  /** Refresh and store; runs only while holding the lock. */
  run: () => Promise<T>
}

export interface RedisLock {
  /** A release function when this caller now holds the lock for `name`, null when someone else does. */
  acquire: (name: string) => Promise<(() => Promise<void>) | null>
  /** `run` once across every instance sharing Redis; everyone else gets `check`'s answer. */
  singleFlight: <T>(name: string, steps: SingleFlightSteps<T>) => Promise<T>
  /**
   * The holder runs provider calls of up to `callTimeoutMs`: the lock must outlive one, or another
   * instance takes it mid-call and replays the refresh token. A lockTtl that was given and is not
   * above it throws FSS_OPTIONS_INVALID; a default one grows to `callTimeoutMs` + LOCK_MARGIN_MS.
   */
  outlive: (callTimeoutMs: number) => void
}

export function lockKey (prefix: string, name: string): string {
  // The name is a refresh token: only its hash may reach Redis. The hash is the Cluster
  // hash tag, shared with the refresh's hand-off record: one slot for both.
  return `${prefix}lock:{${sha256Base64url(name)}}`
}

const FIRST_POLL_MS = 20
const MAX_POLL_MS = 250

export function createRedisLock (opts: RedisLockOptions): RedisLock {
  const { client, prefix, commandTimeout } = opts
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)
  // The longest provider call announced through outlive(); until then, the OAuth plugin's default.
  let longestCall: number | undefined
  const lockTtl = (): number => opts.lockTtl ?? (longestCall ?? OAUTH_DEFAULTS.timeout) + LOCK_MARGIN_MS
  const maxWait = (): number => opts.maxWait ?? lockTtl() + LOCK_MARGIN_MS

  function outlive (callTimeoutMs: number): void {
    if (opts.lockTtl !== undefined && opts.lockTtl <= callTimeoutMs) {
      throw new errors.FSS_OPTIONS_INVALID(opts.lockTtlOption ?? 'lockTtl', `must be above oauth.timeout (${callTimeoutMs} ms), or a slow refresh loses its lock to another instance`)
    }
    // Several OAuth plugins may share one lock: it must outlive the slowest call.
    longestCall = Math.max(longestCall ?? 0, callTimeoutMs)
  }

  async function acquire (name: string): Promise<(() => Promise<void>) | null> {
    const key = lockKey(prefix, name)
    const owner = randomBytes(16).toString('base64url')
    const ok = await run(() => client.set(key, owner, 'PX', lockTtl(), 'NX'))
    if (ok !== 'OK') return null
    return async () => {
      // A failed release only delays the next refresher until the lock expires.
      await run(() => client.eval(RELEASE, 1, key, owner)).catch(() => {})
    }
  }

  async function singleFlight<T> (name: string, steps: SingleFlightSteps<T>): Promise<T> {
    const wait = maxWait()
    const deadline = Date.now() + wait
    let pause = FIRST_POLL_MS
    // Bounded twice: by the deadline, and by a count no backoff can exceed in that time.
    const maxRounds = Math.ceil(wait / FIRST_POLL_MS) + 1
    for (let round = 0; round < maxRounds; round++) {
      const release = await acquire(name)
      if (release !== null) {
        try {
          // The previous holder may have finished between our poll and our SET.
          return (await steps.check()) ?? await steps.run()
        } finally {
          await release()
        }
      }
      const done = await steps.check()
      if (done !== null) return done
      const left = deadline - Date.now()
      if (left <= 0) break
      await delay(Math.min(pause, left))
      pause = Math.min(pause * 2, MAX_POLL_MS)
    }
    throw new errors.FSS_TOKEN_PROVIDER_TIMEOUT()
  }

  return { acquire, singleFlight, outlive }
}
