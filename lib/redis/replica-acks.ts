// Redis replication is asynchronous: a primary acknowledges a write before its
// replicas hold it, and a failover in that gap promotes a replica without it.
// For a refreshed token that gap matters: the provider may already have
// retired the old refresh token, so a record rolled back to the old pair is a
// forced log-in. So the token store and the refresh hand-off answer a write
// only once `WAIT <replicas> <timeout>` confirms it, and count the writes no
// replica confirmed in time.
//
// WAIT confirms every earlier write of its connection, and a client has one
// connection per primary, so writes share rounds (group commit): a round sends
// WAIT to every primary; a write joins the first round that starts after its
// SET was answered. At most one round runs and one waits, whatever the load.
// WAIT blocks its connection while it waits, so after a round comes back short
// (a replica is down, or a failover left a primary without one) writes skip the
// wait for ten timeouts, unconfirmed, rather than stall the commands behind it.
import { Type } from '@sinclair/typebox'
import type { Cluster, Redis } from 'ioredis'
import type { RedisClient } from './client.ts'
import type { RedisTopology } from './connection.ts'

export const ReplicaAckProperties = {
  /** Replicas that must confirm a token write (WAIT). Default 1 for Cluster and Sentinel, 0 (no WAIT) for one server. */
  replicaAcks: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'How many replicas must confirm a token write (`WAIT`) before it is answered. Default: 1 for Cluster and Sentinel, 0 (no WAIT) for one server.' })),
  /** ms a token write waits for those confirmations; under half of commandTimeout. Default 100 (at most a quarter of commandTimeout). */
  replicaAckTimeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Milliseconds a token write waits for those confirmations; under half of `commandTimeout`. Default: 100 (at most a quarter of `commandTimeout`).' }))
}

export interface ReplicaAckCounters {
  /** writes at least `replicas` replicas confirmed before they were answered */
  confirmed: number
  /** writes whose WAIT came back short (or failed): a failover now could undo them */
  unconfirmed: number
  /** writes answered without waiting, in the quiet spell after a short WAIT */
  unwaited: number
}

export interface ReplicaAckOptions {
  replicas: number
  timeoutMs: number
  /** Called once per short round with the fewest confirmations a primary gave (-1: WAIT failed). */
  onShortfall?: (fewest: number) => void
}

export interface ReplicaAcks {
  /** The client for writes that must survive a failover; the given client itself when replicas is 0. */
  client: RedisClient
  counters: ReplicaAckCounters
}

/** Replicated topologies confirm by default; a single server has no replica to wait for. */
export function defaultReplicaAcks (topology: RedisTopology): number {
  return topology === 'standalone' ? 0 : 1
}

type Command = (...args: unknown[]) => Promise<unknown>

export function withReplicaAcks (shared: RedisClient, opts: ReplicaAckOptions): ReplicaAcks {
  const client = shared as unknown as Redis | Cluster
  const counters: ReplicaAckCounters = { confirmed: 0, unconfirmed: 0, unwaited: 0 }
  if (opts.replicas === 0) return { client: shared, counters }
  const { replicas, timeoutMs, onShortfall } = opts
  const primaries = (): Redis[] => client.isCluster ? (client as Cluster).nodes('master') : [client as Redis]
  let running: Promise<boolean> | null = null
  let waiting: Promise<boolean> | null = null
  let quietUntil = 0

  async function round (): Promise<boolean> {
    const confirmations = await Promise.all(primaries().map((node) => node.wait(replicas, timeoutMs).catch(() => -1)))
    const fewest = Math.min(...confirmations)
    if (fewest >= replicas) return true
    quietUntil = Date.now() + 10 * timeoutMs
    onShortfall?.(fewest)
    return false
  }
  function start (): Promise<boolean> {
    const current = round().finally(() => { if (running === current) running = null })
    running = current
    return current
  }
  /** Resolves with the outcome of a round that started after this call. */
  function confirm (): Promise<boolean> {
    if (running === null) return start()
    // The running round may have been sent before this write: wait for the next one.
    waiting ??= running.then(() => {
      waiting = null
      return start()
    })
    return waiting
  }

  async function set (...args: unknown[]): Promise<unknown> {
    const reply = await (client.set as Command).apply(client, args)
    if (Date.now() < quietUntil) {
      counters.unwaited++
    } else if (await confirm()) {
      counters.confirmed++
    } else {
      counters.unconfirmed++
    }
    return reply
  }

  // Everything but SET is the client's own (status, events, GET, EVAL...).
  const durable = new Proxy(client, {
    get (target, property) {
      if (property === 'set') return set
      const value = Reflect.get(target, property, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return { client: durable as RedisClient, counters }
}
