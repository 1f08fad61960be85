// A token store backed by Redis: the session cookie carries only an opaque
// random reference; the token record lives in Redis, sealed with a subkey of
// the keyring's newest key, expiring with the session's absolute timeout and
// deleted on logout. It implements the OAuth plugin's TokenStore contract.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { sha256Base64url } from '../digest.ts'
import { getSuiteField, setSuiteField } from '../session/suite-fields.ts'
import type { TokenStore } from '../oauth/store.ts'
import type { StoredToken } from '../oauth/token.ts'
import { guard, type RedisClient } from './client.ts'
import { deriveStoreKeys, open, seal, type StoreKey } from './seal.ts'

/** The suite session field holding the opaque reference to this session's record (256 random bits). */
export const SESSION_REF_FIELD = 'tokenRef'

export interface RedisTokenStoreOptions {
  client: RedisClient
  /** Keyring bytes, newest first (getSecretKeyBytes). */
  keys: Buffer[]
  /** Key prefix for every record, e.g. `myapp:`; records are `<prefix>tok:{<hash>}`. */
  prefix: string
  /** Record lifetime in seconds from its first write: the session's absolute timeout. */
  ttl: number
  /** ms before a command counts as an outage. */
  commandTimeout: number
  /** The shape a record must have once decrypted and parsed; anything else reads as no token. */
  check: (value: unknown) => value is StoredToken
  /** Counts records read back that could not be used; default a counter of its own. */
  counters?: RecordCounters
  log?: FastifyBaseLogger
  /** The session field holding the reference; default SESSION_REF_FIELD (another provider's: `tokenRef:<name>`). */
  refField?: string
}

export interface RecordCounters {
  /** records read back (token records and refresh hand-offs) that did not open, were not JSON, or had the wrong shape */
  rejectedRecords: number
}

/**
 * The reference in the cookie is hashed into the Redis key, so a Redis dump or MONITOR shows no cookie-bound value.
 * The hash is the key's Cluster hash tag (`{...}`): each record has its own slot, spread over the shards.
 */
export function recordKey (prefix: string, ref: string): string {
  return `${prefix}tok:{${sha256Base64url(ref)}}`
}

/** Where releases before the Cluster hash tags kept the record: read while such records live, never written. */
export function legacyRecordKey (prefix: string, ref: string): string {
  return `${prefix}tok:${sha256Base64url(ref)}`
}

const WRONG_TYPE = Symbol('wrong Redis type')

export function createRedisTokenStore (opts: RedisTokenStoreOptions): TokenStore {
  const { client, prefix, commandTimeout, check, counters = { rejectedRecords: 0 }, log, refField = SESSION_REF_FIELD } = opts
  const keys: StoreKey[] = deriveStoreKeys(opts.keys)
  const ttlMs = opts.ttl * 1000
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)
  // A key holding another Redis type (a hash, a list…) is not a record this store wrote: Redis
  // answers WRONGTYPE, which is a bad record (no token, counted), not an outage (503 forever).
  // (The guard keeps Redis's reply as the error's cause.)
  const read = async (key: string): Promise<string | null | typeof WRONG_TYPE> => {
    try {
      return await run(() => client.get(key))
    } catch (err) {
      if (String((err as { cause?: unknown }).cause).startsWith('WRONGTYPE')) return WRONG_TYPE
      throw err
    }
  }

  return {
    async get (request) {
      const ref = getSuiteField(request.session, refField)
      if (typeof ref !== 'string') return null
      let key = recordKey(prefix, ref)
      let sealed = await read(key)
      if (sealed === null) {
        // Written before keys carried hash tags: opened under its own name,
        // then rewritten under the new one by the next set().
        key = legacyRecordKey(prefix, ref)
        sealed = await read(key)
      }
      if (sealed === null) return null
      const opened = sealed === WRONG_TYPE ? null : open(keys, sealed, key)
      if (opened === null) {
        // Sealed by a key that has left the ring, or tampered with: the user logs in again.
        counters.rejectedRecords++
        log?.warn({ event: 'token-record-unreadable' }, 'Redis token record cannot be opened with the current keyring')
        return null
      }
      // It opened, so the keyring sealed it; it is checked all the same (an
      // older release's record, or a writer with the key and a bug).
      const value = parseJson(opened.plaintext)
      if (check(value)) return value
      counters.rejectedRecords++
      log?.warn({ event: 'token-record-invalid' }, 'Redis token record is not a valid token: read as none')
      return null
    },

    async set (request, token) {
      const existing = getSuiteField(request.session, refField)
      const ref = typeof existing === 'string' ? existing : randomBytes(32).toString('base64url')
      const key = recordKey(prefix, ref)
      // Every write seals with the newest key: rotation re-encrypts as tokens refresh.
      const sealed = seal(keys, JSON.stringify(token), key)
      // An update keeps the record's expiry (absolute, from the first write);
      // a new or vanished record starts a full lifetime.
      const updated = typeof existing === 'string'
        ? await run(() => client.set(key, sealed, 'KEEPTTL', 'XX'))
        : null
      if (updated === null) await run(() => client.set(key, sealed, 'PX', ttlMs))
      if (ref !== existing) setSuiteField(request.session, refField, ref)
    },

    async delete (request) {
      const ref = getSuiteField(request.session, refField)
      if (typeof ref !== 'string') return
      // Drop the reference first: even if Redis is down, this response logs the user out.
      setSuiteField(request.session, refField, undefined)
      // Two commands, not one DEL of two keys: on a Cluster they live in different slots.
      await run(() => client.del(recordKey(prefix, ref)))
      await run(() => client.del(legacyRecordKey(prefix, ref)))
    },

    // Each provider's tokens are a record of their own, under a reference of their own.
    forProvider: (name) => createRedisTokenStore({ ...opts, refField: `${SESSION_REF_FIELD}:${name}` })
  }
}

/** The parsed JSON, or undefined when it is not JSON (never a throw on the read path). */
export function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
