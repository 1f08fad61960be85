// How the token store reaches Redis: one server by URL, a Redis Cluster by its
// seed nodes, the primary Sentinel names, or a client the service already
// holds. Whatever the topology, the outage policy is the one the standalone
// client has: no offline queue, one retry, a command timeout and bounded
// reconnects, so during a failover a request meets a coded 503 within the
// timeout instead of waiting for the new primary. ioredis (an optional peer)
// is loaded on first connect, Cluster and Sentinel alike; no published
// declaration here names its types.
import { Type, type Static } from '@sinclair/typebox'
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import type { ConnectionOptions } from 'node:tls'
import { errors } from '../errors.ts'
import { failFastOptions, loadIoredis, reconnectDelay, type OwnedRedisClient, type RedisClient } from './client.ts'

export type RedisTopology = 'standalone' | 'cluster' | 'sentinel'

const RedisNodeSchema = Type.Object({
  host: Type.String({ minLength: 1, maxLength: 253 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 })
}, { additionalProperties: false })
export type RedisNode = Static<typeof RedisNodeSchema>

const Pem = (description: string) => Type.String({ minLength: 1, maxLength: 100_000, description })

/** node:tls options for `rediss://`, Cluster nodes and Sentinel (its sentinels and data servers alike). */
export const RedisTlsSchema = Type.Object({
  ca: Type.Optional(Pem('PEM text of the CA certificate(s) to trust.')),
  cert: Type.Optional(Pem('PEM text of a client certificate.')),
  key: Type.Optional(Pem('PEM text of the client certificate\'s key.')),
  servername: Type.Optional(Type.String({ minLength: 1, maxLength: 253, description: 'Name the server certificate must carry (SNI).' })),
  rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'false accepts any certificate: for tests only.' }))
}, { additionalProperties: false, description: 'node:tls options for a `rediss://` url, Cluster nodes, and Sentinel (its sentinels and data servers alike). Refused with a `redis://` url.' })

/**
 * Where Redis is: one of `url`, `cluster`, `sentinels` (+ `name`) or `client`.
 * With none of them, the environment decides (see redisConnectionFromEnv),
 * else redis://127.0.0.1:6379.
 */
export const RedisConnectionProperties = {
  url: Type.Optional(Type.String({ pattern: '^rediss?://', description: '`redis://[user:password@]host:port/db` (`rediss://` for TLS, with `tls`). One of `url`, `cluster`, `sentinels` or `client`; with none: `REDIS_URL`, `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`, else `redis://127.0.0.1:6379`.' })),
  cluster: Type.Optional(Type.Array(RedisNodeSchema, { minItems: 1, maxItems: 1000, description: 'Redis Cluster seed nodes `[{ host, port }]` (one is enough; the rest is discovered).' })),
  sentinels: Type.Optional(Type.Array(RedisNodeSchema, { minItems: 1, maxItems: 100, description: 'Sentinel addresses `[{ host, port }]`; needs `name`.' })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The master name the sentinels monitor.' })),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'ACL user of the data servers (Cluster, Sentinel; with a url, put it in the url).' })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Password of the data servers (Cluster, Sentinel; with a url, put it in the url).' })),
  sentinelPassword: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Password of the sentinels themselves.' })),
  tls: Type.Optional(RedisTlsSchema),
  client: Type.Optional(Type.Unsafe<RedisClient>(Type.Any({ tsType: 'ioredis Redis or Cluster', description: 'A connected ioredis `Redis` or `Cluster` to share (e.g. `fastify.redis` from @fastify/redis), used as is and not closed by this plugin. Without it, the plugin loads the optional peer dependency `ioredis` and connects itself.' })))
}
export const RedisConnectionSchema = Type.Object(RedisConnectionProperties)
export type RedisConnectOptions = Static<typeof RedisConnectionSchema>

/** ioredis options, typed loosely here so the published declarations need no ioredis. */
export type IoredisOptions = object

