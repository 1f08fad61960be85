// plugins/redis-token-store.ts — keeps OAuth tokens in Redis instead of the
// session cookie, and coordinates refreshes across every instance sharing that
// Redis. It builds the pieces; the OAuth plugin uses them through its `store`
// and `refreshLock` options (the root plugin wires them when `redis` is set).
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { validateOptions } from '../lib/options.ts'
import { errors } from '../lib/errors.ts'
import { waitReady, type OwnedRedisClient, type RedisClient } from '../lib/redis/client.ts'
import { connectRedis, RedisConnectionProperties } from '../lib/redis/connection.ts'
import { defaultReplicaAcks, ReplicaAckProperties, withReplicaAcks, type ReplicaAckCounters } from '../lib/redis/replica-acks.ts'
import { topologyHealth, type TopologyHealth } from '../lib/redis/topology.ts'
import { createRedisTokenStore, recordKey, SESSION_REF_FIELD, type RecordCounters } from '../lib/redis/store.ts'
import { getSuiteField } from '../lib/session/suite-fields.ts'
import { createRedisLock, type RedisLock } from '../lib/redis/lock.ts'
import { createRedisRefreshLock } from '../lib/redis/fleet-refresh.ts'
import { healthRegistry } from '../lib/health.ts'
import { getDerivedKeys, getSecretKeyBytes } from './secret-keys.ts'
import type { TokenStore } from '../lib/oauth/store.ts'
import { isStoredToken, type StoredToken } from '../lib/oauth/token.ts'
import type { RefreshLock } from '../lib/oauth/refresh.ts'

export interface RedisTokenStoreDecorator {
  /** The connection in use (shared or owned), e.g. for readiness checks. */
  client: RedisClient
  /** Pass to the OAuth plugin as `store`. */
  store: TokenStore
  /** The SET NX lock per refresh token under `refreshLock`. */
  lock: RedisLock
  /** Pass to the OAuth plugin as `refreshLock`: one refresh across every instance. */
  refreshLock: RefreshLock
  /** The whole topology: every Cluster primary, or the sentinels' primary, or the one server. */
  health: () => Promise<TopologyHealth>
  /** Token writes confirmed by a replica (WAIT), reported short, or made without waiting. */
  replicaAcks: ReplicaAckCounters
  /** Records read back from Redis that could not be used (each read as no token); for health and debug output. */
  counters: RecordCounters
  /** Prefix of every key this plugin writes (`keyPrefix`). */
  keyPrefix: string
  /** ms before a command counts as an outage. */
  commandTimeout: number
  /** The Redis key of this request's token record (a digest of the session's reference), or null when it has none. */
  recordKeyOf: (request: FastifyRequest) => string | null
}

declare module 'fastify' {
  interface FastifyInstance { redisTokenStore: RedisTokenStoreDecorator }
}

const REDIS_DEFAULTS = {
  keyPrefix: 'fss:',
  commandTimeout: 1000,
  handoffTtl: 30_000,
  failureTtl: 5000,
  startupWait: 2000
} as const

/** A duration in milliseconds, 1 ms to 10 minutes. */
const Ms = (description: string, extra: { default?: number } = {}) => Type.Integer({ minimum: 1, maximum: 600_000, description, ...extra })

export const RedisTokenStoreOptionsSchema = Type.Object({
  ...RedisConnectionProperties,
  ...ReplicaAckProperties,
  keyPrefix: Type.Optional(Type.String({ maxLength: 100, pattern: '^[^{}]*$', description: 'Prefix of every key this plugin writes; no `{` or `}`: the keys carry their own Cluster hash tags. (Not `prefix`: Fastify reserves that for routes.)', default: REDIS_DEFAULTS.keyPrefix })),
  /** seconds; default the session's absoluteTimeout, else 30 days */
  ttl: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds a token record lives from its first write (updates keep the rest). Default: the session\'s `absoluteTimeout`, else 30 days.' })),
  /** ms @default 1000 */
  commandTimeout: Type.Optional(Ms('Milliseconds before a Redis command counts as an outage (503 FSS_STORE_UNAVAILABLE).', { default: REDIS_DEFAULTS.commandTimeout })),
  /** ms; default the OAuth plugin's timeout + 5000 */
  lockTtl: Type.Optional(Ms('Milliseconds a refresh lock lives: above the OAuth plugin\'s `timeout`, which that plugin checks when it takes `refreshLock`. Default: that timeout + 5000 (15000 with its default).')),
  /** ms; default lockTtl + 5000 */
  maxWait: Type.Optional(Ms('Milliseconds a request waits for another instance\'s refresh before 504 FSS_TOKEN_PROVIDER_TIMEOUT. Default: `lockTtl` + 5000.')),
  /** ms @default 30000 */
  handoffTtl: Type.Optional(Ms('Milliseconds a refresh result is handed to instances still holding the old refresh token.', { default: REDIS_DEFAULTS.handoffTtl })),
  /** ms @default 5000 */
  failureTtl: Type.Optional(Ms('Milliseconds a refresh failure is repeated to the fleet instead of calling the provider again.', { default: REDIS_DEFAULTS.failureTtl })),
  /** ms @default 2000 */
  startupWait: Type.Optional(Ms('Milliseconds registration waits for a first connection before starting anyway (then /health reports Redis failing).', { default: REDIS_DEFAULTS.startupWait }))
}, { additionalProperties: false })

