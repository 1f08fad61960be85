// plugins/redis-token-store.ts — keeps OAuth tokens in Redis instead of the
// session cookie, and coordinates refreshes across every instance sharing that
// Redis. It builds the pieces; the OAuth plugin uses them through its `store`
// and `refreshLock` options (the root plugin wires them when `redis` is set).
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Redis } from 'ioredis'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'
import { createRedisClient, redisHealth, waitReady, type RedisClient, type RedisHealth } from '../lib/redis/client.ts'
import { createRedisTokenStore, type RecordCounters, type RedisTokenStore } from '../lib/redis/store.ts'
import { createRefreshLock, type RefreshLock } from '../lib/redis/lock.ts'
import { createFleetRefresh, type FleetRefresh } from '../lib/redis/fleet-refresh.ts'
import { healthRegistry } from '../routes/health-checks.ts'
import { getSecretKeyBytes } from './secret-keys.ts'
import { isStoredToken, type StoredToken } from '../lib/oauth/token.ts'

export interface RedisTokenStorePluginOptions {
  /** `redis://host:port/db`; default `REDIS_URL`, else `redis://127.0.0.1:6379`. Ignored with `client`. */
  url?: string
  /** A connected ioredis client to share (e.g. `fastify.redis` from @fastify/redis). Not closed by this plugin. */
  client?: Redis
  /** Prefix of every key this plugin writes; default `fss:`. (Not `prefix`: Fastify reserves that for routes.) */
  keyPrefix?: string
  /** Token record lifetime in s from its first write; default the session's absoluteTimeout, else 30 days. */
  ttl?: number
  /** ms before a Redis command counts as an outage (503); default 1000. */
  commandTimeout?: number
  /** ms a refresh lock lives; default 10000. */
  lockTtl?: number
  /** ms a request waits for another instance's refresh; default lockTtl + 5000. */
  maxWait?: number
  /** ms a refresh result is handed to instances still holding the old refresh token; default 30000. */
  handoffTtl?: number
  /** ms a refresh failure is repeated to the fleet instead of calling the provider again; default 5000. */
  failureTtl?: number
  /** ms registration waits for a first connection before starting anyway (unhealthy); default 2000. */
  startupWait?: number
}

export interface RedisTokenStoreDecorator {
  /** The connection in use (shared or owned), e.g. for readiness checks. */
  client: RedisClient
  /** Pass to the OAuth plugin as `store`. */
  store: RedisTokenStore<StoredToken>
  lock: RefreshLock
  /** Pass to the OAuth plugin as `refreshLock`. */
  fleet: FleetRefresh
  health: () => Promise<RedisHealth>
  /** Records read back from Redis that could not be used (each read as no token); for health and debug output. */
  counters: RecordCounters
}

declare module 'fastify' {
  interface FastifyInstance { redisTokenStore: RedisTokenStoreDecorator }
}

const Ms = Type.Integer({ minimum: 1, maximum: 600_000 })
export const RedisTokenStoreOptionsSchema = Type.Object({
  url: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  client: Type.Optional(Type.Unsafe<Redis>(Type.Any())),
  keyPrefix: Type.Optional(Type.String({ maxLength: 100 })),
  ttl: Type.Optional(Type.Integer({ minimum: 1 })),
  commandTimeout: Type.Optional(Ms),
  lockTtl: Type.Optional(Ms),
  maxWait: Type.Optional(Ms),
  handoffTtl: Type.Optional(Ms),
  failureTtl: Type.Optional(Ms),
  startupWait: Type.Optional(Ms)
}, { additionalProperties: false })

const DAY = 86_400

function sessionAbsoluteTimeout (fastify: FastifyInstance): number | undefined {
  if (!fastify.hasDecorator('sessionInfo')) return undefined
  return fastify.getDecorator<{ policy?: { absoluteTimeout?: number } }>('sessionInfo').policy?.absoluteTimeout
}

const redisTokenStore: FastifyPluginAsync<RedisTokenStorePluginOptions> = async (fastify, opts) => {
  const options = validateOptions(RedisTokenStoreOptionsSchema, opts, 'redis')
  const keys = getSecretKeyBytes(fastify)
  if (keys === undefined || keys.length === 0) {
    throw new errors.FSS_OPTIONS_INVALID('redis', 'no keyring: register the secret-keys or session plugin first')
  }
  const commandTimeout = options.commandTimeout ?? 1000
  const lockTtl = options.lockTtl ?? 10_000
  const prefix = options.keyPrefix ?? 'fss:'
  const owned = options.client === undefined
  const client: RedisClient = options.client ??
    createRedisClient({ url: options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', commandTimeout })
  const log = fastify.log.child({ plugin: 'redis-token-store' })
  if (owned) {
    // ioredis emits 'error' on failed reconnects; unhandled, it would crash the process.
    const emitter = client as Redis
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
      await client.quit().catch(() => (client as Redis).disconnect())
    })
  }
  if (!await waitReady(client, options.startupWait ?? 2000)) {
    log.warn('Redis not reachable at start-up: starting anyway, /health reports it')
  }

  const lock = createRefreshLock({ client, prefix, lockTtl, maxWait: options.maxWait ?? lockTtl + 5000, commandTimeout })
  const counters: RecordCounters = { rejectedRecords: 0 }
  const decorator: RedisTokenStoreDecorator = {
    client,
    store: createRedisTokenStore<StoredToken>({
      client,
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
    fleet: createFleetRefresh({
      client, lock, keys, prefix, commandTimeout, log, counters, graceMs: options.handoffTtl ?? 30_000, backoffMs: options.failureTtl ?? 5000
    }),
    health: () => redisHealth(client, commandTimeout),
    counters
  }
  fastify.decorate('redisTokenStore', decorator)
  healthRegistry(fastify).add('redis', async () => {
    const h = await decorator.health()
    return h.healthy
      ? { status: 'pass', detail: 'token store reachable' }
      : { status: 'fail', detail: `token store unreachable (${h.status}): token routes answer 503` }
  })
}

export default fp(redisTokenStore, { fastify: '5.x', name: 'fastify-session-suite/redis-token-store' })