/** One way to reach Redis, checked: what connectRedis builds. */
export type RedisTarget =
  | { topology: 'standalone', url: string, options: IoredisOptions }
  | { topology: 'cluster', nodes: RedisNode[], options: IoredisOptions }
  | { topology: 'sentinel', options: IoredisOptions }

export interface RedisConnection {
  client: RedisClient
  topology: RedisTopology
  /** False for a client the service passed in: the plugin leaves it open. */
  owned: boolean
  /** Ends an owned client for good: QUIT, then disconnect. Leaves a shared one alone. */
  close: () => Promise<void>
}

const DEFAULT_URL = 'redis://127.0.0.1:6379'

function invalid (name: string, reason: string): Error {
  return new errors.FSS_OPTIONS_INVALID(name, reason)
}

/** The topology of a client, whoever made it. */
export function topologyOf (client: RedisClient): RedisTopology {
  const io = client as Redis | Cluster
  if (io.isCluster) return 'cluster'
  return ((io as Redis).options.sentinels?.length ?? 0) > 0 ? 'sentinel' : 'standalone'
}

/**
 * Reconnect backoff behind Sentinel: each attempt asks a sentinel first, so
 * it is cheap, and the cap bounds how long after the new primary is elected
 * the client still waits before asking again.
 */
export function sentinelReconnectDelay (attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 500)
}

// A primary that became a replica (failover behind a DNS name or a stale
// Sentinel answer) refuses writes with READONLY: reconnect, which asks again.
const reconnectOnReadonly = (err: Error): boolean => err.message.startsWith('READONLY')

/**
 * Checks that exactly one way to reach Redis is given, with only the settings
 * that apply to it, and turns it into ioredis options. `env` is asked only
 * when no way is given. Throws FSS_OPTIONS_INVALID naming the option.
 */
export function resolveRedisTarget (opts: RedisConnectOptions, commandTimeout: number, env: NodeJS.ProcessEnv = process.env): RedisTarget | { topology: 'client', client: RedisClient } {
  const given = (['url', 'cluster', 'sentinels', 'client'] as const).filter((k) => opts[k] !== undefined)
  if (given.length > 1) throw invalid('redis', `give one of url, cluster, sentinels or client, not ${given.join(' and ')}`)
  if (given.length === 0) {
    // A name beside REDIS_SENTINEL_NAME would be a silent choice between the two.
    if (opts.name !== undefined) throw invalid('redis.name', 'names the Sentinel master: give sentinels too')
    return resolveRedisTarget({ ...opts, ...(redisConnectionFromEnv(env) ?? { url: DEFAULT_URL }) }, commandTimeout, env)
  }
  const { url, cluster, sentinels, name, username, password, sentinelPassword, tls, client } = opts
  if (client !== undefined) {
    const extra = (['name', 'username', 'password', 'sentinelPassword', 'tls'] as const).find((k) => opts[k] !== undefined)
    if (extra !== undefined) throw invalid(`redis.${extra}`, 'a shared client is used as is: configure it on the client')
    if (typeof (client as { isCluster?: unknown } | null)?.isCluster !== 'boolean') throw invalid('redis.client', 'expected an ioredis Redis or Cluster instance')
    return { topology: 'client', client }
  }
  if (sentinels === undefined && name !== undefined) throw invalid('redis.name', 'names the Sentinel master: give sentinels too')
  if (sentinels === undefined && sentinelPassword !== undefined) throw invalid('redis.sentinelPassword', 'give sentinels too')
  const tlsOptions = tls as ConnectionOptions | undefined
  const base = failFastOptions(commandTimeout)
  if (url !== undefined) {
    const extra = (['username', 'password'] as const).find((k) => opts[k] !== undefined)
    if (extra !== undefined) throw invalid(`redis.${extra}`, 'put credentials in the url')
    if (tls !== undefined && !url.startsWith('rediss://')) throw invalid('redis.tls', 'needs a rediss:// url')
    const options: RedisOptions = { ...base, reconnectOnError: reconnectOnReadonly, ...(tlsOptions !== undefined && { tls: tlsOptions }) }
    return { topology: 'standalone', url, options }
  }
  const auth = { ...(username !== undefined && { username }), ...(password !== undefined && { password }) }
  if (cluster !== undefined) {
    const { retryStrategy, enableOfflineQueue, ...nodeOptions } = base
    const options: ClusterOptions = {
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy as ClusterOptions['clusterRetryStrategy'],
      // A command to a primary that just died is retried while the cluster
      // elects its replica, for about one command timeout in all; the
      // request itself is answered within the timeout either way.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      maxRedirections: Math.max(3, Math.ceil(commandTimeout / 100)),
      slotsRefreshTimeout: commandTimeout,
      redisOptions: { ...nodeOptions, ...auth, ...(tlsOptions !== undefined && { tls: tlsOptions }) },
      // With TLS the certificate names the host the node announces; ioredis's own
      // lookup would swap a seed's name for its address before the handshake.
      ...(tlsOptions !== undefined && { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) })
    }
    return { topology: 'cluster', nodes: cluster, options }
  }
  if (name === undefined) throw invalid('redis.name', 'the master name the sentinels monitor is required with sentinels')
  const options: RedisOptions = {
    ...base,
    retryStrategy: sentinelReconnectDelay,
    ...auth,
    sentinels: sentinels as RedisNode[],
    name,
    role: 'master',
    ...(sentinelPassword !== undefined && { sentinelPassword }),
    sentinelRetryStrategy: reconnectDelay,
    sentinelCommandTimeout: commandTimeout,
    // Sentinel's +switch-master message reconnects at once, not at the next failed command.
    failoverDetector: true,
    reconnectOnError: reconnectOnReadonly,
    ...(tlsOptions !== undefined && { tls: tlsOptions, enableTLSForSentinelMode: true, sentinelTLS: tlsOptions })
  }
  return { topology: 'sentinel', options }
}

