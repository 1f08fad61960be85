// The per-request revocation check, without a Redis round trip: a bounded
// in-process map from session id to "live until <expiresAt>" or "revoked".
//
// - "revoked" is final (ids are never reused), so it is always believed.
// - "live" is believed only while the feed can vouch that no revocation has
//   been missed: for `outageTrust` seconds after `feed.heardUpTo()`. Past
//   that, or on a miss, the store is asked; when the store cannot answer
//   either, the check fails with FSS_STORE_UNAVAILABLE (503) rather than
//   guess: a revoked session must not be served, and reading a live one as
//   empty would let the request overwrite its cookie and lose it for good.
// - A (re)subscription flushes every "live" entry: revocations announced
//   while unsubscribed are lost with pub/sub, so what was believed is re-read.
import type { RevocationFeed } from './feed.ts'
import { isSessionId } from './id.ts'
import { LruMap } from './lru.ts'
import type { Clock } from './contract.ts'

export interface RevocationViewOptions {
  /** The authoritative answer for one id: the store's record, or null when it is not live. */
  lookup: (id: string) => Promise<{ expiresAt: number } | null>
  /**
   * The same answer, synchronously, from a store that keeps its records in
   * this process (the memory store). With it every check is answered at
   * once; `lookup` is never called.
   */
  lookupNow?: (id: string) => { expiresAt: number } | null
  /** Without a feed nothing vouches for "live", so every check asks the store (right for the memory store). */
  feed?: RevocationFeed
  /** Most ids remembered (live and revoked together). */
  maxEntries: number
  /** Seconds "live" entries are believed after the feed last proved it missed nothing. */
  outageTrust: number
  clock: Pick<Clock, 'now'>
}

export interface ViewCounters {
  /** Checks answered from memory. */
  hits: number
  /** Checks that asked the store. */
  misses: number
  /** Checks that failed with FSS_STORE_UNAVAILABLE: the store could not answer and memory could not vouch. */
  unavailable: number
  flushes: number
  entries: number
}

export interface RevocationView {
  /** True when the session must read as empty. Rejects with FSS_STORE_UNAVAILABLE when neither memory nor the store can answer. */
  isRevoked: (id: string) => Promise<boolean>
  /**
   * isRevoked()'s answer when this process can give it without waiting (the
   * view vouches, or the store is in memory); undefined when only the store
   * can answer: then call isRevoked(). Counted as isRevoked() counts.
   */
  revokedNow: (id: string) => boolean | undefined
  markRevoked: (ids: string[]) => void
  markLive: (id: string, expiresAt: number) => void
  /** Forgets every "live" entry. */
  flush: () => void
  /** True while "live" entries are believed without asking the store. */
  trusted: () => boolean
  counters: () => ViewCounters
}

// expiresAt is ms since the epoch, so no live entry is ever negative.
const REVOKED = -1

export function createRevocationView (opts: RevocationViewOptions): RevocationView {
  const { lookup, lookupNow, feed, clock } = opts
  const trustMs = opts.outageTrust * 1000
  const entries = new LruMap<string, number>(opts.maxEntries)
  const counters = { hits: 0, misses: 0, unavailable: 0, flushes: 0 }
  // Moves on every flush: an answer read before a flush is not remembered after it.
  let epoch = 0

  const trusted = (now: number): boolean => feed !== undefined && now - feed.heardUpTo() <= trustMs

  function revokedNow (id: string): boolean | undefined {
    if (!isSessionId(id)) return true
    // A store in this process is the authority and answers at once: a copy
    // of its answers here would only cost a second map lookup per request.
    if (lookupNow !== undefined) {
      counters.misses++
      return lookupNow(id) === null
    }
    const now = clock.now()
    const known = entries.get(id)
    if (known === REVOKED || (known !== undefined && known > now && trusted(now))) {
      counters.hits++
      return known === REVOKED
    }
    return undefined
  }

  return {
    revokedNow,

    async isRevoked (id) {
      const answer = revokedNow(id)
      if (answer !== undefined) return answer
      counters.misses++
      const asked = epoch
      let record: { expiresAt: number } | null
      try {
        record = await lookup(id)
      } catch (err) {
        counters.unavailable++
        throw err
      }
      if (record === null) {
        entries.set(id, REVOKED)
        return true
      }
      // An invalidation that arrived while the store answered is newer than the answer.
      if (entries.get(id) === REVOKED) return true
      if (epoch === asked) entries.set(id, record.expiresAt)
      return false
    },

    markRevoked (ids) {
      if (lookupNow === undefined) for (const id of ids) entries.set(id, REVOKED)
    },

    markLive (id, expiresAt) {
      if (lookupNow === undefined && entries.get(id) !== REVOKED) entries.set(id, expiresAt)
    },

    flush () {
      epoch++
      counters.flushes++
      entries.deleteWhere((value) => value !== REVOKED)
    },

    trusted: () => trusted(clock.now()),

    counters: () => ({ ...counters, entries: entries.size })
  }
}
