// The session registry in this process's memory: for a single instance and
// for development. Bounded: past `maxSessions` the least recently used session
// is ended (counted as `evicted`), so memory cannot grow with logins. Another
// instance cannot see these records; /health says so through `kind`.
import {
  assertRevocableId, checkRegisterInput, copyCounters, emptyCounters, LIST_MAX, newRecord, systemClock,
  type Clock, type RevocationReason, type SessionRecord, type SessionRegistryStore
} from './contract.ts'
import { deviceLabel } from './device.ts'
import { isSessionId } from './id.ts'
import { LruMap } from './lru.ts'
import { errors } from '../errors.ts'

export interface MemorySessionStoreOptions {
  /** Seconds a session lives from register(): the session's absolute timeout. */
  absoluteTimeout: number
  /** Seconds between two writes of a session's lastSeenAt. */
  touchInterval: number
  /** Most sessions kept; the least recently used is ended beyond this. */
  maxSessions: number
  clock?: Pick<Clock, 'now'>
}

export interface MemorySessionStore extends SessionRegistryStore {
  readonly kind: 'memory'
  /** get() without the promise or the copy, for the revocation view: the live record, or null. */
  lookupNow: (id: string) => { expiresAt: number } | null
}

type Index = Map<string, Set<string>>

function add (index: Index, key: string, id: string): void {
  const ids = index.get(key)
  if (ids === undefined) index.set(key, new Set([id]))
  else ids.add(id)
}

// Called only for a record still held, so its index entries exist.
function remove (index: Index, key: string, id: string): void {
  const ids = index.get(key) as Set<string>
  ids.delete(id)
  if (ids.size === 0) index.delete(key)
}

const sidKey = (provider: string, sid: string): string => `${provider}\n${sid}`

export function createMemorySessionStore (opts: MemorySessionStoreOptions): MemorySessionStore {
  const clock = opts.clock ?? systemClock
  const touchMs = opts.touchInterval * 1000
  const records = new LruMap<string, SessionRecord>(opts.maxSessions)
  // Ids that were registered and ended, until they would have expired: register() refuses them.
  const ended = new LruMap<string, number>(opts.maxSessions)
  const byUser: Index = new Map()
  const bySid: Index = new Map()
  const counters = emptyCounters()

  function forget (record: SessionRecord): void {
    records.delete(record.id)
    ended.set(record.id, record.expiresAt)
    remove(byUser, record.sub, record.id)
    if (record.sid !== undefined) remove(bySid, sidKey(record.provider, record.sid), record.id)
  }

  function live (id: string): SessionRecord | undefined {
    const record = records.get(id)
    if (record === undefined) return undefined
    if (record.expiresAt > clock.now()) return record
    forget(record)
    return undefined
  }

  function end (id: string, reason: RevocationReason): boolean {
    const record = live(id)
    if (record === undefined) return false
    forget(record)
    counters.revoked[reason]++
    return true
  }

  function endAll (ids: Iterable<string> | undefined, keep: string | undefined, reason: RevocationReason): string[] {
    // Copied first: end() edits the set being read.
    return [...ids ?? []].filter((id) => id !== keep && end(id, reason))
  }

  return {
    kind: 'memory',

    async register (input) {
      const checked = checkRegisterInput(input)
      if (live(checked.id) !== undefined || (ended.get(checked.id) ?? 0) > clock.now()) throw new errors.FSS_SESSION_RECORD_INVALID('id', 'already registered')
      const record = newRecord(checked, deviceLabel(checked.userAgent), clock.now(), opts.absoluteTimeout)
      const evicted = records.set(record.id, record)
      add(byUser, record.sub, record.id)
      if (record.sid !== undefined) add(bySid, sidKey(record.provider, record.sid), record.id)
      if (evicted !== undefined) {
        forget(evicted[1])
        counters.revoked.evicted++
      }
      counters.registered++
      return { ...record }
    },

    async touch (id) {
      const record = isSessionId(id) ? live(id) : undefined
      const now = clock.now()
      if (record === undefined || now - record.lastSeenAt < touchMs) return false
      records.set(id, { ...record, lastSeenAt: now })
      return true
    },

    async list (sub) {
      const found: SessionRecord[] = []
      for (const id of [...byUser.get(sub) ?? []]) {
        const record = live(id)
        if (record !== undefined) found.push({ ...record })
      }
      return found.sort((a, b) => b.lastSeenAt - a.lastSeenAt).slice(0, LIST_MAX)
    },

    touchDue (id) {
      const record = records.peek(id)
      return record !== undefined && clock.now() - record.lastSeenAt >= touchMs
    },

    // The view has checked the id's form already.
    lookupNow (id) {
      return live(id) ?? null
    },

    async get (id) {
      const record = isSessionId(id) ? live(id) : undefined
      return record === undefined ? null : { ...record }
    },

    async revoke (id, reason) {
      assertRevocableId(id)
      return end(id, reason)
    },

    async revokeAll (sub, { except, reason }) {
      return endAll(byUser.get(sub), except, reason)
    },

    async revokeBySid (provider, sid) {
      return endAll(bySid.get(sidKey(provider, sid)), undefined, 'backchannel')
    },

    async isRevoked (id) {
      return !isSessionId(id) || live(id) === undefined
    },

    counters: () => copyCounters(counters),

    async close () {
      records.clear()
      ended.clear()
      byUser.clear()
      bySid.clear()
    }
  }
}