/**
 * The client for `opts` (see resolveRedisTarget). ioredis (`specifier`) is
 * loaded here, on first use: missing, FSS_REDIS_CLIENT_MISSING.
 */
export async function connectRedis (opts: RedisConnectOptions, commandTimeout: number, env: NodeJS.ProcessEnv = process.env, specifier = 'ioredis'): Promise<RedisConnection> {
  const target = resolveRedisTarget(opts, commandTimeout, env)
  if (target.topology === 'client') return { client: target.client, topology: topologyOf(target.client), owned: false, close: async () => {} }
  const ioredis = await loadIoredis(specifier) as typeof import('ioredis')
  const client: Redis | Cluster = target.topology === 'cluster'
    ? new ioredis.Cluster(target.nodes, target.options as ClusterOptions)
    : target.topology === 'standalone'
      ? new ioredis.Redis(target.url, target.options as RedisOptions)
      : new ioredis.Redis(target.options as RedisOptions)
  const stopReviving = target.topology === 'sentinel' ? reviveSentinelClient(client as Redis) : () => {}
  return {
    client: client as OwnedRedisClient,
    topology: target.topology,
    owned: true,
    async close () {
      stopReviving()
      await client.quit().catch(() => {})
      // Also after a clean QUIT: quit() leaves Sentinel's failover-detector
      // subscriptions open, which keeps the process alive (redis/ioredis#1362).
      client.disconnect()
    }
  }
}

/**
 * When Sentinel announces the new primary while a client is between
 * reconnect attempts, ioredis's failover detector aborts the attempt under
 * way and the client ends for good (status "end", no more retries). Until the
 * returned function is called, anything that ends `client` starts it again,
 * after the usual backoff.
 */
