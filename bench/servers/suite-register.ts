// Registers the suite the way a user would: the root plugin from the public
// entry, with OAuth when the row needs tokens. Answers a reason instead of
// throwing when a part is missing, so the harness can print "n/a" for that row
// and go on.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import sessionSuite from '../../index.ts'

export interface SuiteSetup {
  oauth: boolean
  /** OIDC issuer (real oauth2-mock-server) for rows that refresh */
  issuer?: string
  rollingInterval?: number
  /** callback URL as the provider redirects to it (the root plugin adds login/callback/logout with `oauth`) */
  callbackUri?: string
  /** more root options, merged over the bench's own (objects merged key by key) */
  options?: Record<string, unknown>
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function merge (base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base }
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k]
    out[k] = isObject(b) && isObject(v) ? merge(b, v) : v
  }
  return out
}

export async function registerSuite (app: FastifyInstance, setup: SuiteSetup): Promise<true | string> {
  const oauth = {
    // no call reaches this provider in rows 4–6: the stored token is valid
    provider: setup.issuer !== undefined ? { issuer: setup.issuer } : { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
    clientId: 'bench-client',
    clientSecret: 'bench-secret',
    callbackUri: setup.callbackUri ?? 'http://127.0.0.1/callback',
    hostPrefixedCookies: false
  }
  await app.register(sessionSuite, merge({
    appName: 'fastify-session-suite-bench',
    // an env-style key: no key file is read or written by a bench server
    secret: { envVars: ['BENCH_SESSION_KEY'], env: { BENCH_SESSION_KEY: randomBytes(32).toString('base64url') } },
    session: { secure: false, cookieName: 'session', ...(setup.rollingInterval !== undefined && { rollingInterval: setup.rollingInterval }) },
    health: false,
    ...(setup.oauth && { oauth })
  }, setup.options ?? {}))
  await app.after()
  if (!app.hasRequestDecorator('session')) return 'the session plugin is not registered by index.ts'
  if (setup.oauth && !app.hasRequestDecorator('tokens')) return 'request.tokens not available'
  return true
}
