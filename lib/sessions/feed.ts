// Fleet-wide invalidation: every instance subscribes to the channel the Redis
// store publishes revocations on, over a connection of its own (a connection
// in subscriber mode can send nothing else). Redis pub/sub delivers at most
// once: a message sent while this instance was not subscribed is lost, so
// each (re)subscription tells the view to forget what it believed live.
//
// `heardUpTo()` is the feed's proof of freshness: the clock time before which
// every revocation Redis committed has reached this instance. A subscription
// acknowledged, or a PING answered on the subscriber connection (Redis answers
// in order, so every message published before it was processed came first),
// moves it to the time the command was sent. While Redis is unreachable it
// stands still, and the view trusts its entries for a bounded time after it.
//
// A SUBSCRIBE that fails on a connection that is up (an ACL without the
// channel, a command timeout) is retried on every heartbeat until it succeeds;
// meanwhile the feed vouches for nothing, so every check asks Redis, /health
// fails, and the first failure of each run is logged with its reason.
import type { FastifyBaseLogger } from 'fastify'
import { isSessionId } from './id.ts'
import type { Clock } from './contract.ts'

/**
 * What the feed needs of its dedicated connection (an ioredis client it owns
 * and closes). Written out: ioredis is an optional peer dependency.
 */
export interface SubscriberClient {
  readonly status: string
  subscribe (channel: string): Promise<unknown>
  ping (): Promise<string>
  disconnect (): void
  on (event: 'ready' | 'close', listener: () => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  on (event: 'message', listener: (channel: string, message: string) => void): unknown
}

export interface RevocationFeedOptions {
  subscriber: SubscriberClient
  channel: string
  /** ms between PINGs on the subscriber connection: how often `heardUpTo()` moves while Redis is healthy. */
  heartbeatInterval: number
  clock: Clock
  log?: FastifyBaseLogger
}

export interface FeedCounters {
  /** Messages received on the channel. */
  messages: number
  /** Session ids those messages announced as revoked (invalidations received). */
  invalidations: number
  /** Words in a message that were not session ids (ignored). */
  malformed: number
  /** Successful (re)subscriptions; each one flushes the view. */
  subscriptions: number
  /** SUBSCRIBE commands that failed (each is retried on the next heartbeat). */
  subscribeFailures: number
}

export interface RevocationFeed {
  /** Clock ms before which every committed revocation has been received; -Infinity until subscribed. */
  heardUpTo: () => number
  subscribed: () => boolean
  onRevoked: (listener: (ids: string[]) => void) => void
  /** Called after every (re)subscription, before `heardUpTo()` moves: revocations sent before it may have been missed. */
  onSubscribed: (listener: () => void) => void
  counters: () => FeedCounters
  close: () => Promise<void>
}

export function createRevocationFeed (opts: RevocationFeedOptions): RevocationFeed {
  const { subscriber, channel, clock, log } = opts
  const revokedListeners: Array<(ids: string[]) => void> = []
  const subscribedListeners: Array<() => void> = []
  const counters: FeedCounters = { messages: 0, invalidations: 0, malformed: 0, subscriptions: 0, subscribeFailures: 0 }
  let heard = -Infinity
  let subscribed = false
  let subscribing = false
  let failing = false
  let pinging = false
  let down = false
  let closed = false

  const lost = (reason: string): void => {
    subscribed = false
    if (!down && !closed) log?.warn({ reason }, 'session revocation feed lost: the view is trusted for outageTrust seconds, then asks Redis')
    down = true
  }

  function subscribe (): void {
    // A retry never overlaps a SUBSCRIBE still on its way.
    if (subscribing) return
    subscribing = true
    const sentAt = clock.now()
    subscriber.subscribe(channel).then(() => {
      subscribing = false
      subscribed = true
      counters.subscriptions++
      for (const listener of subscribedListeners) listener()
      heard = Math.max(heard, sentAt)
      if (down || failing) log?.info('session revocation feed subscribed again; the view was flushed')
      down = false
      failing = false
    }, (err: Error) => {
      subscribing = false
      counters.subscribeFailures++
      // Retried on every heartbeat; meanwhile every check asks Redis. Logged
      // once per run of failures, not once per retry.
      if (!failing && !closed) log?.warn({ reason: err.message }, 'session revocation feed could not subscribe: retrying on every heartbeat, every session check asks Redis')
      failing = true
    })
  }

  subscriber.on('ready', subscribe)
  subscriber.on('close', () => lost('connection closed'))
  // ioredis emits 'error' on every failed reconnect; unhandled, it would be printed.
  subscriber.on('error', (err: Error) => lost(err.message))
  subscriber.on('message', (_channel: string, message: string) => {
    // The connection is the feed's own and subscribed to one channel only.
    const words = message.split(' ')
    const ids = words.filter(isSessionId)
    counters.messages++
    counters.invalidations += ids.length
    counters.malformed += words.length - ids.length
    if (ids.length > 0) for (const listener of revokedListeners) listener(ids)
  })
  if (subscriber.status === 'ready') subscribe()

  const heartbeat = clock.setInterval(() => {
    if (!subscribed) {
      if (subscriber.status === 'ready') subscribe()
      return
    }
    if (pinging) return
    pinging = true
    const sentAt = clock.now()
    subscriber.ping().then(() => { heard = Math.max(heard, sentAt) }, () => {})
      .finally(() => { pinging = false })
  }, opts.heartbeatInterval)

  return {
    heardUpTo: () => heard,
    subscribed: () => subscribed,
    onRevoked: (listener) => { revokedListeners.push(listener) },
    onSubscribed: (listener) => { subscribedListeners.push(listener) },
    counters: () => ({ ...counters }),
    async close () {
      closed = true
      subscribed = false
      clock.clearInterval(heartbeat)
      // No QUIT: a subscriber has nothing to flush, and QUIT would wait on a
      // dead Redis. Nor a wait for 'end': ioredis never emits it when
      // disconnected between two reconnect attempts.
      subscriber.disconnect()
    }
  }
}
