// plugins/session-registry.ts — session control: every logged-in session is a
// record in a registry (memory, or Redis shared by the fleet), so a user can
// list and end their sessions, and a revoked session reads as empty on every
// instance. It decorates `fastify.sessions`; the check on each request goes
// through the session plugin's hook point (setRevocationCheck).
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { healthRegistry } from '../lib/health.ts'
import { validateOptions } from '../lib/options.ts'
import { guard } from '../lib/redis/client.ts'
import { getSuiteField, setSuiteField, SESSION_ID_FIELD } from '../lib/session/suite-fields.ts'
import { createSessionRegistry, SessionRegistryOptionsSchema, type RegistryCounters, type SessionRegistry, type SessionRegistryDeps } from '../lib/sessions/registry.ts'
import type { SessionRedisClient } from '../lib/sessions/redis-store.ts'
import type { SubscriberClient } from '../lib/sessions/feed.ts'
import type { RevocationReason, SessionRecord } from '../lib/sessions/contract.ts'
import { createSessionId, isSessionId } from '../lib/sessions/id.ts'
import { getSecretKeyBytes } from './secret-keys.ts'
import { setRevocationCheck } from './session.ts'
import type {} from './redis-token-store.ts'

// Records expire with the session's absolute timeout (session.absoluteTimeout):
// not an option of their own. Redis's command timeout defaults to the `redis` option's.
export const SessionRegistryPluginOptionsSchema = Type.Omit(SessionRegistryOptionsSchema, ['absoluteTimeout'])
export type SessionRegistryPluginOptions = Static<typeof SessionRegistryPluginOptionsSchema>

export interface LoginInput {
  /** the user's subject identifier, verified by the provider (OIDC `sub`) */
  sub: string
  /** which provider logged the user in */
  provider: string
  /** the provider's session id (OIDC `sid`), kept for back-channel logout */
  sid?: string
}

/** `fastify.sessions`: list and end sessions, and what the OAuth routes call at login and logout. */
export interface SessionControl {
  /** `memory`: this process only (GET /health says so); `redis`: every instance. */
  readonly kind: 'memory' | 'redis'
  /** The user's live sessions, most recently seen first. */
  list: (sub: string) => Promise<SessionRecord[]>
  /** The live record, or null. */
  get: (id: string) => Promise<SessionRecord | null>
  /** Ends one session everywhere and deletes its tokens: true when it was live. FSS_SESSION_ID_INVALID, FSS_STORE_UNAVAILABLE. */
  revoke: (id: string, reason?: RevocationReason) => Promise<boolean>
  /** Ends every session of the user but `except`; the ids it ended. */
  revokeAll: (sub: string, opts?: { except?: string, reason?: RevocationReason }) => Promise<string[]>
  /** Back-channel logout: ends the sessions logged in through the provider session `sid`; the ids it ended. */
  revokeBySid: (provider: string, sid: string) => Promise<string[]>
  /** After a login has stored its token: gives the (regenerated) session a new id and its record. */
  registerLogin: (request: FastifyRequest, login: LoginInput) => Promise<SessionRecord>
  /** At logout: ends this request's session in the registry; false when it had none or it was already gone. */
  endCurrent: (request: FastifyRequest, reason?: RevocationReason) => Promise<boolean>
  /** This request's session id in the registry, when it has one. */
  currentId: (request: FastifyRequest) => string | undefined
  readonly events: SessionRegistry['events']
  /** Registered and revoked (by reason), records that failed to decode, the view's hits and misses, the feed's messages. */
  counters: () => RegistryCounters
}

declare module 'fastify' {
  interface FastifyInstance { sessions: SessionControl }
}

/**
 * With tokens in Redis, a revocation deletes the session's token record too,
 * even if the device never returns: the record's key (a digest of the
 * cookie's reference, never the reference) is kept beside the registry.
 */
interface TokenRecords {
  remember: (id: string, request: FastifyRequest) => Promise<void>
  forget: (ids: string[]) => Promise<void>
}