export function reviveSentinelClient (client: RedisClient): () => void {
  const io = client as unknown as Redis
  let closing = false
  let revive: NodeJS.Timeout | undefined
  let attempt = 0
  io.on('ready', () => { attempt = 0 })
  io.on('end', () => {
    if (closing) return
    revive = setTimeout(() => { if (!closing) io.connect().catch(() => {}) }, sentinelReconnectDelay(attempt++))
  })
  return () => {
    closing = true
    clearTimeout(revive)
  }
}

/**
 * A second connection like `client` (for a subscriber), which the caller
 * ends with disconnect(): behind Sentinel it is revived like the first.
 */
export function duplicateClient (client: RedisClient): RedisClient & { disconnect: () => void } {
  const io = client as unknown as Redis
  const copy = io.duplicate()
  if (topologyOf(client) !== 'sentinel') return copy as unknown as RedisClient & { disconnect: () => void }
  const stopReviving = reviveSentinelClient(copy as unknown as RedisClient)
  const disconnect = copy.disconnect.bind(copy)
  copy.disconnect = (reconnect?: boolean) => {
    stopReviving()
    disconnect(reconnect)
  }
  return copy as unknown as RedisClient & { disconnect: () => void }
}

const NODE = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/

/** `host:port,host:port` (IPv6 as `[::1]:port`); throws FSS_OPTIONS_INVALID naming `variable`. */
export function parseRedisNodes (raw: string, variable: string): RedisNode[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean)
  if (items.length === 0 || items.length > 1000) throw invalid(variable, 'expected host:port[,host:port...]')
  return items.map((item) => {
    const m = NODE.exec(item)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535) throw invalid(variable, `expected host:port[,host:port...], item ${JSON.stringify(item.slice(0, 100))} is not`)
    return { host: m[1] ?? m[2], port }
  })
}

/**
 * The connection the environment describes, or undefined when it names none:
 * REDIS_URL, or REDIS_CLUSTER_NODES=host:port,..., or
 * REDIS_SENTINELS=host:port,... with REDIS_SENTINEL_NAME. More than one is refused.
 */
export function redisConnectionFromEnv (env: NodeJS.ProcessEnv = process.env): RedisConnectOptions | undefined {
  const set = (name: string): string | undefined => env[name] === undefined || env[name] === '' ? undefined : env[name]
  const url = set('REDIS_URL')
  const clusterNodes = set('REDIS_CLUSTER_NODES')
  const sentinels = set('REDIS_SENTINELS')
  const name = set('REDIS_SENTINEL_NAME')
  const given = [url && 'REDIS_URL', clusterNodes && 'REDIS_CLUSTER_NODES', sentinels && 'REDIS_SENTINELS'].filter(Boolean)
  if (given.length > 1) throw invalid(given.join(' and '), 'set only one of REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS')
  if (name !== undefined && sentinels === undefined) throw invalid('REDIS_SENTINEL_NAME', 'goes with REDIS_SENTINELS')
  if (url !== undefined) {
    if (!/^rediss?:\/\//.test(url)) throw invalid('REDIS_URL', 'expected redis://host:port or rediss://host:port')
    return { url }
  }
  if (clusterNodes !== undefined) return { cluster: parseRedisNodes(clusterNodes, 'REDIS_CLUSTER_NODES') }
  if (sentinels === undefined) return undefined
  if (name === undefined) throw invalid('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS')
  return { sentinels: parseRedisNodes(sentinels, 'REDIS_SENTINELS'), name }
}

/** Where tokens live, for a start-up line: hosts only (a URL may carry a password). */
export function describeRedisConnection (opts: RedisConnectOptions): string {
  if (opts.cluster !== undefined) return `Redis Cluster (seeds ${opts.cluster.map((n) => `${n.host}:${n.port}`).join(', ')})`
  if (opts.sentinels !== undefined) return `Redis Sentinel master ${opts.name ?? '?'} (sentinels ${opts.sentinels.map((n) => `${n.host}:${n.port}`).join(', ')})`
  if (opts.url !== undefined) return `Redis at ${new URL(opts.url).host}`
  return 'a Redis client the service supplied'
}
