// The session registry as the suite uses it: one store (memory or Redis), the
// per-request revocation view in front of it, and for Redis the feed that
// keeps every instance's view in step. Options are checked once, here.
import { EventEmitter } from 'node:events'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyBaseLogger } from 'fastify'
import { errors } from '../errors.ts'
import { validateOptions } from '../options.ts'
import { redisHealth } from '../redis/client.ts'
import { duplicateClient } from '../redis/connection.ts'
import {
  copyCounters, systemClock,
  type Clock, type RegisterInput, type RevocationReason, type RevokeAllOptions, type SessionRecord, type SessionRegistryStore,
  type StoreCounters
} from './contract.ts'
import { createRevocationFeed, type FeedCounters, type RevocationFeed, type SubscriberClient } from './feed.ts'
import { clusterSubscriberFor } from './cluster-subscriber.ts'
import { createMemorySessionStore } from './memory-store.ts'
import { createRedisSessionStore, type SessionRedisClient } from './redis-store.ts'
import { createRevocationView, type ViewCounters } from './view.ts'

const DAY = 86_400

export const SessionRegistryOptionsSchema = Type.Object({
  /** Where records live: `memory` (this process only) or `redis` (every instance). @default 'memory' */
  store: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')], { description: 'Where session records live: `memory` (this process only; /health warns) or `redis` (shared by every instance, on the `redis` option\'s connection).', default: 'memory' })),
  /** Seconds a session lives from login: the session's absolute timeout. @default 2592000 (30 days) */
  absoluteTimeout: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * DAY, description: 'Seconds a session record lives from login: the session\'s absolute timeout.', default: 30 * DAY })),
  /** Seconds between two writes of a session's lastSeenAt. @default 60 */
  touchInterval: Type.Optional(Type.Integer({ minimum: 1, maximum: DAY, description: 'Seconds between two writes of a session\'s lastSeenAt (it lags by up to this).', default: 60 })),
  /** Memory store: most sessions kept; beyond it the least recently used is ended. @default 10000 */
  maxSessions: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'How many sessions the memory store keeps at most; past it the least recently used one is ended (counted as `evicted`).', default: 10_000 })),
  /** Session ids the per-request view remembers. @default 10000 */
  viewSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'How many session ids the per-request revocation view remembers (live and revoked); a forgotten one costs one Redis read.', default: 10_000 })),
  /**
   * Seconds the view still believes "live" after it last heard from Redis; past this a check asks
   * Redis, and answers 503 (FSS_STORE_UNAVAILABLE) if Redis cannot answer. @default 5
   */
  outageTrust: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'Seconds the view still believes a session live after it last heard from Redis; past this a check asks Redis, and answers 503 FSS_STORE_UNAVAILABLE while Redis cannot answer.', default: 5 })),
  /** Redis: ms between heartbeats on the subscriber connection; shorter than outageTrust. @default 500 */
  heartbeatInterval: Type.Optional(Type.Integer({ minimum: 50, maximum: 60_000, description: 'Milliseconds between PINGs on the subscriber connection (Redis store); shorter than `outageTrust`. A refused SUBSCRIBE is retried at this pace.', default: 500 })),
  /** Redis: prefix of every key; no braces (they would break the Cluster hash tags). @default 'fss:' */
  keyPrefix: Type.Optional(Type.String({ maxLength: 100, pattern: '^[^{}]*$', description: 'Prefix of every registry key in Redis; no braces (they would break the Cluster hash tags).', default: 'fss:' })),
  /** Redis: ms before a command counts as an outage. @default 1000 */
  commandTimeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000, description: 'Milliseconds before a registry command counts as an outage. Default: the `redis` option\'s `commandTimeout`, else 1000.' }))
}, { additionalProperties: false })
export type SessionRegistryOptions = Static<typeof SessionRegistryOptionsSchema>

export interface SessionRegistryDeps {
  /** Redis: the command connection (the token store's is fine). Not closed by the registry. */
  client?: SessionRedisClient & { duplicate: (override?: { commandTimeout?: number }) => SubscriberClient }
  /** Redis: a dedicated connection for the feed; default `client.duplicate()`. Closed by the registry. */
  subscriber?: SubscriberClient
  /** Redis: keyring bytes, newest first (records are sealed). */
  keys?: Buffer[]
  clock?: Clock
  log?: FastifyBaseLogger
}

export interface RegistryCounters extends StoreCounters {
  view: ViewCounters
  /** Redis only: what the revocation feed received. */
  feed?: FeedCounters
}

export interface RegistryHealth {
  kind: 'memory' | 'redis'
  healthy: boolean
  detail: string
}

export interface RegistryEvents {
  /** Ids another instance (or this one) announced as revoked, after the view applied them. */
  revoked: [ids: string[]]
  /** The feed (re)subscribed and the view forgot what it believed live. */
  flushed: []
}

export interface SessionRegistry {
  readonly kind: 'memory' | 'redis'
  /** Records a new session (id from createSessionId(), sub, provider, optional sid, the User-Agent header). */
  register: (input: RegisterInput) => Promise<SessionRecord>
  /** Per request: writes lastSeenAt at most once per touchInterval; true when it wrote. */
  touch: (id: string) => Promise<boolean>
  list: (sub: string) => Promise<SessionRecord[]>
  get: (id: string) => Promise<SessionRecord | null>
  /** True when it was live and is now revoked everywhere; throws FSS_SESSION_ID_INVALID or FSS_STORE_UNAVAILABLE. */
  revoke: (id: string, reason: RevocationReason) => Promise<boolean>
  revokeAll: (sub: string, opts: RevokeAllOptions) => Promise<string[]>
  revokeBySid: (provider: string, sid: string) => Promise<string[]>
  /** Per request: true when the session must read as empty; from memory when the view can vouch. */
  isRevoked: (id: string) => Promise<boolean>
  /**
   * The per-request check: isRevoked(), answered synchronously whenever this
   * process can (the view vouches, or the store is in memory), and for a live
   * session a touch of lastSeenAt when one is due, never waited for (a failed
   * one is logged). A promise only when the store must be asked.
   */
  check: (id: string) => boolean | Promise<boolean>
  readonly events: EventEmitter<RegistryEvents>
  counters: () => RegistryCounters
  health: () => Promise<RegistryHealth>
  close: () => Promise<void>
}

