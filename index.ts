// The root plugin: the whole suite in one register call. Each part is also a
// named export for a service that wants only some of it.
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { validateOptions } from './lib/options.ts'
import secretKeys, { type SecretKeysOptions } from './plugins/secret-keys.ts'
import session, { type SessionOptions } from './plugins/session.ts'
import oauthTokens, { unconfiguredOAuthInfo, type OAuthOptions } from './plugins/oauth-tokens.ts'
import oauthRoutes from './routes/oauth.ts'
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
  oauth?: OAuthOptions
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
  health: Type.Optional(Toggle),
  debug: Type.Optional(Toggle)
}, { additionalProperties: false })

const section = <T extends object>(value: boolean | T | undefined): T | undefined =>
  value === true ? {} as T : value === false || value === undefined ? undefined : value

const sessionSuite: FastifyPluginAsync<SessionSuiteOptions> = async (fastify, opts) => {
  const { logLevel: _l, logSerializers: _s, ...own } = opts as SessionSuiteOptions & Record<string, unknown>
  validateOptions(SessionSuiteOptionsSchema, own)
  // Before any plugin, so each can add its own health check while registering.
  healthRegistry(fastify)

  // With `session.key` the session brings its own key and needs no keyring.
  if (opts.session?.key === undefined) {
    await fastify.register(secretKeys, { ...opts.secret, ...(opts.appName !== undefined && { appName: opts.appName }) })
  }
  await fastify.register(session, opts.session ?? {})
  if (opts.oauth !== undefined) {
    await fastify.register(oauthTokens, opts.oauth)
    await fastify.register(oauthRoutes)
  } else {
    // One shape for health and debug output, configured or not.
    fastify.decorate('oauthInfo', unconfiguredOAuthInfo())
  }

  // (CSRF protection registers here, after the session and before the routes.)

  const healthOptions = section(opts.health ?? true)
  if (healthOptions !== undefined) await fastify.register(health, healthOptions)
  const debugOptions = section(opts.debug)
  if (debugOptions !== undefined) await fastify.register(debug, debugOptions)
}

export default fp(sessionSuite, { fastify: '5.x', name: 'fastify-session-suite' })

export { secretKeys, session, oauthTokens, oauthRoutes, health, debug, healthRegistry }
export { getSessionDetails } from './plugins/session.ts'
export { getSecretKeyBytes } from './plugins/secret-keys.ts'
export { errors, type ErrorCode } from './lib/errors.ts'
export type { SecretKeyInfo, SecretKeysOptions } from './plugins/secret-keys.ts'
export type { SessionOptions, SessionInfo, SessionCounters, SessionDetails } from './plugins/session.ts'
export type { SessionPolicy, SameSite } from './lib/session/policy.ts'
export type { OAuthOptions, OAuthInfo, RequestTokens, StoredToken, TokenMetadata, TokenStore } from './plugins/oauth-tokens.ts'
export type { HealthOptions } from './routes/health.ts'
export type { DebugOptions } from './routes/debug.ts'
export type { HealthCheck, HealthCheckResult, HealthCheckStatus, HealthRegistry } from './routes/health-checks.ts'
export type { HealthResponse, SessionDebugResponse, PersistenceCheck, OAuthTestFlowResponse } from './routes/schemas.ts'
