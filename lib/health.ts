// The registry behind GET /health: the checks plugins add (the Redis token
// store adds a ping), kept on the instance as `sessionSuiteHealth`. The route
// in routes/health.ts runs them next to its built-in checks; this file knows
// nothing of either, so any plugin can add a check without reaching into routes.
import type { FastifyInstance } from 'fastify'
import { errors } from './errors.ts'

export type HealthCheckStatus = 'pass' | 'warn' | 'fail'
export interface HealthCheckResult { status: HealthCheckStatus, detail: string }
/** A check must not throw for an expected problem: answer `fail` with a detail (no secret values). */
export type HealthCheck = () => HealthCheckResult | Promise<HealthCheckResult>

export interface HealthRegistry {
  /** Adds a named check to GET /health. Names are unique. */
  add: (name: string, check: HealthCheck) => void
  list: () => Array<{ name: string, check: HealthCheck }>
}

declare module 'fastify' {
  interface FastifyInstance { sessionSuiteHealth: HealthRegistry }
}

/**
 * The registry on this instance, created on first use, so a plugin can add a
 * check whether it registers before or after the health route.
 */
export function healthRegistry (fastify: FastifyInstance): HealthRegistry {
  if (fastify.hasDecorator('sessionSuiteHealth')) return fastify.sessionSuiteHealth
  const checks = new Map<string, HealthCheck>()
  const registry: HealthRegistry = {
    add (name, check) {
      if (checks.has(name)) throw new errors.FSS_HEALTH_CHECK_DUPLICATE(name)
      checks.set(name, check)
    },
    list: () => [...checks].map(([name, check]) => ({ name, check }))
  }
  fastify.decorate('sessionSuiteHealth', registry)
  return registry
}
