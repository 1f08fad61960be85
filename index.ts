// The root plugin: the whole suite in one register call. Each part is also a
// named export for a service that wants only some of it.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { validateOptions } from './lib/options.ts'
import secretKeys, { type SecretKeysOptions } from './plugins/secret-keys.ts'
import session, { type SessionOptions } from './plugins/session.ts'
import oauthTokens, { unconfiguredOAuthInfo, type OAuthOptions } from './plugins/oauth-tokens.ts'
import oauthRoutes, { type OAuthRoutesOptions } from './routes/oauth.ts'
import csrf, { type CsrfOptions } from './plugins/csrf.ts'
import redisTokenStore, { type RedisTokenStorePluginOptions } from './plugins/redis-token-store.ts'
import { errors } from './lib/errors.ts'
import health, { type HealthOptions } from './routes/health.ts'
import debug, { type DebugOptions } from './routes/debug.ts'
import { healthRegistry } from './lib/health.ts'
import { DEFAULT_APP_NAME } from './lib/keyring/load.ts'
import sessionRegistry, { type SessionRegistryPluginOptions } from './plugins/session-registry.ts'
import sessionRoutes from './routes/sessions.ts'
import backchannelLogout, { type BackchannelLogoutOptions } from './routes/backchannel-logout.ts'

/** The `sessions` section: the registry's options, and the back-channel logout route's. */
export type SessionControlOptions = SessionRegistryPluginOptions & {
  /** OpenID Connect Back-Channel Logout at `/backchannel-logout`: on by default with an OpenID Connect provider. */
  backchannel?: boolean | BackchannelLogoutOptions
}

// Only the shape of each section is checked here: every plugin checks its own
// options against its own schema, with the section's name as prefix
// (`session.idleTimeout`). A section's type is that schema's.
const Section = <T>(description: string) => Type.Unsafe<T>(Type.Object({}, { additionalProperties: true, description }))
const Toggle = <T>(description: string, on: boolean) =>
  Type.Unsafe<boolean | T>(Type.Union([Type.Boolean(), Type.Object({}, { additionalProperties: true })], { description, default: on }))

export const SessionSuiteOptionsSchema = Type.Object({
  appName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Names the default key file\'s folder (`<per-OS config dir>/<appName>/secret.key`); the keyring\'s `appName`.', default: DEFAULT_APP_NAME })),
  secret: Type.Optional(Section<SecretKeysOptions>('The keyring: where the keys come from (the secret-keys plugin).')),
  session: Type.Optional(Section<SessionOptions>('Cookie policy and timeouts. With `session.key`, no keyring is loaded (and `secret` is refused).')),
  oauth: Type.Optional(Section<OAuthOptions & OAuthRoutesOptions>('OAuth login and token storage, and the OAuth routes\' `redirectAfterLogout`. Without it: sessions only, no OAuth routes.')),
  csrf: Type.Optional(Toggle<CsrfOptions>('CSRF tokens kept in the session (reply.generateCsrf, fastify.csrfProtection); with it, POST /logout needs a token.', false)),
  redis: Type.Optional(Section<RedisTokenStorePluginOptions>('OAuth tokens in Redis instead of the cookie, and one refresh across the fleet. Needs `oauth`; refused with `oauth.store`.')),
  sessions: Type.Optional(Section<SessionControlOptions>('Session control: a registry of logged-in sessions (`fastify.sessions`), GET/DELETE /api/sessions, POST /api/sessions/revoke-others and, with an OpenID Connect provider, POST /backchannel-logout. Off without it.')),
  health: Type.Optional(Toggle<HealthOptions>('GET /health; `false` leaves it out.', true)),
  debug: Type.Optional(Toggle<DebugOptions>('The debug routes: development only, loopback clients by default.', false))
}, { additionalProperties: false })

export type SessionSuiteOptions = Static<typeof SessionSuiteOptionsSchema>

const section = <T extends object>(value: boolean | T | undefined): T | undefined =>
  value === true ? {} as T : value === false || value === undefined ? undefined : value

