// The user's own sessions: GET /api/sessions lists them (this one marked
// `current`), DELETE /api/sessions/:id ends one, POST
// /api/sessions/revoke-others ends all but this one. Only a logged-in session
// reaches them, and only its user's sessions are visible: another user's id is
// a 404 like an unknown one, so ids cannot be probed. With the csrf plugin the
// two that change state need the session's CSRF token.
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { isSessionId } from '../lib/sessions/id.ts'
import type { SessionRecord } from '../lib/sessions/contract.ts'
import type {} from '../plugins/session-registry.ts'
import { ErrorResponse } from './schemas.ts'
import { sessionCookieConfig, TAGS } from './openapi.ts'
import { requestForLog } from '../lib/display-url.ts'

/** What a user sees of a session: never the raw user agent, the IP, the sub or the provider's sid. */
const SessionView = Type.Object({
  id: Type.String({ description: 'the id DELETE /api/sessions/:id takes' }),
  device: Type.String({ description: '"Browser on OS", parsed from the User-Agent at login' }),
  createdAt: Type.Integer({ minimum: 0, description: 'ms since the epoch' }),
  lastSeenAt: Type.Integer({ minimum: 0, description: 'ms since the epoch; written at most once per touchInterval, so it lags by up to that long' }),
  current: Type.Boolean({ description: 'true for exactly one: the session making this request' })
})

// Every 4xx and 5xx, whatever its source (503: a registry that cannot answer).
const errorReplies = { '4xx': ErrorResponse, '5xx': ErrorResponse }

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Every route here logs its path only: a query string may carry a code, a state, a returnTo or a
  // CSRF token a client put there (the token is then refused, but the request line is still logged).
  fastify.addHook('onRoute', (route) => { route.logSerializers = { ...route.logSerializers, req: requestForLog } })
  const sessions = fastify.sessions
  const csrfCheck = fastify.hasPlugin('fastify-session-suite/csrf') ? fastify.csrfProtection : undefined
  const guarded = csrfCheck === undefined ? {} : { preHandler: csrfCheck }
  const config = sessionCookieConfig(fastify)

  /** The caller's live record, or 401: a session whose record is gone is not logged in. */
  async function current (request: FastifyRequest): Promise<SessionRecord> {
    const id = sessions.currentId(request)
    const record = id === undefined ? null : await sessions.get(id)
    if (record === null) throw new errors.FSS_SESSION_REQUIRED()
    return record
  }

  // Set before any check runs, so a refusal is not cached either.
  const onRequest = (_request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    reply.header('cache-control', 'no-store')
    done()
  }

  fastify.get('/api/sessions', {
    onRequest,
    config,
    schema: {
      summary: "The logged-in user's sessions, this one marked current",
      tags: [TAGS.session],
      response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errorReplies }
    }
  }, async (request) => {
    const me = await current(request)
    const records = await sessions.list(me.sub)
    // list() is capped and ordered by lastSeenAt: this session is shown even past the cap.
    if (!records.some((r) => r.id === me.id)) records.unshift(me)
    return {
      sessions: records.map((r) => ({ id: r.id, device: r.device, createdAt: r.createdAt, lastSeenAt: r.lastSeenAt, current: r.id === me.id }))
    }
  })

  fastify.delete('/api/sessions/:id', {
    onRequest,
    ...guarded,
    config,
    schema: {
      summary: 'Sign one of your sessions out (another device, or this one)',
      description: '404 FSS_SESSION_NOT_FOUND for an id that is not one of your live sessions (another user\'s too); ' +
        '400 FSS_SESSION_ID_INVALID for a malformed one; 401 FSS_SESSION_REQUIRED when not logged in; ' +
        '503 FSS_STORE_UNAVAILABLE when the registry cannot answer (then nothing was revoked).',
      tags: [TAGS.session],
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 200: Type.Object({ revoked: Type.Literal(true), current: Type.Boolean() }), ...errorReplies }
    }
  }, async (request) => {
    const me = await current(request)
    const { id } = request.params
    if (!isSessionId(id)) throw new errors.FSS_SESSION_ID_INVALID()
    const record = await sessions.get(id)
    // Another user's session reads as not found, and so does one ended meanwhile by another request.
    if (record?.sub !== me.sub || !await sessions.revoke(id, 'user')) throw new errors.FSS_SESSION_NOT_FOUND()
    const self = id === me.id
    if (self) request.session.delete()
    return { revoked: true as const, current: self }
  })

  fastify.post('/api/sessions/revoke-others', {
    onRequest,
    ...guarded,
    config,
    schema: {
      summary: 'Sign out everywhere else: every session of yours but this one',
      tags: [TAGS.session],
      response: { 200: Type.Object({ revoked: Type.Integer({ minimum: 0, description: 'how many sessions were ended' }) }), ...errorReplies }
    }
  }, async (request) => {
    const me = await current(request)
    const ended = await sessions.revokeAll(me.sub, { except: me.id, reason: 'others' })
    return { revoked: ended.length }
  })
}

export default fp(sessionRoutes, {
  fastify: '5.x',
  name: 'fastify-session-suite/session-routes',
  dependencies: ['fastify-session-suite/session-registry'],
  encapsulate: true
})