export function createSessionRegistry (options: SessionRegistryOptions = {}, deps: SessionRegistryDeps = {}): SessionRegistry {
  const o = validateOptions(SessionRegistryOptionsSchema, options, 'sessions')
  const outageTrust = o.outageTrust ?? 5
  const heartbeatInterval = o.heartbeatInterval ?? 500
  if (heartbeatInterval >= outageTrust * 1000) {
    throw new errors.FSS_OPTIONS_INVALID('sessions.heartbeatInterval', 'must be shorter than outageTrust, or the view is never trusted between two heartbeats')
  }
  const clock = deps.clock ?? systemClock
  const absoluteTimeout = o.absoluteTimeout ?? 30 * DAY
  const touchInterval = o.touchInterval ?? 60
  const { client, log } = deps
  const commandTimeout = o.commandTimeout ?? 1000
  let store: SessionRegistryStore
  let lookupNow: ((id: string) => { expiresAt: number } | null) | undefined
  let feed: RevocationFeed | undefined
  let health: () => Promise<RegistryHealth>
  if (o.store === 'redis') {
    if (client === undefined) throw new errors.FSS_OPTIONS_INVALID('sessions.store', "'redis' needs the suite's Redis connection")
    if (deps.keys === undefined || deps.keys.length === 0) throw new errors.FSS_OPTIONS_INVALID('sessions.store', "'redis' needs the keyring to seal records")
    const redisStore = createRedisSessionStore({
      client, keys: deps.keys, prefix: o.keyPrefix ?? 'fss:', absoluteTimeout, touchInterval, commandTimeout, clock, log
    })
    const redisFeed = createRevocationFeed({
      subscriber: deps.subscriber ?? (redisStore.sharded
        ? clusterSubscriberFor(client, redisStore.channels, commandTimeout) as unknown as SubscriberClient
        : duplicateClient(client) as unknown as SubscriberClient),
      channel: redisStore.channel,
      heartbeatInterval,
      clock,
      log
    })
    health = async () => {
      const redis = await redisHealth(client, commandTimeout)
      if (!redis.healthy) return { kind: 'redis', healthy: false, detail: `Redis unreachable (${redis.status}): session checks answer 503 once the view's trust runs out` }
      if (!redisFeed.subscribed()) return { kind: 'redis', healthy: false, detail: 'revocation feed not subscribed: every session check asks Redis' }
      return { kind: 'redis', healthy: true, detail: 'Redis reachable, revocation feed subscribed' }
    }
    store = redisStore
    feed = redisFeed
  } else {
    const memoryStore = createMemorySessionStore({ absoluteTimeout, touchInterval, maxSessions: o.maxSessions ?? 10_000, clock })
    store = memoryStore
    lookupNow = memoryStore.lookupNow
    health = async () => ({ kind: 'memory', healthy: true, detail: 'in memory: sessions are known to this process only' })
  }
  const view = createRevocationView({ lookup: store.get, lookupNow, feed, maxEntries: o.viewSize ?? 10_000, outageTrust, clock })
  const events = new EventEmitter<RegistryEvents>()
  feed?.onRevoked((ids) => {
    view.markRevoked(ids)
    events.emit('revoked', ids)
  })
  feed?.onSubscribed(() => {
    view.flush()
    events.emit('flushed')
  })

  // lastSeenAt: written at most once per touchInterval, and never delays the request.
  function touchIfDue (id: string): void {
    if (store.touchDue(id)) store.touch(id).catch((err: { code?: string }) => log?.warn({ code: err.code }, 'lastSeenAt not written'))
  }

  function seen (revoked: boolean, id: string): boolean {
    if (!revoked) touchIfDue(id)
    return revoked
  }

  return {
    kind: store.kind,

    async register (input) {
      const record = await store.register(input)
      view.markLive(record.id, record.expiresAt)
      return record
    },

    touch: store.touch,
    list: store.list,
    get: store.get,

    async revoke (id, reason) {
      const revoked = await store.revoke(id, reason)
      // Either way the id is not live in the store now.
      view.markRevoked([id])
      return revoked
    },

    async revokeAll (sub, opts) {
      const ended = await store.revokeAll(sub, opts)
      view.markRevoked(ended)
      return ended
    },

    async revokeBySid (provider, sid) {
      const ended = await store.revokeBySid(provider, sid)
      view.markRevoked(ended)
      return ended
    },

    isRevoked: view.isRevoked,

    check (id) {
      const answer = view.revokedNow(id)
      return answer === undefined ? view.isRevoked(id).then((revoked) => seen(revoked, id)) : seen(answer, id)
    },

    events,

    counters () {
      const counters: RegistryCounters = { ...copyCounters(store.counters()), view: view.counters() }
      if (feed !== undefined) counters.feed = feed.counters()
      return counters
    },

    health,

    async close () {
      await feed?.close()
      await store.close()
    }
  }
}
