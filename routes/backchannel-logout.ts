// POST /backchannel-logout: OpenID Connect Back-Channel Logout 1.0. The
// provider posts a signed logout_token (form body); a verified, unseen token
// ends the sessions it names: those logged in through its `sid`, or all of its
// `sub`'s, among the logins made with the provider that signed it (one endpoint
// for every OpenID Connect provider: the token's issuer picks whose keys verify
// it). Server to server, so no CSRF token (the provider's signature is the
// proof) and no cookies; only application/x-www-form-urlencoded is accepted.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { refuse } from '../lib/oidc/reasons.ts'
import { validateOptions } from '../lib/options.ts'
import { ExpiringMap } from '../lib/expiring-map.ts'
import { sha256Base64url } from '../lib/digest.ts'
import { guard } from '../lib/redis/client.ts'
import { addFormParser } from '../plugins/csrf.ts'
import type {} from '../plugins/session-registry.ts'
import type {} from '../plugins/redis-token-store.ts'
import type {} from '../plugins/oauth-tokens.ts'
import { ErrorResponse } from './schemas.ts'
import { TAGS } from './openapi.ts'
import { requestForLog } from '../lib/display-url.ts'

export const BackchannelLogoutOptionsSchema = Type.Object({
  path: Type.Optional(Type.String({ pattern: '^/[^\\s?#]*$', maxLength: 200, description: 'Route path; register `<origin><path>` at the provider as the back-channel logout URI.', default: '/backchannel-logout' })),
  provider: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Accept logout tokens from this provider (by name) only. Default: every OpenID Connect provider, each token verified with the keys of the issuer it names.' }))
}, { additionalProperties: false })
export type BackchannelLogoutOptions = Static<typeof BackchannelLogoutOptionsSchema>

/** §2.8: an invalid request is a 400 with an OAuth 2.0 style error body. */
const SpecError = Type.Object({ error: Type.Literal('invalid_request'), error_description: Type.String() })

/** jti values this process remembers when there is no Redis; beyond it the oldest are forgotten. */
const MEMORY_JTI_MAX = 10_000

interface ReplayGuard {
  /** true when the jti was not seen before (and is now remembered until `ttlMs` passes) */
  first: (key: string, ttlMs: number) => Promise<boolean>
  /** forget a jti whose logout failed, so the provider's retry is not refused as a replay */
  release: (key: string) => Promise<void>
}

function replayGuard (fastify: FastifyInstance): ReplayGuard {
  if (fastify.hasDecorator('redisTokenStore')) {
    // SET NX: one instance of the fleet wins each jti.
    const { client, keyPrefix, commandTimeout } = fastify.redisTokenStore
    const run = <R>(command: () => Promise<R>): Promise<R> => guard(client, commandTimeout, command)
    return {
      first: async (key, ttlMs) => await run(() => client.set(`${keyPrefix}bcl:jti:${key}`, '1', 'PX', ttlMs, 'NX')) === 'OK',
      release: async (key) => { await run(() => client.del(`${keyPrefix}bcl:jti:${key}`)) }
    }
  }
  const seen = new ExpiringMap<true>(MEMORY_JTI_MAX)
  return {
    async first (key, ttlMs) {
      if (seen.get(key) !== undefined) return false
      seen.set(key, true, Date.now() + ttlMs)
      return true
    },
    /* c8 ignore next -- a revocation in the memory registry cannot fail; the contract is kept all the same */
    async release (key) { seen.delete(key) }
  }
}

function invalid (reply: FastifyReply, description: string): FastifyReply {
  return reply.code(400).send({ error: 'invalid_request', error_description: description })
}

