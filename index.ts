// The root plugin: the whole suite in one register call. Each part is also a
// named export for a service that wants only some of it.
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { validateOptions } from './lib/options.ts'
import secretKeys, { type SecretKeysOptions } from './plugins/secret-keys.ts'
import session, { type SessionOptions } from './plugins/session.ts'
import oauthTokens, { unconfiguredOAuthInfo, type OAuthOptions } from './plugins/oauth-tokens.ts'
import oauthRoutes, { type OAuthRoutesOptions } from './routes/oauth.ts'
import csrf, { type CsrfOptions } from './plugins/csrf.ts'
import redisTokenStore, { type RedisTokenStorePluginOptions } from './plugins/redis-token-store.ts'
import { errors } from './lib/errors.ts'
import { OAUTH_DEFAULTS } from './lib/oauth/options.ts'
import health, { type HealthOptions } from './routes/health.ts'
import debug, { type DebugOptions } from './routes/debug.ts'
import { healthRegistry } from './routes/health-checks.ts'

export interface SessionSuiteOptions {
  /** Names the default key file's folder (`<per-OS config dir>/<appName>/secret.key`). */
  appName?: string
  secret?: SecretKeysOptions
  /** Cookie policy and timeouts; the key comes from `secret` unless `session.key` is given. */
  session?: SessionOptions
  /** OAuth login and token storage; without it, sessions only and no OAuth routes. */
  oauth?: OAuthOptions & OAuthRoutesOptions
  /** CSRF tokens kept in the session (reply.generateCsrf / fastify.csrfProtection); off by default. With it, POST /logout needs a token. */
  csrf?: boolean | CsrfOptions
  /** OAuth tokens in Redis instead of the cookie, and one refresh across the fleet; needs `oauth`. */
  redis?: RedisTokenStorePluginOptions
  /** GET /health; on by default. `false` leaves it out. */
  health?: boolean | HealthOptions
  /** Debug routes; off by default. */
  debug?: boolean | DebugOptions
}

const Section = Type.Object({}, { additionalProperties: true })
const Toggle = Type.Union([Type.Boolean(), Section])

// Only the shape of each section is checked here: every plugin checks its own
// options, with the section's name as prefix (`session.idleTimeout`).
export const SessionSuiteOptionsSchema = Type.Object({
  appName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  secret: Type.Optional(Section),
  session: Type.Optional(Section),
  oauth: Type.Optional(Section),
  csrf: Type.Optional(Toggle),
  redis: Type.Optional(Section),
  health: Type.Optional(Toggle),
  debug: Type.Optional(Toggle)
}, { additionalProperties: false })

const section = <T extends object>(value: boolean | T | undefined): T | undefined =>
  value === true ? {} as T : value === false || value === undefined ? undefined : value

/**
 * The fleet's refresh lock must outlive one provider call: a lock that expires while the call
 * is still running lets a second instance refresh with the same refresh token, which a
 * rotating provider answers with invalid_grant. Default: `oauth.timeout` + 5 s.
 */
function refreshLockTtl (redis: RedisTokenStorePluginOptions, timeout: unknown): number | undefined {
  // A wrong timeout is the OAuth plugin's to refuse, by name; the default stands in until then.
  const call = typeof timeout === 'number' ? timeout : OAUTH_DEFAULTS.timeout
  const lockTtl = redis.lockTtl
  if (lockTtl === undefined) return call + 5000
  if (typeof lockTtl === 'number' && lockTtl <= call) {
    throw new errors.FSS_OPTIONS_INVALID('redis.lockTtl', `must be above oauth.timeout (${call} ms), or a slow refresh loses its lock to another instance`)
  }
  return lockTtl
}