function tokenRecords (fastify: FastifyInstance, ttlMs: number): TokenRecords | undefined {
  if (!fastify.hasDecorator('redisTokenStore')) return undefined
  const { client, recordKeyOf, keyPrefix, commandTimeout } = fastify.redisTokenStore
  const mapKey = (id: string): string => `${keyPrefix}sess:tok:${id}`
  const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)
  return {
    async remember (id, request) {
      const key = recordKeyOf(request)
      if (key !== null) await run(() => client.set(mapKey(id), key, 'PX', ttlMs))
    },
    async forget (ids) {
      for (const id of ids) {
        const key = await run(() => client.get(mapKey(id)))
        if (key !== null) await run(() => client.del(key))
        await run(() => client.del(mapKey(id)))
      }
    }
  }
}

/** The registry id this request's session carries, if any (not checked against the store). */
function sessionIdOf (request: FastifyRequest): string | undefined {
  const id = getSuiteField(request.session, SESSION_ID_FIELD)
  return isSessionId(id) ? id : undefined
}

const sessionRegistry: FastifyPluginAsync<SessionRegistryPluginOptions> = async (fastify, raw) => {
  const opts = validateOptions(SessionRegistryPluginOptionsSchema, raw, 'sessions')
  const absoluteTimeout = fastify.sessionInfo.policy.absoluteTimeout
  const log = fastify.log.child({ plugin: 'session-registry' })
  let deps: SessionRegistryDeps = { log }
  let commandTimeout = opts.commandTimeout
  if (opts.store === 'redis') {
    if (!fastify.hasDecorator('redisTokenStore')) {
      throw new errors.FSS_OPTIONS_INVALID('sessions.store', "'redis' needs the suite's Redis connection: set the redis option")
    }
    const store = fastify.redisTokenStore
    // The token store's connection sends the registry's commands too; the
    // feed gets a duplicate of it (a subscriber connection can send nothing else).
    const client = store.client as SessionRedisClient & { duplicate: () => SubscriberClient }
    commandTimeout ??= store.commandTimeout
    deps = { client, keys: getSecretKeyBytes(fastify), log }
  }
  const registry = createSessionRegistry({ ...opts, absoluteTimeout, ...(commandTimeout !== undefined && { commandTimeout }) }, deps)
  fastify.addHook('onClose', () => registry.close())
  const tokens = tokenRecords(fastify, absoluteTimeout * 1000)

  async function ended (ids: string[]): Promise<string[]> {
    // The sessions are ended already; a token record left behind by an outage
    // expires with the session's absolute timeout, and nothing can reach it.
    if (ids.length > 0) await tokens?.forget(ids).catch((err: { code?: string }) => log.warn({ code: err.code }, 'token records of revoked sessions not deleted: they expire with the session'))
    return ids
  }

  const control: SessionControl = {
    kind: registry.kind,
    list: registry.list,
    get: registry.get,
    async revoke (id, reason = 'admin') {
      const revoked = await registry.revoke(id, reason)
      await ended([id])
      return revoked
    },
    async revokeAll (sub, { except, reason = 'admin' } = {}) {
      return await ended(await registry.revokeAll(sub, { ...(except !== undefined && { except }), reason }))
    },
    async revokeBySid (provider, sid) {
      return await ended(await registry.revokeBySid(provider, sid))
    },
    async registerLogin (request, login) {
      // A new id at every login, whatever the session carried before.
      const id = createSessionId()
      const userAgent = request.headers['user-agent']
      const record = await registry.register({ id, ...login, ...(userAgent !== undefined && { userAgent }) })
      await tokens?.remember(id, request)
      // Only once the record exists: an id without one reads as revoked.
      setSuiteField(request.session, SESSION_ID_FIELD, id)
      return record
    },
    async endCurrent (request, reason = 'logout') {
      const id = sessionIdOf(request)
      if (id === undefined) return false
      const revoked = await registry.revoke(id, reason)
      await ended([id])
      return revoked
    },
    currentId: sessionIdOf,
    events: registry.events,
    counters: registry.counters
  }
  // Decorated first: a second registry on this instance stops here, before its check replaces this one's.
  fastify.decorate('sessions', control)
  setRevocationCheck(fastify, registry.check)

  healthRegistry(fastify).add('sessions', async () => {
    const h = await registry.health()
    // In memory is a working registry for one process: the detail says so.
    return { status: h.healthy ? 'pass' : 'fail', detail: `${h.kind}: ${h.detail}` }
  })
}

export default fp(sessionRegistry, {
  fastify: '5.x',
  name: 'fastify-session-suite/session-registry',
  dependencies: ['fastify-session-suite/session']
})