const sessionSuite: FastifyPluginAsync<SessionSuiteOptions> = async (fastify, opts) => {
  validateOptions(SessionSuiteOptionsSchema, opts)
  // The keys come from one place. The keyring's options are `secret` (and `appName`); a second
  // set, or keys of the session's own next to them, would be dropped without a word.
  if (opts.session !== undefined && 'secret' in opts.session) {
    throw new errors.FSS_OPTIONS_INVALID('session.secret', opts.secret === undefined
      ? 'the keyring is loaded from the `secret` option: move these options there'
      : 'conflicts with `secret`: the keyring is loaded once, from `secret`')
  }
  if (opts.session?.key !== undefined && opts.secret !== undefined) {
    throw new errors.FSS_OPTIONS_INVALID('session.key', 'conflicts with `secret`: give the keys either as session.key or as the keyring options in `secret`')
  }
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
      await fastify.register(redisTokenStore, opts.redis)
      const { store, refreshLock } = fastify.redisTokenStore
      await fastify.register(oauthTokens, { refreshLock, ...oauth, store })
    } else {
      await fastify.register(oauthTokens, oauth)
    }
    await fastify.register(oauthRoutes, redirectAfterLogout === undefined ? {} : { redirectAfterLogout })
  } else {
    if (opts.redis !== undefined) throw new errors.FSS_OPTIONS_INVALID('redis', 'the Redis store keeps OAuth tokens: it needs the oauth option')
    // One shape for health and debug output, configured or not.
    fastify.decorate('oauthInfo', unconfiguredOAuthInfo())
  }

  if (opts.sessions !== undefined) {
    const { backchannel, ...registryOptions } = opts.sessions
    await fastify.register(sessionRegistry, registryOptions)
    await fastify.register(sessionRoutes)
    // Back-channel logout needs an OpenID Connect provider's keys: on with one, unless turned off.
    const oidc = fastify.hasDecorator('oauthFlow') && fastify.oauthFlow.logoutTokens !== null
    const backchannelOptions = section(backchannel ?? oidc)
    if (backchannelOptions !== undefined) {
      if (opts.oauth === undefined) throw new errors.FSS_OPTIONS_INVALID('sessions.backchannel', 'needs the oauth option with an OpenID Connect provider')
      await fastify.register(backchannelLogout, backchannelOptions)
    }
  }

  const healthOptions = section(opts.health ?? true)
  if (healthOptions !== undefined) await fastify.register(health, healthOptions)
  const debugOptions = section(opts.debug)
  if (debugOptions !== undefined) await fastify.register(debug, debugOptions)
}

export default fp(sessionSuite, { fastify: '5.x', name: 'fastify-session-suite' })

export { secretKeys, session, oauthTokens, oauthRoutes, csrf, redisTokenStore, health, debug, healthRegistry, sessionRegistry, sessionRoutes, backchannelLogout }
export { createSessionId, isSessionId } from './lib/sessions/id.ts'
export type { SessionRegistryPluginOptions, SessionControl, LoginInput } from './plugins/session-registry.ts'
export type { BackchannelLogoutOptions } from './routes/backchannel-logout.ts'
export type { SessionRecord, RevocationReason } from './lib/sessions/contract.ts'
export { CSRF_HEADER, CSRF_FIELD } from './plugins/csrf.ts'
export { getSessionDetails } from './plugins/session.ts'
export { getSecretKeyBytes, getDerivedKeys } from './plugins/secret-keys.ts'
export { rotateKeyFile, type RotateOptions, type RotateResult } from './lib/keyring/rotate.ts'
export { redisConnectionFromEnv, describeRedisConnection, type RedisConnectOptions } from './lib/redis/connection.ts'
export { errors, FssError, type ErrorCode } from './lib/errors.ts'
export type { SecretKeyInfo, SecretKeysOptions } from './plugins/secret-keys.ts'
export type { SessionData, SessionOptions, SessionInfo, SessionCounters, SessionDetails } from './plugins/session.ts'
export type { SessionPolicy, SameSite } from './lib/session/policy.ts'
export type { OAuthOptions, OAuthInfo, OAuthFlow, RequestTokens, StoredToken, TokenMetadata, TokenStore } from './plugins/oauth-tokens.ts'
export type { OAuthRoutesOptions } from './routes/oauth.ts'
export type { CsrfOptions } from './plugins/csrf.ts'
export type { RedisTokenStorePluginOptions, RedisTokenStoreDecorator } from './plugins/redis-token-store.ts'
export type { HealthOptions } from './routes/health.ts'
export type { DebugOptions } from './routes/debug.ts'
export type { HealthCheck, HealthCheckResult, HealthCheckStatus, HealthRegistry } from './lib/health.ts'
export type { HealthResponse, SessionDebugResponse, PersistenceCheck, OAuthTestFlowResponse } from './routes/schemas.ts'
