// Debug routes for development: what key and cookie policy are in force, what
// this session holds (names, never values), a persistence self-test, and the
// OAuth token's state. Registered only on request, refused under
// NODE_ENV=production unless forced, loopback clients only by default.
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'
import { getSuiteField, setSuiteField } from '../lib/session/suite-fields.ts'
import { clientFilter } from './client-filter.ts'
import { sessionDebug, oauthTestFlow } from './debug-views.ts'
import {
  ErrorResponse, OAuthTestFlowResponseSchema, PersistenceCheckSchema, PersistenceQuery, PersistenceStored, SessionDebugResponseSchema
} from './schemas.ts'
import { sessionCookieConfig, TAGS } from './openapi.ts'

/** The suite session field POST /api/session/test-persistence writes (`fss.persistenceTest`). */
const PERSISTENCE_FIELD = 'persistenceTest'

const DEBUG_DEFAULTS = { force: false, prefix: '/api', openapi: false } as const

export const DebugOptionsSchema = Type.Object({
  force: Type.Optional(Type.Boolean({ description: 'Register the routes even when NODE_ENV=production.', default: DEBUG_DEFAULTS.force })),
  allow: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), {
    maxItems: 100,
    description: 'Client addresses or CIDR ranges allowed besides loopback, e.g. `[\'10.0.0.0/8\']`; every hop must be allowed.',
    default: []
  })),
  prefix: Type.Optional(Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', maxLength: 200, description: 'Prefix of the debug routes.', default: DEBUG_DEFAULTS.prefix })),
  openapi: Type.Optional(Type.Boolean({ description: 'List the debug routes in the OpenAPI document (@fastify/swagger); off by default: they are for development.', default: DEBUG_DEFAULTS.openapi }))
}, { additionalProperties: false })

export type DebugOptions = Static<typeof DebugOptionsSchema>

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
    setSuiteField(request.session, PERSISTENCE_FIELD, stored)
    return stored
  })

  scope.get('/session/test-persistence', {
    config,
    schema: { summary: 'Whether the session still carries the nonce', tags: [TAGS.session, TAGS.debug], hide, querystring: PersistenceQuery, response: { 200: PersistenceCheckSchema, ...guarded } }
  }, async (request) => {
    // Decrypted is not validated: the nonce counts only as a string.
    const stored = getSuiteField(request.session, PERSISTENCE_FIELD) as { nonce?: unknown, storedAt: number } | undefined
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
  const { force = DEBUG_DEFAULTS.force, allow = [], prefix = DEBUG_DEFAULTS.prefix, openapi = DEBUG_DEFAULTS.openapi } = validateOptions(DebugOptionsSchema, opts, 'debug')
  if (process.env.NODE_ENV === 'production' && !force) throw new errors.FSS_DEBUG_IN_PRODUCTION()
  const allowed = clientFilter(allow)
  await fastify.register(debugRoutes, { prefix, allowed, openapi })
  fastify.log.warn({ prefix, allow }, 'session suite debug routes are on: development only')
}

export default fp(debug, { fastify: '5.x', name: 'fastify-session-suite/debug' })
