// Encrypted cookie sessions: request.session is decoded on first access only,
// written back only when it changed (or is due for a rolling re-issue), and
// never as a Set-Cookie line over 4096 bytes (it is split into chunks).
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Session } from '@fastify/secure-session'
import secretKeys, { getSecretKeyBytes, type SecretKeysOptions } from './secret-keys.ts'
import { errors } from '../lib/errors.ts'
import { resolvePolicy, cookieAttributes, type SessionPolicy, type SameSite } from '../lib/session/policy.ts'
import { readCookies, toSealed, toCookieValue, planCookies, requestBytes, MAX_REQUEST_COOKIE_BYTES, type ReceivedCookies } from '../lib/session/codec.ts'
import { buildPayload, nowSeconds, type Payload, type RejectReason } from '../lib/session/payload.ts'
import { createSession, kData, kCreated, kIssued, kOptions, kRegenerated, type SessionObject } from '../lib/session/session-object.ts'
import { createSealer } from '../lib/session/sealer.ts'

export interface SessionOptions {
  /** default `__Host-session` when secure, else `session` */
  cookieName?: string
  /** default true; false shows as a warning in sessionInfo */
  secure?: boolean
  sameSite?: SameSite
  path?: string
  domain?: string
  httpOnly?: boolean
  /** seconds, default 7 days: cookie Max-Age and server-side expiry alike */
  idleTimeout?: number
  /** seconds from creation, default 30 days */
  absoluteTimeout?: number
  /** seconds, default 1 hour: an unchanged session is re-issued at most this often */
  rollingInterval?: number
  /** 32-byte keys, newest first; default: the secret-keys plugin's keyring */
  key?: Buffer | Buffer[]
  /** options for the secret-keys plugin when this plugin registers it */
  secret?: SecretKeysOptions
}

export interface SessionCounters {
  /** requests that read a session cookie (lazy: routes that never touch request.session add nothing) */
  decoded: number
  issued: number
  chunked: number
  rolled: number
  rotated: number
  deleted: number
  tooLarge: number
  rejected: Record<string, number>
}

export interface SessionInfo { policy: SessionPolicy, counters: SessionCounters, warnings: string[] }

export interface SessionDetails {
  fields: string[]
  /** ms since the epoch, for a session that has or gets a cookie */
  createdAt?: number
  /** ms since the epoch: the earlier of the idle and absolute limits */
  expiresAt?: number
  /** bytes of the cookie values received */
  encodedBytes: number
  chunks: number
  rejected?: string
}

declare module 'fastify' {
  interface FastifyInstance { sessionInfo: SessionInfo }
}

interface RequestState {
  target: SessionObject
  proxy: Session
  received: ReceivedCookies
  rotated: boolean
  rejected?: RejectReason
  written: boolean
  policy: SessionPolicy
}

const kState = Symbol('fss.session.state')
type WithState = FastifyRequest & { [kState]: RequestState | null }

