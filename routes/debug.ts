// Debug routes for development: what key and cookie policy are in force, what
// this session holds (names, never values), a persistence self-test, and the
// OAuth token's state. Registered only on request, refused under
// NODE_ENV=production unless forced, loopback clients only by default.
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'
import { clientFilter } from './client-filter.ts'
import { sessionDebug, oauthTestFlow } from './debug-views.ts'
import {
  ErrorResponse, OAuthTestFlowResponseSchema, PersistenceCheckSchema, PersistenceQuery, PersistenceStored, SessionDebugResponseSchema
} from './schemas.ts'
import { sessionCookieConfig, TAGS } from './openapi.ts'

declare module '@fastify/secure-session' {
  interface SessionData {
    /** written by POST /api/session/test-persistence only */
    fssPersistenceTest?: { nonce: string, storedAt: number }
  }
}

export interface DebugOptions {
  /** Register even when NODE_ENV=production. */
  force?: boolean
  /** Client addresses or CIDR ranges allowed besides loopback, e.g. `['10.0.0.0/8']`. */
  allow?: string[]
  /** Prefix of the debug routes; default `/api`. */
  prefix?: string
  /** List the debug routes in the OpenAPI document (@fastify/swagger); default false: they are for development. */
  openapi?: boolean
}

export const DebugOptionsSchema = Type.Object({
  force: Type.Optional(Type.Boolean()),
  allow: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 })),
  prefix: Type.Optional(Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', maxLength: 200 })),
  openapi: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const guarded = { 403: ErrorResponse }

const debugRoutes: FastifyPluginAsyncTypebox<{ allowed: (request: FastifyRequest) => boolean, openapi: boolean }> = async (scope, { allowed, openapi }) => {
  const hide = !openapi
  const config = sessionCookieConfig(scope)
  scope.addHook('onRequest', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (!allowed(request)) throw new errors.FSS_DEBUG_FORBIDDEN()
  })

  scope.get('/session/debug', {
    config,
    schema: { summary: 'Key, cookie policy and this session\'s field names (never values)', tags: [TAGS.session, TAGS.debug], hide, response: { 200: SessionDebugResponseSchema, ...guarded } }
  }, async (request) => sessionDebug(scope, request))

  scope.post('/session/test-persistence', {
    config,
    schema: { summary: 'Stores a random nonce in the session', tags: [TAGS.session, TAGS.debug], hide, response: { 200: PersistenceStored, ...guarded } }
  }, async (request) => {
    const stored = { nonce: randomBytes(18).toString('base64url'), storedAt: Date.now() }
    request.session.set('fssPersistenceTest', stored)
    return stored
  })

  scope.get('/session/test-persistence', {
    config,
    schema: { summary: 'Whether the session still carries the nonce', tags: [TAGS.session, TAGS.debug], hide, querystring: PersistenceQuery, response: { 200: PersistenceCheckSchema, ...guarded } }
  }, async (request) => {
    const stored = request.session.get('fssPersistenceTest')
    const persisted = typeof stored?.nonce === 'string'
    return {
      persisted,
      storedAt: persisted ? stored.storedAt : null,
      matches: request.query.nonce === undefined ? null : persisted && stored.nonce === request.query.nonce
    }
  })

  scope.get('/oauth/test-flow', {
    config,
    schema: { summary: 'OAuth configuration and token state, never a value', tags: [TAGS.oauth, TAGS.debug], hide, response: { 200: OAuthTestFlowResponseSchema, ...guarded } }
  }, async (request) => oauthTestFlow(scope, request))
}

const debug: FastifyPluginAsyncTypebox<DebugOptions> = async (fastify, opts) => {
  const { force = false, allow = [], prefix = '/api', openapi = false } = validateOptions(DebugOptionsSchema, opts, 'debug')
  if (process.env.NODE_ENV === 'production' && !force) throw new errors.FSS_DEBUG_IN_PRODUCTION()
  const allowed = clientFilter(allow)
  await fastify.register(debugRoutes, { prefix, allowed, openapi })
  fastify.log.warn({ prefix, allow }, 'session suite debug routes are on: development only')
}

export default fp(debug, { fastify: '5.x', name: 'fastify-session-suite/debug' })
