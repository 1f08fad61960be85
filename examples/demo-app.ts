// The demo service: the suite in one register call, plus the page. Kept apart
// from demo.ts (process, signals, provider) so it reads as the example a
// service would copy.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import sessionSuite, { type OAuthOptions, type RedisConnectOptions } from '../index.ts'
import { renderPage, type Connection } from './demo-page.ts'

// Typing the session: a consumer declares its fields once, and
// request.session.get('demoUser') is typed everywhere. (A service names the
// package: `declare module 'fastify-session-suite'`.)
declare module '../index.ts' {
  interface SessionData {
    demoUser?: { sub: string, name?: string }
    /** who the connected API provider says the account is, kept by onLogin */
    demoApiAccount?: { sub: string, name?: string }
  }
}

/** The demo's second provider: connected after the login for API access, as a service connects an accounting provider. */
export interface ApiProvider {
  issuer: string
  /** its UserInfo: onLogin reads the connected account there */
  userinfoUrl: string
}

/** What the page calls a provider: the embedded ones by their role. */
const label = (name: string): string => name === 'login' ? 'Login provider' : name === 'api' ? 'API provider' : 'Identity provider'

export interface DemoAppOptions {
  /** e.g. http://127.0.0.1:3000: the callback URL is built on it */
  origin: string
  keyFile: string
  /** the login provider */
  oauth: Required<Pick<OAuthOptions, 'provider' | 'clientId' | 'clientSecret'>> & Pick<OAuthOptions, 'scope' | 'providerLogout'>
  /** with it, two providers: `login` (the one above) and `api`, connected from the page */
  apiProvider?: ApiProvider
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
    oauth: {
      ...(opts.apiProvider === undefined ? opts.oauth : twoProviders(opts.oauth, opts.apiProvider)),
      callbackUri: opts.callbackUrl ?? `${opts.origin}/callback`,
      redirectAfterLogout: '/'
    },
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
    const connections: Connection[] = []
    const login = await app.oauthFlow.loginProvider(request)
    for (const name of app.oauthFlow.providers) {
      const account = name === 'api' ? request.session.get('demoApiAccount') : undefined
      connections.push({
        name,
        label: label(name),
        login: name === login,
        token: await request.tokens.for(name).metadata(),
        ...(account !== undefined && { account })
      })
    }
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
    // This page's own URL: a login or connect started here comes back here.
    return renderPage({ user, verified: verified !== null, token, problem, provider: app.oauthInfo.provider, csrfToken, returnTo: request.url, connections, sessions })
  })
  return app
}

/**
 * The login provider as `login`, the API provider as `api`, and the hook that runs after each
 * successful callback: for the API provider it asks who the connected account is (as a service
 * asks an accounting provider which tenants the user granted) and keeps it in the session.
 */
function twoProviders (login: DemoAppOptions['oauth'], api: ApiProvider): Omit<OAuthOptions, 'callbackUri'> {
  return {
    providers: {
      login,
      api: { provider: { issuer: api.issuer }, clientId: 'fss-demo-api', clientSecret: 'fss-demo-api-secret', scope: ['openid', 'profile'], providerLogout: false }
    },
    defaultProvider: 'login',
    async onLogin (request, { provider }) {
      if (provider !== 'api') return
      request.session.set('demoApiAccount', await fetchUser(api.userinfoUrl, await request.tokens.for('api').accessToken()))
    }
  }
}

/** The provider's userinfo endpoint from its discovery document, if it has one. */
export async function discoverUserinfo (issuer: string): Promise<string | undefined> {
  const res = await fetch(new URL('.well-known/openid-configuration', issuer.endsWith('/') ? issuer : issuer + '/'), { signal: AbortSignal.timeout(5000) })
  if (!res.ok) return undefined
  const doc = await res.json() as { userinfo_endpoint?: unknown }
  return typeof doc.userinfo_endpoint === 'string' ? doc.userinfo_endpoint : undefined
}
