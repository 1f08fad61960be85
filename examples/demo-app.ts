// The demo service: the suite in one register call, plus the page. Kept apart
// from demo.ts (process, signals, provider) so it reads as the example a
// service would copy.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import sessionSuite, { type OAuthOptions } from '../index.ts'
import { renderPage } from './demo-page.ts'

// Typing the session: a consumer declares its fields once, and
// request.session.get('demoUser') is typed everywhere.
declare module '@fastify/secure-session' {
  interface SessionData {
    demoUser?: { sub: string, name?: string }
  }
}

export interface DemoAppOptions {
  /** e.g. http://127.0.0.1:3000: the callback URL is built on it */
  origin: string
  keyFile: string
  oauth: Pick<OAuthOptions, 'provider' | 'clientId' | 'clientSecret' | 'scope'>
  callbackUrl?: string
  userinfoUrl?: string
  logger?: FastifyServerOptions['logger']
}

async function fetchUser (url: string, accessToken: string): Promise<{ sub: string, name?: string }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(5000) })
  const body = res.ok ? await res.json() as { sub?: unknown, name?: unknown } : {}
  if (typeof body.sub !== 'string') throw Object.assign(new Error('userinfo failed'), { code: `USERINFO_${res.status}` })
  return { sub: body.sub, ...(typeof body.name === 'string' && { name: body.name }) }
}

export async function buildDemoApp (opts: DemoAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? { level: 'info' } })
  // The log-out form posts urlencoded; Fastify core parses JSON and text only.
  // Added first: the suite's routes see the parsers that exist when it registers.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  await app.register(sessionSuite, {
    appName: 'fastify-session-suite-demo',
    secret: { keyFile: opts.keyFile },
    oauth: { ...opts.oauth, callbackUri: opts.callbackUrl ?? `${opts.origin}/callback` },
    debug: true
  })

  app.get('/', async (request, reply) => {
    const token = await request.tokens.metadata()
    let user = token === null ? null : request.session.get('demoUser') ?? null
    let problem: string | null = null
    if (token !== null && user === null && opts.userinfoUrl !== undefined) {
      try {
        // accessToken() refreshes the token first when it is about to expire.
        user = await fetchUser(opts.userinfoUrl, await request.tokens.accessToken())
        request.session.set('demoUser', user)
      } catch (err) {
        problem = (err as { code?: string }).code ?? 'error'
        request.log.warn({ code: problem }, 'demo: could not load the user')
      }
    }
    const csrfToken = app.hasReplyDecorator('generateCsrf') ? await reply.generateCsrf() : null
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
    return renderPage({ user, token, problem, provider: app.oauthInfo.provider ?? 'the identity provider', csrfToken })
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