const sessionSuite: FastifyPluginAsync<SessionSuiteOptions> = async (fastify, opts) => {
  validateOptions(SessionSuiteOptionsSchema, opts)
  // Before any plugin, so each can add its own health check while registering.
  healthRegistry(fastify)

  // With `session.key` the session brings its own key and needs no keyring.
  if (opts.session?.key === undefined) {
    await fastify.register(secretKeys, { ...opts.secret, ...(opts.appName !== undefined && { appName: opts.appName }) })
  }
  await fastify.register(session, opts.session ?? {})
  // After the session (its dependency) and before the OAuth routes: POST /logout
  // asks hasPlugin('fastify-session-suite/csrf') when it registers.
  const csrfOptions = section(opts.csrf)
  if (csrfOptions !== undefined) await fastify.register(csrf, csrfOptions)

  if (opts.oauth !== undefined) {
    const { redirectAfterLogout, ...oauth } = opts.oauth
    if (opts.redis !== undefined) {
      // Two places for the tokens would be a silent choice: refuse it at start-up.
      if (oauth.store !== undefined) throw new errors.FSS_OPTIONS_INVALID('oauth.store', 'give either oauth.store or redis, not both')
      // The Redis store seals tokens with the keyring, which `session.key` skips loading.
      if (opts.session?.key !== undefined) throw new errors.FSS_OPTIONS_INVALID('redis', 'needs the keyring: session.key cannot be combined with redis')
      // After the session: the store reads its keyring and absoluteTimeout.
      await fastify.register(redisTokenStore, { ...opts.redis, lockTtl: refreshLockTtl(opts.redis, oauth.timeout) })
      const { store, fleet } = fastify.redisTokenStore
      await fastify.register(oauthTokens, { refreshLock: fleet, ...oauth, store })
    } else {
      await fastify.register(oauthTokens, oauth)
    }
    await fastify.register(oauthRoutes, redirectAfterLogout === undefined ? {} : { redirectAfterLogout })
  } else {
    if (opts.redis !== undefined) throw new errors.FSS_OPTIONS_INVALID('redis', 'the Redis store keeps OAuth tokens: it needs the oauth option')
    // One shape for health and debug output, configured or not.
    fastify.decorate('oauthInfo', unconfiguredOAuthInfo())
  }

  const healthOptions = section(opts.health ?? true)
  if (healthOptions !== undefined) await fastify.register(health, healthOptions)
  const debugOptions = section(opts.debug)
  if (debugOptions !== undefined) await fastify.register(debug, debugOptions)
}

export default fp(sessionSuite, { fastify: '5.x', name: 'fastify-session-suite' })

export { secretKeys, session, oauthTokens, oauthRoutes, csrf, redisTokenStore, health, debug, healthRegistry }
export { CSRF_HEADER, CSRF_FIELD } from './plugins/csrf.ts'
export { getSessionDetails } from './plugins/session.ts'
export { getSecretKeyBytes, getDerivedKeys } from './plugins/secret-keys.ts'
export { rotateKeyFile, type RotateOptions, type RotateResult } from './lib/keyring/rotate.ts'
export { errors, type ErrorCode } from './lib/errors.ts'
export type { SecretKeyInfo, SecretKeysOptions } from './plugins/secret-keys.ts'
export type { SessionOptions, SessionInfo, SessionCounters, SessionDetails } from './plugins/session.ts'
export type { SessionPolicy, SameSite } from './lib/session/policy.ts'
export type { OAuthOptions, OAuthInfo, RequestTokens, StoredToken, TokenMetadata, TokenStore } from './plugins/oauth-tokens.ts'
export type { OAuthRoutesOptions } from './routes/oauth.ts'
export type { CsrfOptions } from './plugins/csrf.ts'
export type { RedisTokenStorePluginOptions, RedisTokenStoreDecorator } from './plugins/redis-token-store.ts'
export type { HealthOptions } from './routes/health.ts'
export type { DebugOptions } from './routes/debug.ts'
export type { HealthCheck, HealthCheckResult, HealthCheckStatus, HealthRegistry } from './routes/health-checks.ts'
export type { HealthResponse, SessionDebugResponse, PersistenceCheck, OAuthTestFlowResponse } from './routes/schemas.ts'