const backchannelLogout: FastifyPluginAsyncTypebox<BackchannelLogoutOptions> = async (fastify, opts) => {
  // Every route here logs its path only: a query string may carry a code, a state, a returnTo or a
  // CSRF token a client put there (the token is then refused, but the request line is still logged).
  fastify.addHook('onRoute', (route) => { route.logSerializers = { ...route.logSerializers, req: requestForLog } })
  const { path = '/backchannel-logout', provider: only } = validateOptions(BackchannelLogoutOptionsSchema, opts, 'sessions.backchannel')
  const flow = fastify.oauthFlow
  const logoutTokens = flow.logoutTokens
  if (logoutTokens === null) throw new errors.FSS_OPTIONS_INVALID('sessions.backchannel', 'needs an OpenID Connect provider (its keys sign the logout_token)')
  if (only !== undefined && !flow.providers.includes(only)) throw new errors.FSS_OPTIONS_INVALID('sessions.backchannel.provider', 'names no provider of the oauth option')
  const sessions = fastify.sessions
  const replay = replayGuard(fastify)
  // A jti needs remembering only while its token could still be accepted.
  const jtiTtlMs = logoutTokens.maxAgeSeconds * 1000

  // Only form bodies: JSON, text and anything else are 415 here.
  fastify.removeAllContentTypeParsers()
  addFormParser(fastify)

  fastify.post(path, {
    // A body that is not a form object (none at all, say) is the spec's 400 invalid_request like any
    // other bad request: Fastify's own validation error would not fit the 400 schema and become a 500.
    attachValidation: true,
    onRequest: (_request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      reply.header('cache-control', 'no-store')
      done()
    },
    schema: {
      summary: 'OpenID Connect Back-Channel Logout: the provider ends sessions',
      description: 'Form body logout_token, signed by the provider. 200 when it was processed; 400 ' +
        '{ error: invalid_request } for a missing, invalid or replayed token (nothing is revoked); ' +
        '503 FSS_STORE_UNAVAILABLE when the registry cannot answer (the provider retries; the jti is not kept).',
      tags: [TAGS.oauth, TAGS.session],
      body: Type.Object({ logout_token: Type.Optional(Type.Unknown()) }, { additionalProperties: true }),
      response: { 200: Type.Object({ revoked: Type.Integer({ minimum: 0 }) }), 400: SpecError, 415: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    if (request.validationError !== undefined) return invalid(reply, 'the body is not a form with a logout_token')
    const token = request.body.logout_token
    if (typeof token !== 'string' || token === '') return invalid(reply, 'logout_token is missing (or given more than once)')
    let claims
    try {
      claims = await logoutTokens.verify(token)
      if (only !== undefined && claims.provider !== only) throw refuse.logoutToken('issuer')
    } catch (err) {
      const coded = err as { code?: string, message: string }
      if (coded.code !== 'FSS_LOGOUT_TOKEN_INVALID') throw err
      // The message names the failed check, never the token.
      request.log.warn({ code: coded.code }, 'logout_token refused')
      return invalid(reply, coded.message)
    }
    const replayKey = sha256Base64url(`${claims.iss}\n${claims.jti}`)
    if (!await replay.first(replayKey, jtiTtlMs)) {
      request.log.warn('logout_token replayed: refused')
      return invalid(reply, 'The logout_token was refused: replayed (jti already seen)')
    }
    try {
      // §2.7: with a sid, the sessions of that provider session; with only a sub, all of the user's.
      const ended = claims.sid !== undefined
        ? await sessions.revokeBySid(claims.provider, claims.sid)
        : await sessions.revokeAll(flow.registrySubject(claims.provider, claims.sub as string), { reason: 'backchannel' })
      request.log.info({ revoked: ended.length, by: claims.sid !== undefined ? 'sid' : 'sub', provider: claims.provider }, 'back-channel logout')
      return { revoked: ended.length }
    } catch (err) {
      // Forgotten if Redis lets us: the provider's retry is then not a replay.
      await Promise.allSettled([replay.release(replayKey)])
      throw err
    }
  })
}

export default fp(backchannelLogout, {
  fastify: '5.x',
  name: 'fastify-session-suite/backchannel-logout',
  dependencies: ['fastify-session-suite/session-registry', 'fastify-session-suite/oauth-tokens'],
  encapsulate: true
})
