// The session registry in Redis, shared by every instance. A record is sealed
// (AES-256-GCM under a registry subkey of the keyring, the Redis key as
// additional data) and validated against SessionRecordSchema on every read;
// whatever fails either reads as absent and is counted, never thrown. Every
// command goes through guard(): an outage is FSS_STORE_UNAVAILABLE (503), and
// a revocation is reported only once the script that deletes the record has
// answered, so nothing is reported as revoked that was not.
import type { FastifyBaseLogger } from 'fastify'
import { guard, type RedisClient } from '../redis/client.ts'
import { open, seal } from '../redis/seal.ts'
import { errors } from '../errors.ts'
import {
  assertRevocableId, checkRegisterInput, copyCounters, decodeRecord, emptyCounters, LIST_MAX, newRecord, systemClock,
  type Clock, type RevocationReason, type SessionRecord, type SessionRegistryStore
} from './contract.ts'
import { deviceLabel } from './device.ts'
import { isSessionId } from './id.ts'
import { LruMap } from './lru.ts'
import { allBuckets, BUCKET_SHAPE, deriveRegistryKeys, registryKeys } from './redis-keys.ts'

/**
 * The commands the store sends: an ioredis client, e.g. the token store's
 * connection. Written out, as RedisClient is: ioredis is an optional peer
 * dependency and the published declarations must not need it.
 */
export interface SessionRedisClient extends RedisClient {
  mget (...keys: string[]): Promise<Array<string | null>>
  zrange (key: string, start: string, stop: string): Promise<string[]>
  zrevrangebyscore (key: string, max: string, min: string, limit: 'LIMIT', offset: number, count: number): Promise<string[]>
  zrem (key: string, ...members: string[]): Promise<number>
  smembers (key: string): Promise<string[]>
  srem (key: string, ...members: string[]): Promise<number>
}

export interface RedisSessionStoreOptions {
  client: SessionRedisClient
  /** Keyring bytes, newest first: records are sealed with the newest and open with any. */
  keys: Buffer[]
  /** Prefix of every key, e.g. `fss:`; no `{` or `}` (they would break the hash tags). */
  prefix: string
  /** Seconds a session lives from register(): the session's absolute timeout. */
  absoluteTimeout: number
  /** Seconds between two writes of a session's lastSeenAt (per instance). */
  touchInterval: number
  /** ms before a command counts as an outage. */
  commandTimeout: number
  /**
   * Announce revocations with SPUBLISH on each bucket's channel (Redis 7 sharded pub/sub), as a
   * Cluster needs; else PUBLISH on one channel. Default: whether `client` is an ioredis Cluster.
   */
  sharded?: boolean
  clock?: Pick<Clock, 'now'>
  log?: FastifyBaseLogger
}

export interface RedisSessionStore extends SessionRegistryStore {
  readonly kind: 'redis'
  /** The channel revocations are published on (for the revocation feed); unused when sharded. */
  readonly channel: string
  /** Revocations go out per bucket with SPUBLISH (see redis-keys.ts). */
  readonly sharded: boolean
  /** What the revocation feed listens to: the one channel, or (sharded) every bucket's. */
  readonly channels: string[]
}

// The user's index learns the id in the same step as the record is written,
// and lives as long as the user's longest session.
const REGISTER = `
redis.call('zadd', KEYS[1], ARGV[4], ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', '(' .. ARGV[5])
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[3]) then redis.call('pexpire', KEYS[1], ARGV[3]) end
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`

const SID_ADD = `
redis.call('sadd', KEYS[1], ARGV[1])
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 1`

// KEYS[1] the user's index, KEYS[2..] records; ARGV[1] the channel, ARGV[2]
// publish or spublish, ARGV[3..] the ids of those records. Deleting and
// announcing in one script means no instance can miss a revocation that Redis
// has committed, short of losing its subscription (the feed then flushes its
// view). On a Cluster the channel is in the keys' slot, so SPUBLISH runs on
// the shard that deleted them.
const REVOKE = `
local gone = {}
for i = 2, #KEYS do
  redis.call('zrem', KEYS[1], ARGV[i + 1])
  if redis.call('del', KEYS[i]) == 1 then gone[#gone + 1] = ARGV[i + 1] end
end
if #gone > 0 then redis.call(ARGV[2], ARGV[1], table.concat(gone, ' ')) end
return gone`

