// The demo service: the suite in one register call, plus the page. Kept apart
// from demo.ts (process, signals, provider) so it reads as the example a
// service would copy.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import sessionSuite, { type OAuthOptions, type RedisConnectOptions } from '../index.ts'
import { renderPage } from './demo-page.ts'

// Typing the session: a consumer declares its fields once, and
// request.session.get('demoUser') is typed everywhere. (A service names the
// package: `declare module 'fastify-session-suite'`.)
declare module '../index.ts' {
  interface SessionData {
    demoUser?: { sub: string, name?: string }
  }
}

export interface DemoAppOptions {
  /** e.g. http://127.0.0.1:3000: the callback URL is built on it */
  origin: string
  keyFile: string
  oauth: Pick<OAuthOptions, 'provider' | 'clientId' | 'clientSecret' | 'scope' | 'providerLogout'>
  callbackUrl?: string
  userinfoUrl?: string
  logger: FastifyServerOptions['logger']
  /** with it, OAuth tokens live in this Redis (one server, Cluster or Sentinel) and the cookie holds a reference only */
  redis?: RedisConnectOptions
}

async function fetchUser (url: string, accessToken: string): Promise<{ sub: string, name?: string }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(5000) })
  const body = res.ok ? await res.json() as { sub?: unknown, name?: unknown } : {}
  if (typeof body.sub !== 'string') throw Object.assign(new Error('userinfo failed'), { code: `USERINFO_${res.status}` })
  return { sub: body.sub, ...(typeof body.name === 'string' && { name: body.name }) }
}

export async function buildDemoApp (opts: DemoAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger })
  // Before the suite: @fastify/swagger collects routes as they are added. The suite's routes
  // bring their tags, summaries, response schemas and the session cookie's security scheme.
  await app.register(swagger, {
    openapi: { info: { title: 'fastify-session-suite demo', version: '0.1.0', description: 'The suite\'s routes, as a service that registers @fastify/swagger sees them.' } }
  })
  await app.register(sessionSuite, {
    appName: 'fastify-session-suite-demo',
    secret: { keyFile: opts.keyFile },
    // The log-out form posts here without script: the route answers it with a 303 back to the page.
    oauth: { ...opts.oauth, callbackUri: opts.callbackUrl ?? `${opts.origin}/callback`, redirectAfterLogout: '/' },
    // Log out needs the session's CSRF token; POST /logout parses the form's urlencoded body in its own scope.
    csrf: true,
    ...(opts.redis !== undefined && { redis: opts.redis }),
    // Session control: shared by every instance in Redis when there is one, else this process only.
    sessions: { store: opts.redis !== undefined ? 'redis' : 'memory' },
    // The demo lists its debug routes in /docs too; a service's document leaves them out by default.
    debug: { openapi: true }
  })
  // The document for a person to read: GET /docs (and /docs/json for the raw OpenAPI document).
  await app.register(swaggerUi, { routePrefix: '/docs' })

  app.get('/', async (request, reply) => {
    const token = await request.tokens.metadata()
    // OpenID Connect: who logged in, verified from the id_token at the callback.
    const identity = token === null ? null : request.identity
    const verified = identity === null ? null : { sub: identity.sub, ...(typeof identity.claims.name === 'string' && { name: identity.claims.name }) }
    let user = token === null ? null : verified ?? request.session.get('demoUser') ?? null
    let problem: string | null = null
    if (token !== null && user === null && opts.userinfoUrl !== undefined) {
      try {
        // accessToken() refreshes the token first when it is about to expire.
        user = await fetchUser(opts.userinfoUrl, await request.tokens.accessToken())
        request.session.set('demoUser', user)
        // A plain OAuth 2 login has no verified identity for the callback to register: once
        // the demo knows who logged in, the session gets its record, so it shows in "Your sessions".
        if (app.sessions.currentId(request) === undefined) {
          await app.sessions.registerLogin(request, { sub: user.sub, provider: 'default' })
        }
      } catch (err) {
        problem = (err as { code?: string }).code ?? 'error'
        request.log.warn({ code: problem }, 'demo: could not load the user')
      }
    }
    // Only the logged-in page has a form; a visitor gets no session from merely looking.
    const csrfToken = token === null ? null : reply.generateCsrf()
    const current = app.sessions.currentId(request)
    const sessions = user === null || current === undefined || csrfToken === null
      ? null
      : { csrfToken, list: (await app.sessions.list(user.sub)).map((s) => ({ id: s.id, device: s.device, lastSeenAt: s.lastSeenAt, current: s.id === current })) }
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
    return renderPage({ user, verified: verified !== null, token, problem, provider: app.oauthInfo.provider, csrfToken, sessions })
  })
  return app
}

/** The provider's userinfo endpoint from its discovery document, if it has one. */
export async function discoverUserinfo (issuer: string): Promise<string | undefined> {
  const res = await fetch(new URL('.well-known/openid-configuration', issuer.endsWith('/') ? issuer : issuer + '/'), { signal: AbortSignal.timeout(5000) })
  if (!res.ok) return undefined
  const doc = await res.json() as { userinfo_endpoint?: unknown }
  return typeof doc.userinfo_endpoint === 'string' ? doc.userinfo_endpoint : undefined
}
