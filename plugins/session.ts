// Encrypted cookie sessions: request.session is decoded on first access only,
// written back only when it changed (or is due for a rolling re-issue), and
// never as a Set-Cookie line over 4096 bytes (it is split into chunks). This
// file wires the parts in lib/session/ to Fastify: options and keys, the lazy
// request.session getter (reader.ts) and the onSend hook (writer.ts).
// request.session is @fastify/secure-session's Session type: the reference makes
// the published declarations load the augmentation that declares it (a module
// augmentation alone does not make a compiler read that package's types).
/// <reference types="@fastify/secure-session" preserve="true" />
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { getDerivedKeys, getSecretKeyBytes } from './secret-keys.ts'
import { errors } from '../lib/errors.ts'
import { resolvePolicy, type SessionOptions, type SessionPolicy } from '../lib/session/policy.ts'
import { kCreated, kIssued, kRegenerated } from '../lib/session/session-object.ts'
import { sha256 } from '../lib/digest.ts'
import { createSealer } from '../lib/session/sealer.ts'
import { checkRevocation, newCounters, readSession, type RequestState, type RevocationCheck, type SessionCounters } from '../lib/session/reader.ts'
import { createSessionWriter } from '../lib/session/writer.ts'
import { createDecodedCache, type DecodedCacheStats } from '../lib/session/decoded-cache.ts'
import { SUITE_FIELD, suiteFieldNames } from '../lib/session/suite-fields.ts'
import { MAX_KEYS } from '../lib/keyring/format.ts'

export type { SessionOptions }

export type { SessionCounters, RevocationCheck }

/** The cache of decoded sessions, as the instance shows it: its figures, and a way to empty it. */
export interface DecodedCacheInfo {
  stats (): DecodedCacheStats
  /** Forgets every decoded session; the next request with each cookie decrypts it again. */
  flush (): void
}

export interface SessionInfo {
  policy: SessionPolicy
  counters: SessionCounters
  warnings: string[]
  /** null when `decodedCache: false` */
  decodedCache: DecodedCacheInfo | null
}

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

/**
 * A service's own session fields, typed once for `request.session.get/set`:
 * `declare module 'fastify-session-suite' { interface SessionData { cart?: Cart } }`.
 * Augment this interface, not @fastify/secure-session's, which a service
 * installed with pnpm cannot name.
 */
export interface SessionData {}
type ServiceSessionData = SessionData

declare module '@fastify/secure-session' {
  interface SessionData extends ServiceSessionData {}
}

declare module 'fastify' {
  interface FastifyInstance { sessionInfo: SessionInfo }
}

/**
 * Route `config` for a route that never reads the session: nothing decodes
 * it (nor checks it for revocation) before the handler. Not declared on
 * FastifyContextConfig: a one-property augmentation there would make every
 * other route config that shares no property with it a type error.
 */
export const SESSION_UNTOUCHED = Object.freeze({ fssSession: false })

const kState = Symbol('fss.session.state')
type WithState = FastifyRequest & { [kState]: RequestState | null }

const kRevocationCheck = Symbol('fss.session.revocationCheck')
type WithCheck = SessionInfo & { [kRevocationCheck]?: RevocationCheck }

