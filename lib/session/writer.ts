// The write path: at onSend, a session that changed, was opened with an older
// key or is due for a rolling re-issue is sealed and set, split into chunks
// when one Set-Cookie line would pass 4096 bytes; a deleted or unusable one
// is expired; an untouched one costs nothing.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SerializeOptions } from '@fastify/cookie'
import { errors } from '../errors.ts'
import { cookieAttributes, type SessionPolicy } from './policy.ts'
import { planCookies, requestBytes, MAX_REQUEST_COOKIE_BYTES } from './codec.ts'
import { buildPayload, nowSeconds, withoutTimes } from './payload.ts'
import type { DecodedCache } from './decoded-cache.ts'
import { kData, kCreated, kIssued, kOptions } from './session-object.ts'
import type { Sealer } from './sealer.ts'
import type { RequestState, SessionCounters } from './reader.ts'

export interface SessionWriterOptions {
  policy: SessionPolicy
  sealer: Sealer
  counters: SessionCounters
  /** the cache of decoded sessions the reader uses, or null */
  cache: DecodedCache | null
  /** @fastify/cookie's serializer (fastify.serializeCookie): what Set-Cookie lines are measured with */
  serializeCookie: (name: string, value: string, options: SerializeOptions) => string
}

/** Writes a request's session into its reply; throws FSS_SESSION_TOO_LARGE instead of writing what a browser could not send back. */
export type SessionWriter = (request: FastifyRequest, reply: FastifyReply, state: RequestState) => void

export function createSessionWriter ({ policy, sealer, counters, cache, serializeCookie }: SessionWriterOptions): SessionWriter {
  const attrs = cookieAttributes(policy)
  // Built once: @fastify/cookie copies the options it is given, never changes them.
  const expireOptions = { ...attrs, maxAge: 0, expires: new Date(0) }
  // The attributes of a line depend only on the options, and without
  // session.options() only Max-Age varies (it is the idle timeout but near the
  // absolute limit): one cached entry serves nearly every write.
  let cachedMaxAge = -1
  let cachedAttributes = ''
  let cachedAttributeBytes = 0

  /**
   * `; Max-Age=…; Path=/; …` as @fastify/cookie's serializer writes it (and
   * checks it), taken from a line with an empty value. Our names and
   * base64url values pass that serializer unchanged, so every session line
   * is name + '=' + value + this: built here once instead of per line.
   */
  function attributesOf (options: typeof attrs): string {
    return serializeCookie(policy.cookieName, '', options).slice(policy.cookieName.length + 1)
  }

  function expire (reply: FastifyReply, names: string[]): void {
    for (const name of names) reply.setCookie(name, '', expireOptions)
  }

  function issue (request: FastifyRequest, reply: FastifyReply, state: RequestState): void {
    const { target, received } = state
    const now = nowSeconds()
    const created = target[kCreated]
    const maxAge = Math.min(policy.idleTimeout, created + policy.absoluteTimeout - now, target[kOptions]?.maxAge ?? Infinity)
    if (maxAge <= 0) {
      // The absolute limit passed during this request: end it instead.
      expire(reply, received.names)
      return
    }
    // An instance whose clock is behind the one that created the session would
    // write createdAt > issuedAt, which the next read rejects: never issue
    // before the creation time (the read side tolerates CLOCK_SKEW ahead).
    const issuedAt = Math.max(now, created)
    const payload = buildPayload(target[kData], created, issuedAt)
    const value = sealer.seal(payload)
    let attributes: string
    let attributeBytes: number
    if (target[kOptions] !== null) {
      attributes = attributesOf({ ...attrs, ...target[kOptions], maxAge })
      attributeBytes = Buffer.byteLength(attributes)
    } else {
      if (maxAge !== cachedMaxAge) {
        cachedAttributes = attributesOf({ ...attrs, maxAge })
        cachedAttributeBytes = Buffer.byteLength(cachedAttributes)
        cachedMaxAge = maxAge
      }
      attributes = cachedAttributes
      attributeBytes = cachedAttributeBytes
    }
    const lines = planCookies(policy.cookieName, value, attributeBytes)
    const bytes = requestBytes(lines)
    if (bytes > MAX_REQUEST_COOKIE_BYTES) {
      counters.tooLarge++
      request.log.error({ bytes, limit: MAX_REQUEST_COOKIE_BYTES, fields: Object.keys(target[kData]).length }, 'session too large for cookies: not written')
      throw new errors.FSS_SESSION_TOO_LARGE(bytes, MAX_REQUEST_COOKIE_BYTES)
    }
    // Fastify appends every Set-Cookie header to the ones already set (by
    // @fastify/cookie's own onSend or anyone else), so none is lost.
    for (const line of lines) reply.header('set-cookie', line.name + '=' + line.value + attributes)
    expire(reply, received.names.filter((n) => !lines.some((l) => l.name === n)))
    if (cache !== null) {
      forget(state)
      // What the browser sends next is this value: kept as what it decodes to
      // (the payload without the three times, which the entry holds apart), so
      // that request skips decryption. set() refuses data a JSON round trip
      // would change, which then decodes as usual.
      cache.set(cache.key(value), { data: withoutTimes(payload), issuedAt, createdAt: created }, true)
    }
    counters.issued++
    if (lines.length > 1) {
      counters.chunked++
      request.log.warn({ bytes, chunks: lines.length }, 'session cookie split into chunks')
    }
  }

  /** The received cookie is superseded or ended: its entry would only take room. */
  function forget (state: RequestState): void {
    if (state.cacheKey !== undefined) (cache as DecodedCache).delete(state.cacheKey)
  }

  return function writeSession (request, reply, state) {
    const { target, received } = state
    if (target.deleted) {
      forget(state)
      counters.deleted++
      expire(reply, received.names)
    } else if (target.changed || state.rotated) {
      if (state.rotated) counters.rotated++
      issue(request, reply, state)
    } else if (target[kIssued] !== undefined && nowSeconds() - target[kIssued] >= policy.rollingInterval) {
      counters.rolled++
      issue(request, reply, state)
    } else if (state.rejected !== undefined) {
      // A cookie we cannot use: expire it so the browser stops sending it.
      expire(reply, received.names)
    }
  }
}
