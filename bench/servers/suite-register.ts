// Registers the suite the way a user would: the root plugin, plus the OAuth
// token plugin when the root plugin does not take `oauth` options (yet).
// Answers a reason instead of throwing when a part is missing, so the
// harness can print "n/a" for that row and go on.
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { fileURLToPath } from 'node:url'

export interface SuiteSetup {
  oauth: boolean
  /** OIDC issuer (real oauth2-mock-server) for rows that refresh */
  issuer?: string
  rollingInterval?: number
  /** the login/callback/logout routes too (the soak logs in through the provider) */
  oauthRoutes?: boolean
  /** callback URL as the provider redirects to it */
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

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

export async function registerSuite (app: FastifyInstance, setup: SuiteSetup): Promise<true | string> {
  const rootFile = here('../../index.ts')
  const oauthFile = here('../../plugins/oauth-tokens.ts')
  const routesFile = here('../../routes/oauth.ts')
  if (!existsSync(rootFile)) return 'index.ts not available'
  if (setup.oauth && !existsSync(oauthFile)) return 'plugins/oauth-tokens.ts not available'
  if (setup.oauthRoutes === true && !existsSync(routesFile)) return 'routes/oauth.ts not available'
  const root = await import(rootFile) as { default: FastifyPluginAsync<Record<string, unknown>>, SessionSuiteOptionsSchema?: { properties?: Record<string, unknown> } }
  const rootTakesOAuth = root.SessionSuiteOptionsSchema?.properties?.oauth !== undefined
  const oauth = {
    // no call reaches this provider in rows 4–6: the stored token is valid
    provider: setup.issuer !== undefined ? { issuer: setup.issuer } : { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
    clientId: 'bench-client',
    clientSecret: 'bench-secret',
    callbackUri: setup.callbackUri ?? 'http://127.0.0.1/callback',
    hostPrefixedCookies: false
  }
  await app.register(root.default, merge({
    appName: 'fastify-session-suite-bench',
    // an env-style key: no key file is read or written by a bench server
    secret: { envVars: ['BENCH_SESSION_KEY'], env: { BENCH_SESSION_KEY: randomBytes(32).toString('base64url') } },
    session: { secure: false, cookieName: 'session', ...(setup.rollingInterval !== undefined && { rollingInterval: setup.rollingInterval }) },
    health: false,
    ...(setup.oauth && rootTakesOAuth && { oauth })
  }, setup.options ?? {}))
  if (setup.oauth && !rootTakesOAuth) {
    const plugin = await import(oauthFile) as { default: FastifyPluginAsync<Record<string, unknown>> }
    await app.register(plugin.default, oauth)
    if (setup.oauthRoutes === true) {
      const routes = await import(routesFile) as { default: FastifyPluginAsync }
      await app.register(routes.default)
    }
  }
  await app.after()
  if (!app.hasRequestDecorator('session')) return 'the session plugin is not registered by index.ts'
  if (setup.oauth && !app.hasRequestDecorator('tokens')) return 'request.tokens not available'
  return true
}