// revokeAll reads the index in batches and repeats while sessions registered
// meanwhile keep appearing, within a bound.
const BATCH = 500
const ROUNDS = 10
// Sessions one provider session can have logged in (sid is per browser at the provider).
const SID_MAX = 100
// Per-instance memory of when a session's lastSeenAt was last written or seen.
const TOUCH_MEMORY = 10_000

interface Found {
  bucket: string
  record: SessionRecord
}

export function createRedisSessionStore (opts: RedisSessionStoreOptions): RedisSessionStore {
  const { client, commandTimeout, log } = opts
  const clock = opts.clock ?? systemClock
  const keys = registryKeys(opts.prefix)
  const subkeys = deriveRegistryKeys(opts.keys)
  const ttlMs = opts.absoluteTimeout * 1000
  const touchMs = opts.touchInterval * 1000
  const counters = emptyCounters()
  const touched = new LruMap<string, number>(TOUCH_MEMORY)
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)
  const sharded = opts.sharded ?? (client as { isCluster?: boolean }).isCluster === true

  function unreadable (what: string, count = 1): null {
    counters.undecodable += count
    // Names what, never the value: a record may hold a user's identifier.
    log?.warn({ event: 'session-record-unreadable', what }, 'a session registry entry failed to decode and reads as absent')
    return null
  }

  /** The members that are session ids; any other index entry is counted as unreadable. */
  function sessionIds (members: string[]): string[] {
    const ids = members.filter(isSessionId)
    if (ids.length < members.length) unreadable('index entry', members.length - ids.length)
    return ids
  }

  function decode (bucket: string, id: string, sealed: string): SessionRecord | null {
    const key = keys.record(bucket, id)
    const opened = open(subkeys, sealed, key)
    const record = opened === null ? null : decodeRecord(opened.plaintext)
    if (record === null || record.id !== id || keys.user(record.sub).bucket !== bucket) return unreadable('record')
    return record
  }

  async function find (id: string): Promise<Found | null> {
    const bucket = await run(() => client.get(keys.locator(id)))
    if (bucket === null) return null
    if (!BUCKET_SHAPE.test(bucket)) return unreadable('locator')
    const sealed = await run(() => client.get(keys.record(bucket, id)))
    const record = sealed === null ? null : decode(bucket, id, sealed)
    return record === null ? null : { bucket, record }
  }

  async function end (sub: string, records: SessionRecord[], reason: RevocationReason): Promise<string[]> {
    const { bucket, index } = keys.user(sub)
    const ids = records.map((r) => r.id)
    const gone = await run(() => client.eval(
      REVOKE, 1 + ids.length, index, ...ids.map((id) => keys.record(bucket, id)),
      ...(sharded ? [keys.bucketChannel(bucket), 'spublish'] : [keys.channel, 'publish']), ...ids
    )) as string[]
    counters.revoked[reason] += gone.length
    const ended = new Set(gone)
    // The sid set lives in another slot and expires with the session: a
    // failure to tidy it now changes nothing that was revoked. The locator
    // stays until the session would have expired: it is what makes
    // register() refuse the id, so a revoked id cannot be registered again.
    const tidy: Array<Promise<unknown>> = []
    for (const { id, provider, sid } of records) {
      if (ended.has(id) && sid !== undefined) tidy.push(run(() => client.srem(keys.sid(provider, sid), id)))
    }
    await Promise.allSettled(tidy)
    return gone
  }

  async function revoke (id: string, reason: RevocationReason): Promise<boolean> {
    assertRevocableId(id)
    const found = await find(id)
    if (found === null) return false
    return (await end(found.record.sub, [found.record], reason)).length === 1
  }

  return {
    kind: 'redis',
    channel: keys.channel,
    sharded,
    channels: sharded ? allBuckets().map(keys.bucketChannel) : [keys.channel],

    async register (input) {
      const checked = checkRegisterInput(input)
      const now = clock.now()
      const record = newRecord(checked, deviceLabel(checked.userAgent), now, opts.absoluteTimeout)
      const { bucket, index } = keys.user(record.sub)
      const recordKey = keys.record(bucket, record.id)
      // The locator claims the id for the session's lifetime (NX): an id
      // registered before, live or revoked, is refused. Every index that can
      // end the session learns of it before the record makes it live, so no
      // session that lookups by id or revokeBySid() cannot find becomes live.
      const claimed = await run(() => client.set(keys.locator(record.id), bucket, 'PX', ttlMs, 'NX'))
      if (claimed === null) throw new errors.FSS_SESSION_RECORD_INVALID('id', 'already registered')
      if (record.sid !== undefined) {
        const sidKey = keys.sid(record.provider, record.sid)
        await run(() => client.eval(SID_ADD, 1, sidKey, record.id, String(ttlMs)))
      }
      const sealed = seal(subkeys, JSON.stringify(record), recordKey)
      await run(() => client.eval(REGISTER, 2, index, recordKey, record.id, sealed, String(ttlMs), String(record.expiresAt), String(now)))
      counters.registered++
      touched.set(record.id, now)
      return record
    },

    touchDue (id) {
      const last = touched.peek(id)
      return isSessionId(id) && (last === undefined || clock.now() - last >= touchMs)
    },

    async touch (id) {
      if (!isSessionId(id)) return false
      const now = clock.now()
      const last = touched.get(id)
      if (last !== undefined && now - last < touchMs) return false
      const found = await find(id)
      if (found === null) return false
      if (now - found.record.lastSeenAt < touchMs) {
        touched.set(id, found.record.lastSeenAt)
        return false
      }
      const key = keys.record(found.bucket, id)
      // Re-sealed with the newest key; XX: a record revoked meanwhile is not brought back.
      const sealed = seal(subkeys, JSON.stringify({ ...found.record, lastSeenAt: now }), key)
      const written = await run(() => client.set(key, sealed, 'KEEPTTL', 'XX'))
      touched.set(id, now)
      return written === 'OK'
    },

    async list (sub) {
      const { bucket, index } = keys.user(sub)
      const members = await run(() => client.zrevrangebyscore(index, '+inf', `(${clock.now()}`, 'LIMIT', 0, LIST_MAX))
      const ids = sessionIds(members)
      if (ids.length === 0) return []
      const sealed = await run(() => client.mget(...ids.map((id) => keys.record(bucket, id))))
      const found: SessionRecord[] = []
      ids.forEach((id, i) => {
        const text = sealed[i]
        const record = text === null ? null : decode(bucket, id, text)
        if (record === null) return
        // Another user's record listed under this user's index: not theirs to see.
        if (record.sub !== sub) unreadable('index entry')
        else found.push(record)
      })
      return found.sort((a, b) => b.lastSeenAt - a.lastSeenAt)
    },

    async get (id) {
      if (!isSessionId(id)) return null
      return (await find(id))?.record ?? null
    },

    revoke,

    async revokeAll (sub, { except, reason }) {
      const { bucket, index } = keys.user(sub)
      const ended: string[] = []
      for (let round = 0; round < ROUNDS; round++) {
        const members = (await run(() => client.zrange(index, '0', String(BATCH - 1)))).filter((id) => id !== except)
        if (members.length === 0) break
        const ids = sessionIds(members)
        const sealed = ids.length === 0 ? [] : await run(() => client.mget(...ids.map((id) => keys.record(bucket, id))))
        const live: SessionRecord[] = []
        ids.forEach((id, i) => {
          const text = sealed[i]
          const record = text === null ? null : decode(bucket, id, text)
          if (record === null) return
          if (record.sub === sub) live.push(record)
          else unreadable('index entry')
        })
        // Entries with no live record of this user (expired, unreadable,
        // malformed) leave the index, so the next round cannot meet them again.
        const liveIds = new Set(live.map((r) => r.id))
        const stale = members.filter((id) => !liveIds.has(id))
        if (stale.length > 0) await run(() => client.zrem(index, ...stale))
        if (live.length > 0) ended.push(...await end(sub, live, reason))
      }
      return ended
    },

    async revokeBySid (provider, sid) {
      const members = await run(() => client.smembers(keys.sid(provider, sid)))
      const ended: string[] = []
      for (const id of sessionIds(members).slice(0, SID_MAX)) {
        if (await revoke(id, 'backchannel')) ended.push(id)
      }
      return ended
    },

    async isRevoked (id) {
      return !isSessionId(id) || await find(id) === null
    },

    counters: () => copyCounters(counters),

    // The connection belongs to the caller.
    async close () {}
  }
}
