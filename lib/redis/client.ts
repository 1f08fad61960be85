// The Redis connection as the token store sees it: fail fast during an outage
// (a request waiting on a dead Redis is worse than a 503), reconnect by itself
// when Redis returns, and report health without throwing.
import { errors } from '../errors.ts'

/**
 * What the store and the lock call: an ioredis client, or one @fastify/redis
 * already holds. Written out rather than taken from ioredis's types: ioredis
 * is an optional peer dependency, and the published declarations must
 * type-check in a service that never installed it.
 */
export interface RedisClient {
  readonly status: string
  get (key: string): Promise<string | null>
  set (key: string, value: string, px: 'PX', milliseconds: number): Promise<'OK' | null>
  set (key: string, value: string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<'OK' | null>
  set (key: string, value: string, keepTtl: 'KEEPTTL', xx: 'XX'): Promise<'OK' | null>
  del (key: string): Promise<number>
  eval (script: string, numberOfKeys: number, ...args: string[]): Promise<unknown>
  ping (): Promise<string>
  quit (): Promise<unknown>
  once (event: 'ready', listener: () => void): unknown
  off (event: 'ready', listener: () => void): unknown
}

/** A client this package created, and so also listens to and closes. */
export interface OwnedRedisClient extends RedisClient {
  on (event: 'error' | 'close' | 'ready', listener: (err: Error) => void): unknown
  disconnect (): void
}

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port/db` */
  url: string
  /** ms a command may take before the request answers 503. */
  commandTimeout: number
}

/** Reconnect backoff: quick at first, capped so recovery is noticed within a second or two. */
export function reconnectDelay (attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2000)
}

/**
 * Loads ioredis on first use, so a service without the Redis store never
 * needs it installed. `specifier` is the module to load (the package name).
 * Missing, it is FSS_REDIS_CLIENT_MISSING naming the package and the command.
 * Typed `unknown` so that no published declaration names ioredis: callers
 * cast to `typeof import('ioredis')` inside their bodies.
 */
export async function loadIoredis (specifier = 'ioredis'): Promise<unknown> {
  try {
    return await import(specifier)
  } catch (err) {
    const missing = new errors.FSS_REDIS_CLIENT_MISSING(specifier, specifier)
    missing.cause = err
    throw missing
  }
}

export interface FailFastOptions {
  enableOfflineQueue: false
  maxRetriesPerRequest: number
  commandTimeout: number
  connectTimeout: number
  retryStrategy: (attempt: number) => number | null
}

/**
 * The fail-fast policy of every connection to a data server: without it,
 * ioredis queues commands while disconnected and retries each up to 20 times,
 * so requests would hang for the whole outage.
 */
export function failFastOptions (commandTimeout: number): FailFastOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout,
    connectTimeout: Math.max(commandTimeout, 1000),
    retryStrategy: reconnectDelay
  }
}

/** One server by URL, with the outage policy; ioredis is loaded here. */
export async function createRedisClient (opts: RedisConnectionOptions, specifier = 'ioredis'): Promise<OwnedRedisClient> {
  const { Redis } = await loadIoredis(specifier) as typeof import('ioredis')
  return new Redis(opts.url, { ...failFastOptions(opts.commandTimeout), lazyConnect: false })
}

/**
 * Runs one command with the outage policy: a client that is not ready, a
 * command error, or no answer within `timeoutMs` all become
 * FSS_STORE_UNAVAILABLE (503). The cause keeps ioredis's message for the log.
 */
export async function guard<T> (client: RedisClient, timeoutMs: number, command: () => Promise<T>): Promise<T> {
  if (client.status !== 'ready') throw unavailable(`connection ${client.status}`)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(unavailable('command timed out')), timeoutMs)
  })
  // The timeout already rejects as an outage; a command's own failure (a reply
  // or connection error from ioredis) is converted where it arises.
  const answer = command().catch((err: Error) => { throw unavailable(err.message) })
  try {
    return await Promise.race([answer, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function unavailable (reason: string): Error {
  const err = new errors.FSS_STORE_UNAVAILABLE()
  // Reason only (ioredis messages name the command, never its arguments).
  err.cause = reason
  return err
}

export interface RedisHealth {
  name: 'redis'
  healthy: boolean
  /** ioredis connection status: ready, connecting, reconnecting, end... */
  status: string
}

/** For /health: never throws, answers within `timeoutMs`. */
export async function redisHealth (client: RedisClient, timeoutMs = 500): Promise<RedisHealth> {
  try {
    const pong = await guard(client, timeoutMs, () => client.ping())
    return { name: 'redis', healthy: pong === 'PONG', status: client.status }
  } catch {
    return { name: 'redis', healthy: false, status: client.status }
  }
}

/** Resolves once the client is ready, or false after `timeoutMs` (start-up must not hang on a dead Redis). */
export async function waitReady (client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true
  return await new Promise<boolean>((resolve) => {
    const onReady = (): void => { clearTimeout(timer); resolve(true) }
    const timer = setTimeout(() => { client.off('ready', onReady); resolve(false) }, timeoutMs)
    client.once('ready', onReady)
  })
}
