// The revocation feed's subscriber on a Redis Cluster. Revocations go out
// with SPUBLISH on each bucket's channel (redis-keys.ts), and sharded pub/sub
// delivers a message only to subscribers of the shard that owns its slot. So
// this holds one plain connection per primary, SSUBSCRIBEd to the channels of
// the slots that primary serves, and looks to the feed like one subscriber:
// `ready` once every shard is subscribed, `close` when any shard is lost, a
// PING answered only when every shard answered (each in order with its own
// messages: the feed's proof of freshness holds per shard, so for all).
//
// Any loss (a connection closed, or Redis taking the slots away, which
// ioredis reports as `moved`: a failover the old primary survived, or a
// resharding) tears every shard connection down and builds them again from a
// fresh CLUSTER SLOTS, with a backoff: until a replica is promoted the slot
// map still names the dead primary. The feed flushes its view on the `ready`
// that follows, so whatever was announced in between cannot be missed.
import { EventEmitter } from 'node:events'
import type { Cluster, Redis } from 'ioredis'
import { guard, loadIoredis, reconnectDelay, type RedisClient } from '../redis/client.ts'

/** What one shard connection must do: an ioredis Redis (not a Cluster) to one primary. */
export interface ShardConnection {
  ssubscribe: (...channels: string[]) => Promise<unknown>
  ping: () => Promise<string>
  disconnect: () => void
  on: (event: string, listener: (...args: string[]) => void) => unknown
}

/** CLUSTER SLOTS: [first, last, [host, port, ...] (the primary), ...replicas]. */
export type SlotRanges = Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>

export interface ClusterSubscriberOptions {
  /** CLUSTER SLOTS, asked of any live node. */
  slots: () => Promise<SlotRanges>
  /** A connected connection to one primary; it must not reconnect by itself. */
  connect: (host: string, port: number) => Promise<ShardConnection>
  /** The channels to listen to. */
  channels: string[]
  /** ms before the next rebuild after `attempt` failed ones. */
  retryDelay: (attempt: number) => number
}

/** What the feed calls: the shape of an ioredis subscriber connection. */
export interface ClusterSubscriber {
  readonly status: string
  subscribe: (channel: string) => Promise<unknown>
  ping: () => Promise<string>
  disconnect: () => void
  on: (event: string, listener: (...args: never[]) => void) => unknown
}

// Redis Cluster specification, "Key distribution model": CRC16-CCITT (XMODEM) of the
// hash tag (the part between the first `{` and the next `}`, if not empty) modulo 16384.
const CRC16 = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  return crc
})

/** The Cluster slot of `key` (what CLUSTER KEYSLOT answers). */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key
  let crc = 0
  for (const byte of Buffer.from(hashed)) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ byte) & 0xff]
  return crc % 16384
}

export function createClusterSubscriber (opts: ClusterSubscriberOptions): ClusterSubscriber {
  const events = new EventEmitter()
  const bySlot = new Map<number, string[]>()
  for (const channel of opts.channels) {
    const slot = keySlot(channel)
    bySlot.set(slot, [...bySlot.get(slot) ?? [], channel])
  }
  let connections: ShardConnection[] = []
  let status = 'connecting'
  let generation = 0
  let attempt = 0
  let timer: NodeJS.Timeout | undefined

  function drop (): void {
    generation++
    for (const c of connections) c.disconnect()
    connections = []
  }

  // Never after disconnect(): drop() moved the generation every handler checks.
  function lost (reason: string): void {
    drop()
    if (status === 'ready') {
      status = 'connecting'
      events.emit('close')
    }
    events.emit('error', new Error(reason))
    clearTimeout(timer)
    timer = setTimeout(build, opts.retryDelay(attempt++))
  }

  async function build (): Promise<void> {
    const mine = ++generation
    try {
      const ranges = await opts.slots()
      const owners = new Map<string, { host: string, port: number, channels: string[][] }>()
      for (const [slot, channels] of bySlot) {
        const range = ranges.find(([first, last]) => slot >= first && slot <= last)
        if (range === undefined) throw new Error(`slot ${slot} has no primary`)
        const [host, port] = range[2]
        const owner = owners.get(key(host, port)) ?? { host, port, channels: [] }
        // One SSUBSCRIBE per slot: Redis refuses one that spans slots.
        owner.channels.push(channels)
        owners.set(key(host, port), owner)
      }
      await Promise.all([...owners.values()].map(async ({ host, port, channels }) => {
        const connection = await opts.connect(host, port)
        if (mine !== generation) {
          connection.disconnect()
          return
        }
        connections.push(connection)
        connection.on('smessage', (channel, message) => events.emit('message', channel, message))
        connection.on('close', () => { if (mine === generation) lost(`shard ${key(host, port)} connection closed`) })
        connection.on('moved', () => { if (mine === generation) lost(`shard ${key(host, port)} gave up slots`) })
        connection.on('error', () => {})
        await Promise.all(channels.map((c) => connection.ssubscribe(...c)))
      }))
    } catch (err) {
      if (mine === generation) lost((err as Error).message)
      return
    }
    if (mine !== generation) return
    attempt = 0
    status = 'ready'
    events.emit('ready')
  }

  build()

  return {
    get status () { return status },
    async subscribe () {
      if (status !== 'ready') throw new Error(`cluster subscriber ${status}`)
    },
    async ping () {
      if (status !== 'ready') throw new Error(`cluster subscriber ${status}`)
      await Promise.all(connections.map((c) => c.ping()))
      return 'PONG'
    },
    disconnect () {
      status = 'end'
      clearTimeout(timer)
      drop()
    },
    on (event, listener) {
      events.on(event, listener as (...args: unknown[]) => void)
      return this
    }
  }
}

/**
 * The subscriber for `cluster` (an ioredis Cluster): its shard connections
 * take the Cluster's credentials and TLS settings, and are bounded by
 * `commandTimeout` like every other command.
 */
export function clusterSubscriberFor (cluster: RedisClient, channels: string[], commandTimeout: number): ClusterSubscriber {
  return createClusterSubscriber(clusterSubscriberOptions(cluster, channels, commandTimeout))
}

/** The options clusterSubscriberFor uses: CLUSTER SLOTS through `cluster`, shard connections like its own. */
export function clusterSubscriberOptions (cluster: RedisClient, channels: string[], commandTimeout: number): ClusterSubscriberOptions {
  const { redisOptions } = (cluster as unknown as Cluster).options
  return {
    channels,
    slots: async () => await guard(cluster, commandTimeout, () => (cluster as unknown as Cluster).call('CLUSTER', 'SLOTS')) as SlotRanges,
    async connect (host, port) {
      const { Redis: Client } = await loadIoredis() as typeof import('ioredis')
      const connection: Redis = new Client({
        ...redisOptions,
        host,
        port,
        lazyConnect: true,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 0,
        // Never by itself: a lost shard is rebuilt from a fresh slot map.
        retryStrategy: () => null,
        connectTimeout: Math.max(commandTimeout, 1000),
        commandTimeout
      })
      connection.on('error', () => {})
      try {
        await connection.connect()
      } catch (err) {
        connection.disconnect()
        throw err
      }
      return connection as unknown as ShardConnection
    },
    retryDelay: reconnectDelay
  }
}

function key (host: string, port: number): string {
  return `${host}:${port}`
}