const session: FastifyPluginAsync<SessionOptions> = async (fastify, opts) => {
  const { policy, warnings } = resolvePolicy(opts)
  const keys = await resolveKeys(fastify, opts)
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  const sealer = await createSealer(fastify, keys, policy.idleTimeout, policy.absoluteTimeout)

  const counters: SessionCounters = { decoded: 0, issued: 0, chunked: 0, rolled: 0, rotated: 0, deleted: 0, tooLarge: 0, rejected: {} }
  fastify.decorate('sessionInfo', { policy, counters, warnings })
  const attrs = cookieAttributes(policy)
  // Built once: @fastify/cookie copies the options it is given, never changes them.
  const expireOptions = { ...attrs, maxAge: 0, expires: new Date(0) }
  // The attributes of a line depend only on the options, and without
  // session.options() only Max-Age varies (it is the idle timeout but near the
  // absolute limit): one cached entry serves nearly every write.
  let cachedMaxAge = -1
  let cachedOptions = attrs
  let cachedAttributeBytes = 0

  function attributeBytes (options: typeof attrs): number {
    // `name=` + value + attributes: measure with an empty value, once.
    return Buffer.byteLength(fastify.serializeCookie(policy.cookieName, '', options)) - policy.cookieName.length - 1
  }

  function load (request: FastifyRequest): RequestState {
    const received = readCookies(request.headers.cookie, policy.cookieName)
    let reason: RejectReason | undefined = received.problem
    let payload: Payload | undefined
    let rotated = false
    if (reason === undefined && received.value !== null) {
      counters.decoded++
      const sealed = toSealed(received.value)
      const opened = sealed === null ? 'format' : sealer.open(sealed)
      if (typeof opened === 'string') {
        reason = opened
      } else {
        payload = opened.payload
        rotated = opened.rotated
      }
    }
    if (reason !== undefined) {
      counters.rejected[reason] = (counters.rejected[reason] ?? 0) + 1
      // Sizes and the reason only: never the cookie value.
      request.log.debug({ reason, bytes: received.bytes, chunks: received.chunks }, 'session cookie rejected: empty session')
    }
    const { target, proxy } = createSession(payload)
    return { target, proxy, received, rotated, rejected: reason, written: false, policy }
  }

  fastify.decorateRequest(kState, null)
  fastify.decorateRequest('session', {
    getter (this: FastifyRequest) {
      const req = this as WithState
      let state = req[kState]
      if (state === null) {
        state = load(req)
        req[kState] = state
      }
      return state.proxy
    }
  })

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
    const value = toCookieValue(sealer.seal(buildPayload(target[kData], created, Math.max(now, created))))
    let options: typeof attrs
    let suffix: number
    if (target[kOptions] !== null) {
      options = { ...attrs, ...target[kOptions], maxAge }
      suffix = attributeBytes(options)
    } else {
      if (maxAge !== cachedMaxAge) {
        cachedOptions = { ...attrs, maxAge }
        cachedAttributeBytes = attributeBytes(cachedOptions)
        cachedMaxAge = maxAge
      }
      options = cachedOptions
      suffix = cachedAttributeBytes
    }
    const lines = planCookies(policy.cookieName, value, suffix)
    const bytes = requestBytes(lines)
    if (bytes > MAX_REQUEST_COOKIE_BYTES) {
      counters.tooLarge++
      request.log.error({ bytes, limit: MAX_REQUEST_COOKIE_BYTES, fields: Object.keys(target[kData]).length }, 'session too large for cookies: not written')
      throw new errors.FSS_SESSION_TOO_LARGE(bytes, MAX_REQUEST_COOKIE_BYTES)
    }
    for (const line of lines) reply.setCookie(line.name, line.value, options)
    expire(reply, received.names.filter((n) => !lines.some((l) => l.name === n)))
    counters.issued++
    if (lines.length > 1) {
      counters.chunked++
      request.log.warn({ bytes, chunks: lines.length }, 'session cookie split into chunks')
    }
  }

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const state = (request as WithState)[kState]
    // The session was never touched (or already written): nothing to do, and
    // nothing was decrypted.
    if (state === null || state.written) return done(null, payload)
    state.written = true
    const { target, received } = state
    try {
      if (target.deleted) {
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
    } catch (err) {
      return done(err as Error)
    }
    done(null, payload)
  })
}

async function resolveKeys (fastify: Parameters<FastifyPluginAsync>[0], opts: SessionOptions): Promise<Buffer[]> {
  if (opts.key !== undefined) {
    const keys = Array.isArray(opts.key) ? opts.key : [opts.key]
    if (keys.length === 0 || !keys.every((k) => Buffer.isBuffer(k) && k.length === 32)) {
      throw new errors.FSS_OPTIONS_INVALID('session.key', 'expected a 32-byte Buffer or a non-empty array of them, newest first')
    }
    return keys
  }
  if (!fastify.hasDecorator('secretKeys')) await fastify.register(secretKeys, { ...opts.secret })
  const keys = getSecretKeyBytes(fastify)
  if (keys === undefined || keys.length === 0) throw new errors.FSS_SESSION_NO_KEY()
  return keys
}

/** What the debug route may show: field names, times and sizes, never values. */
export function getSessionDetails (request: FastifyRequest): SessionDetails {
  const state = (request as Partial<WithState>)[kState]
  if (state === undefined) return { fields: [], encodedBytes: 0, chunks: 0 }
  // Going through the getter decodes now if no one did.
  const fields = Object.keys({ ...request.session.data() })
  const { target, received, rejected, policy } = (request as WithState)[kState] as RequestState
  const details: SessionDetails = { fields, encodedBytes: received.bytes, chunks: received.chunks }
  const issued = target[kIssued]
  if (issued !== undefined) {
    details.createdAt = target[kCreated] * 1000
    details.expiresAt = 1000 * Math.min(issued + policy.idleTimeout, target[kCreated] + policy.absoluteTimeout)
  }
  if (rejected !== undefined) details.rejected = rejected
  return details
}

/**
 * SHA-256 of the session cookie this request carried, while the session in use
 * is the one that cookie holds (it opened, and was not regenerated or deleted
 * in this request); otherwise null. Requests sent at the same time with the
 * same cookie get the same digest, so a value derived from it agrees between
 * their responses, whichever Set-Cookie the browser keeps. Nobody without the
 * (HttpOnly, encrypted) cookie can compute it.
 */
export function receivedSessionDigest (request: FastifyRequest): Buffer | null {
  // Going through the getter decodes now if no one did.
  const deleted = request.session.deleted
  const { target, received, rejected } = (request as WithState)[kState] as RequestState
  if (deleted || received.value === null || rejected !== undefined || target[kRegenerated]) return null
  return createHash('sha256').update(received.value).digest()
}

export default fp(session, { fastify: '5.x', name: 'fastify-session-suite/session' })
