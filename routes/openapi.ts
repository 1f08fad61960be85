// OpenAPI metadata for the suite's routes. A service that registers
// @fastify/swagger (before the suite) gets them in its document: tags and
// summaries, the response schemas the routes already declare, and, on routes
// that read the session, a cookie security scheme. The suite does not depend
// on @fastify/swagger: it only sets schema keywords and the per-route
// `config.swaggerTransform` hook that plugin documents, which a plugin needs
// because only the service's own registration options declare components.
import type { FastifyInstance, FastifySchema } from 'fastify'

/** Tags of the suite's operations. */
export const TAGS = { session: 'session', oauth: 'oauth', health: 'health', debug: 'debug' } as const

/** Name of the security scheme for the session cookie in components.securitySchemes. */
export const SESSION_COOKIE_SCHEME = 'fssSessionCookie'

/** What @fastify/swagger passes a route's transform: the document under construction is `openapiObject` (OpenAPI 3) or `swaggerObject` (Swagger 2). */
interface TransformInput { schema: FastifySchema, url: string, openapiObject?: unknown }
interface OpenApiComponents { components?: { securitySchemes?: Record<string, unknown> } }

/**
 * Route `config` for an operation that reads the session cookie: its
 * document entry requires the cookie scheme, which is added to the
 * document's components unless the service declared one of that name.
 */
export function sessionCookieConfig (fastify: FastifyInstance): { swaggerTransform?: (input: TransformInput) => { schema: FastifySchema, url: string } } {
  if (!fastify.hasDecorator('sessionInfo')) return {}
  const name = fastify.sessionInfo.policy.cookieName
  return {
    swaggerTransform ({ schema, url, openapiObject }) {
      // Swagger 2.0 (no openapiObject) has no cookie security scheme.
      if (openapiObject === undefined) return { schema, url }
      const document = openapiObject as OpenApiComponents
      const components = document.components ??= {}
      const schemes = components.securitySchemes ??= {}
      schemes[SESSION_COOKIE_SCHEME] ??= {
        type: 'apiKey',
        in: 'cookie',
        name,
        description: `The encrypted session cookie (split into ${name}.0, ${name}.1, … when it is large)`
      }
      return { schema: { ...schema, security: [{ [SESSION_COOKIE_SCHEME]: [] }] }, url }
    }
  }
}