const session: FastifyPluginAsync<SessionOptions> = async (fastify, opts) => {
  const { policy, warnings } = resolvePolicy(opts)
  const keys = resolveKeys(fastify, opts)
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  const sealer = createSealer(keys, policy.idleTimeout, policy.absoluteTimeout)
  // Made with the sealer, from the same keys: every entry opened under this
  // keyring, and a keyring loaded anew comes with a new, empty cache.
  const cache = policy.decodedCache === false ? null : createDecodedCache(policy.decodedCache)

  const counters = newCounters()
  const decodedCache = cache === null ? null : { stats: () => cache.stats(), flush: () => cache.flush() }
  fastify.decorate('sessionInfo', { policy, counters, warnings, decodedCache })
  const write = createSessionWriter({ policy, sealer, counters, cache, serializeCookie: fastify.serializeCookie })

  fastify.decorateRequest(kState, null)
  // The hook point for the session registry (setRevocationCheck). The getter
  // below is synchronous and the check may not be (a Redis lookup), so with a
  // check set a request carrying cookies has its session decoded and checked
  // before any handler.
  const info = fastify.sessionInfo as WithCheck
  fastify.addHook('onRequest', (request, _reply, done) => {
    const check = info[kRevocationCheck]
    if (check === undefined || request.headers.cookie === undefined || (request.routeOptions.config as { fssSession?: unknown }).fssSession === false) return done()
    const req = request as WithState
    const state = req[kState] ??= readSession(req, policy, sealer, counters, cache)
    // Answered from memory (the usual case): no promise, no extra tick.
    const pending = checkRevocation(req, state, check, counters)
    if (pending === undefined) done()
    else pending.then(() => done(), done)
  })
  fastify.decorateRequest('session', {
    getter (this: FastifyRequest) {
      const req = this as WithState
      let state = req[kState]
      if (state === null) {
        state = readSession(req, policy, sealer, counters, cache)
        req[kState] = state
      }
      return state.proxy
    }
  })

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const state = (request as WithState)[kState]
    // The session was never touched (or already written): nothing to do, and
    // nothing was decrypted.
    if (state === null || state.written) return done(null, payload)
    state.written = true
    try {
      write(request, reply, state)
    } catch (err) {
      return done(err as Error)
    }
    done(null, payload)
  })
}

/**
 * The keys come from one place: `key`, or the keyring the secret-keys plugin
 * loaded (it has one owner, and this plugin never registers it). Both at once
 * would leave /health and the debug route describing a keyring the cookies do
 * not use: refused.
 */
function resolveKeys (fastify: Parameters<FastifyPluginAsync>[0], opts: SessionOptions): Buffer[] {
  const keyring = fastify.hasDecorator('secretKeys')
  if (opts.key !== undefined) {
    if (keyring) throw new errors.FSS_OPTIONS_INVALID('session.key', 'the secret-keys plugin already loaded a keyring: give the keys in one place')
    const keys = Array.isArray(opts.key) ? opts.key : [opts.key]
    if (keys.length === 0 || keys.length > MAX_KEYS || !keys.every((k) => Buffer.isBuffer(k) && k.length === 32)) {
      throw new errors.FSS_OPTIONS_INVALID('session.key', `expected a 32-byte Buffer or an array of 1 to ${MAX_KEYS} of them, newest first`)
    }
    return keys
  }
  const keys = keyring ? getSecretKeyBytes(fastify) : undefined
  if (keys === undefined || keys.length === 0) throw new errors.FSS_SESSION_NO_KEY()
  // This application's session keys seal; the keyring's own keys only open
  // cookies sealed before keys were derived per application (such a cookie is
  // re-sealed with the newest derived key on first use, as after a rotation).
  return [...getDerivedKeys(fastify, 'session') as Buffer[], ...keys]
}

/** Set once, by the session registry plugin (after it decorated `sessions`, which is unique): see the onRequest hook above. */
export function setRevocationCheck (fastify: FastifyInstance, check: RevocationCheck): void {
  (fastify.sessionInfo as WithCheck)[kRevocationCheck] = check
}

/** What the debug route may show: field names, times and sizes, never values. */
export function getSessionDetails (request: FastifyRequest): SessionDetails {
  const state = (request as Partial<WithState>)[kState]
  if (state === undefined) return { fields: [], encodedBytes: 0, chunks: 0 }
  // Going through the getter decodes now if no one did. The suite's own fields show as `fss.<name>`.
  const fields = Object.keys({ ...request.session.data() })
    .flatMap((name) => name === SUITE_FIELD ? suiteFieldNames(request.session).map((own) => `${SUITE_FIELD}.${own}`) : [name])
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
  return sha256(received.value)
}

export default fp(session, { fastify: '5.x', name: 'fastify-session-suite/session' })
