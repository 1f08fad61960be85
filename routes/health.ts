// GET /health: is this instance's session setup sound? Built-in checks (key,
// key file, cookie policy, cookie size, OAuth) plus any a plugin added to the
// registry. healthy/degraded answer 200 so a load balancer keeps a degraded
// instance in rotation; unhealthy answers 503.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { validateOptions } from '../lib/options.ts'
import { requestForLog } from '../lib/display-url.ts'
import { HealthResponseSchema } from './schemas.ts'
import { healthRegistry, type HealthCheck, type HealthCheckResult } from '../lib/health.ts'
import { builtInChecks } from './health-checks.ts'
import { optionalDecorator } from './decorators.ts'
import type { OAuthInfo } from '../plugins/oauth-tokens.ts'
import { TAGS } from './openapi.ts'
import { SESSION_UNTOUCHED } from '../plugins/session.ts'

const HEALTH_DEFAULTS = { path: '/health', timeout: 2000 } as const

export const HealthOptionsSchema = Type.Object({
  path: Type.Optional(Type.String({ pattern: '^/', maxLength: 200, description: 'The route\'s path.', default: HEALTH_DEFAULTS.path })),
  /** ms @default 2000 */
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Milliseconds one check may take before it counts as `fail` (1 to 60000).', default: HEALTH_DEFAULTS.timeout }))
}, { additionalProperties: false })

export type HealthOptions = Static<typeof HealthOptionsSchema>

/** Only the code: an error message from a driver may carry a connection string. */
function thrown (err: unknown): HealthCheckResult {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return { status: 'fail', detail: `check threw ${typeof code === 'string' ? code : 'an error'}` }
}

async function runCheck (check: HealthCheck, timeout: number): Promise<HealthCheckResult> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<HealthCheckResult>((resolve) => {
    timer = setTimeout(resolve, timeout, { status: 'fail', detail: `no answer within ${timeout} ms` })
  })
  const result = await Promise.race([Promise.resolve().then(check).catch(thrown), late])
  clearTimeout(timer)
  return result
}

const health: FastifyPluginAsyncTypebox<HealthOptions> = async (fastify, opts) => {
  const { path = HEALTH_DEFAULTS.path, timeout = HEALTH_DEFAULTS.timeout } = validateOptions(HealthOptionsSchema, opts, 'health')
  const registry = healthRegistry(fastify)
  const builtIn = builtInChecks(fastify)

  fastify.get(path, {
    // Paths only in the request log: a probe may add anything to the query.
    logSerializers: { req: requestForLog },
    // Never opens the session cookie, not even for the session registry's revocation check.
    config: SESSION_UNTOUCHED,
    schema: {
      summary: 'Session suite health: key, cookie policy, OAuth and plugin checks',
      tags: [TAGS.health],
      response: { 200: HealthResponseSchema, 503: HealthResponseSchema }
    }
  }, async (_request, reply) => {
    // Deliberately never touches request.session: the session is decoded lazily, so it stays sealed.
    const all = [...builtIn, ...registry.list()]
    const results = await Promise.all(all.map(async ({ name, check }) => ({ name, ...await runCheck(check, timeout) })))
    const status = results.some((r) => r.status === 'fail')
      ? 'unhealthy'
      : results.some((r) => r.status === 'warn') ? 'degraded' : 'healthy'
    reply.header('cache-control', 'no-store')
    const jwks = optionalDecorator<OAuthInfo>(fastify, 'oauthInfo')?.oidc?.jwks
    return reply.code(status === 'unhealthy' ? 503 : 200).send({ status, checks: results, ...(jwks === undefined ? {} : { jwks }) })
  })
}

export default fp(health, { fastify: '5.x', name: 'fastify-session-suite/health' })