export type RedisTokenStorePluginOptions = Static<typeof RedisTokenStoreOptionsSchema>

const DAY = 86_400

function sessionAbsoluteTimeout (fastify: FastifyInstance): number | undefined {
  if (!fastify.hasDecorator('sessionInfo')) return undefined
  return fastify.getDecorator<{ policy?: { absoluteTimeout?: number } }>('sessionInfo').policy?.absoluteTimeout
}

const redisTokenStore: FastifyPluginAsync<RedisTokenStorePluginOptions> = async (fastify, opts) => {
  const options = validateOptions(RedisTokenStoreOptionsSchema, opts, 'redis')
  // Never undefined: the keyring is a declared dependency. This application's
  // keys seal; the keyring's own keys still open records written before keys
  // were derived per application.
  const ring = getSecretKeyBytes(fastify) as Buffer[]
  const keys = [...getDerivedKeys(fastify, 'redis-token-store') as Buffer[], ...ring]
  const commandTimeout = options.commandTimeout ?? REDIS_DEFAULTS.commandTimeout
  const prefix = options.keyPrefix ?? REDIS_DEFAULTS.keyPrefix
  // A write may wait for a running WAIT round and then its own: both must end
  // before the command timeout turns a stored token into an outage.
  if (options.replicaAckTimeout !== undefined && options.replicaAckTimeout * 2 >= commandTimeout) {
    throw new errors.FSS_OPTIONS_INVALID('redis.replicaAckTimeout', `must be under half of commandTimeout (${commandTimeout} ms)`)
  }
  const replicaAckTimeout = options.replicaAckTimeout ?? Math.max(1, Math.min(100, Math.floor(commandTimeout / 4)))
  const connection = await connectRedis(options, commandTimeout)
  const { owned, client } = connection
  const log = fastify.log.child({ plugin: 'redis-token-store' })
  // Token records and refresh hand-offs wait for a replica; the lock does not need to.
  const acks = withReplicaAcks(client, {
    replicas: options.replicaAcks ?? defaultReplicaAcks(connection.topology),
    timeoutMs: replicaAckTimeout,
    // `replicas`: the fewest confirmations a primary gave; -1 when WAIT itself failed.
    onShortfall: (replicas) => log.warn({ event: 'redis-write-unreplicated', replicas }, 'token writes were not confirmed by a replica in time: a failover now could undo them')
  })
  if (owned) {
    // ioredis emits 'error' on failed reconnects; unhandled, it would crash the process.
    const emitter = client as OwnedRedisClient
    let down = false
    let closing = false
    const lost = (reason: string): void => {
      if (!down && !closing) log.warn({ reason }, 'Redis unavailable: token routes answer 503 until it returns')
      down = true
    }
    emitter.on('error', (err: Error) => lost(err.message))
    emitter.on('close', () => lost('connection closed'))
    emitter.on('ready', () => {
      if (down) log.info('Redis available again')
      down = false
    })
    fastify.addHook('onClose', async () => {
      closing = true
      await connection.close()
    })
  }
  if (!await waitReady(client, options.startupWait ?? REDIS_DEFAULTS.startupWait)) {
    log.warn('Redis not reachable at start-up: starting anyway, /health reports it')
  }

  const lock = createRedisLock({ client, prefix, lockTtl: options.lockTtl, maxWait: options.maxWait, lockTtlOption: 'redis.lockTtl', commandTimeout })
  const counters: RecordCounters = { rejectedRecords: 0 }
  const decorator: RedisTokenStoreDecorator = {
    client,
    store: createRedisTokenStore({
      client: acks.client,
      keys,
      prefix,
      ttl: options.ttl ?? sessionAbsoluteTimeout(fastify) ?? 30 * DAY,
      commandTimeout,
      // The same check as every token read back: a record is never trusted because it decrypted.
      check: (value): value is StoredToken => isStoredToken(value),
      counters,
      log
    }),
    lock,
    refreshLock: createRedisRefreshLock({
      client: acks.client, lock, keys, prefix, commandTimeout, log, counters, graceMs: options.handoffTtl ?? REDIS_DEFAULTS.handoffTtl, backoffMs: options.failureTtl ?? REDIS_DEFAULTS.failureTtl
    }),
    health: () => topologyHealth(client, commandTimeout),
    replicaAcks: acks.counters,
    counters,
    keyPrefix: prefix,
    commandTimeout,
    recordKeyOf (request) {
      const ref = getSuiteField(request.session, SESSION_REF_FIELD)
      return typeof ref === 'string' ? recordKey(prefix, ref) : null
    }
  }
  fastify.decorate('redisTokenStore', decorator)
  healthRegistry(fastify).add('redis', async () => {
    const h = await decorator.health()
    return h.healthy
      ? { status: 'pass', detail: `token store ${h.detail}` }
      : { status: 'fail', detail: `token store ${h.detail}: token routes answer 503` }
  })
}

export default fp(redisTokenStore, {
  fastify: '5.x',
  name: 'fastify-session-suite/redis-token-store',
  // Its records are sealed with the keyring: a session with its own `key` has none to lend.
  dependencies: ['fastify-session-suite/secret-keys']
})
