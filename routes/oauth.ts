// GET login → provider (PKCE S256, 256-bit state); GET callback → validated
// token in a regenerated session; POST logout → session and tokens gone.
// The OAuth plugin (plugins/oauth-tokens.ts) does the protocol: these routes
// reach it only through `fastify.oauthFlow` (paths, authorization URL, code
// exchange, login counters) and `request.tokens` (store, clear, revoke). With
// the suite's csrf plugin registered first, POST logout needs the session's
// CSRF token.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { EndSessionRequest } from '../lib/oidc/flow.ts'
import { validateOptions } from '../lib/options.ts'
import type {} from '../plugins/oauth-tokens.ts'
import { LocalRedirectPath } from '../lib/oauth/options.ts'
import { addFormParser } from '../plugins/csrf.ts'
import { ErrorResponse } from './schemas.ts'
import { sessionCookieConfig, TAGS } from './openapi.ts'

// Every 4xx and 5xx, whatever its source (503: a token store that is down).
const errorReplies = { '4xx': ErrorResponse, '5xx': ErrorResponse }

export const OAuthRoutesOptionsSchema = Type.Object({
  redirectAfterLogout: Type.Optional(LocalRedirectPath('A local path in visible ASCII: a logout posted by a plain HTML form (urlencoded, or Accept: text/html) is answered 303 to it; API clients still get JSON. Unset: always JSON.'))
}, { additionalProperties: false })

export type OAuthRoutesOptions = Static<typeof OAuthRoutesOptionsSchema>

/** A plain HTML form posts urlencoded and its navigation accepts text/html; fetch() and API clients do neither by default. */
function isPageRequest (request: FastifyRequest): boolean {
  const type = request.headers['content-type'] ?? ''
  return /^application\/x-www-form-urlencoded\b/i.test(type) || /\btext\/html\b/i.test(request.headers.accept ?? '')
}

const LogoutReply = Type.Object({
  loggedOut: Type.Literal(true),
  /** true when revokeOnLogout is set and the provider accepted both revocations */
  revoked: Type.Boolean(),
  /**
   * RP-initiated logout: where to send the user to end the session at the provider too. Without
   * the id_token hint (a response body is no place for a token): the provider may ask the user.
   */
  endSession: Type.Optional(Type.Object({ url: Type.String() }))
})

/**
 * The session-control contract: a session registry, when one is registered, hears of every login
 * and logout. Read through getDecorator so this file needs nothing of its implementation.
 */
interface SessionControl {
  registerLogin: (request: FastifyRequest, login: { sub: string, provider: string, sid?: string }) => Promise<unknown>
  endCurrent: (request: FastifyRequest, reason: 'logout') => Promise<unknown>
}
function sessionControl (fastify: FastifyInstance): SessionControl | undefined {
  return fastify.hasDecorator('sessions') ? fastify.getDecorator<SessionControl>('sessions') : undefined
}

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

// The page that posts the end-session form (RP-Initiated Logout 1.0 §2 allows POST): the
// id_token hint travels in a form body, never in a URL that history, logs or Referer keep.
const SUBMIT_SCRIPT = 'document.forms[0].submit()'
const SUBMIT_SCRIPT_HASH = createHash('sha256').update(SUBMIT_SCRIPT).digest('base64')
function endSessionPage (request: EndSessionRequest): string {
  const fields = Object.entries(request.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('')
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logging out</title></head><body>' +
    `<form method="post" action="${escapeHtml(request.action)}">${fields}<noscript><button type="submit">Continue logging out</button></noscript></form>` +
    `<script>${SUBMIT_SCRIPT}</script></body></html>`
}

// The callback URL carries the code and the state: the request log shows its
// path only. (The default serializer logs `url` with the query string.)
function requestWithoutQuery (req: FastifyRequest): Record<string, unknown> {
  return { method: req.method, url: req.url.split('?')[0], host: req.host, remoteAddress: req.ip }
}

const oauthRoutes: FastifyPluginAsyncTypebox<OAuthRoutesOptions> = async (fastify, routeOpts) => {
  const { redirectAfterLogout } = validateOptions(OAuthRoutesOptionsSchema, routeOpts, 'oauth')
  const flow = fastify.oauthFlow

  fastify.get(flow.paths.login, {
    schema: {
      summary: 'Start the OAuth login: redirect to the provider',
      tags: [TAGS.oauth],
      querystring: Type.Object({}),
      response: { 302: Type.Null(), ...errorReplies }
    }
  }, async (request, reply) => {
    // Sets the state and PKCE verifier cookies (Secure, HttpOnly, Path=/, Max-Age=stateMaxAge).
    const uri = await flow.authorizationUrl(request, reply)
    reply.header('cache-control', 'no-store')
    return reply.redirect(uri, 302)
  })

  fastify.get(flow.paths.callback, {
    logSerializers: { req: requestWithoutQuery },
    // No querystring schema: a schema failure would be answered before the
    // flow cookies are cleared; exchangeCode clears them, then parseCallbackQuery checks it.
    schema: {
      summary: 'OAuth callback: exchange the code, store the token, redirect',
      description: 'Reads code, state, error, error_description, error_uri, iss and session_state, each at most once ' +
        'and within its length (else 400 FSS_OAUTH_CALLBACK_INVALID); other parameters are ignored.',
      tags: [TAGS.oauth],
      response: { 302: Type.Null(), ...errorReplies }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    // The code and state must not leak to the next page's resources.
    reply.header('referrer-policy', 'no-referrer')
    try {
      // Validated before the session changes: a refused login leaves the old session as it was.
      const token = await flow.exchangeCode(request, reply)
      // Verified before anything is stored: a refused id_token logs nobody in.
      const identity = await flow.verifyIdentity(request, token)
      // New privilege level, new session (session fixation, OWASP ASVS 3.2.1).
      request.session.regenerate()
      await request.tokens.store(token)
      flow.rememberIdentity(request, identity)
      const sessions = sessionControl(fastify)
      if (sessions !== undefined && identity !== null) {
        await sessions.registerLogin(request, { sub: identity.sub, provider: 'default', ...(identity.sid === undefined ? {} : { sid: identity.sid }) })
      }
      flow.recordLogin()
      return reply.redirect(flow.paths.afterLogin, 302)
    } catch (err) {
      flow.recordLogin(err)
      throw err
    }
  })

  // With the csrf plugin registered, logging out needs the session's CSRF token (header
  // x-csrf-token or form field _csrf): a hostile page cannot log a user out. Checked in
  // preHandler, after the body is parsed, so a plain HTML form can carry it.
  const csrfCheck = fastify.hasPlugin('fastify-session-suite/csrf') ? fastify.csrfProtection : undefined
  // A child scope of its own: the demo's HTML logout form posts urlencoded, and the parser
  // for it must reach this route only. App-wide, it would let the app's JSON-only routes
  // accept cross-site form posts they answer 415 without it. An app's own parser is kept.
  await fastify.register(async (scope) => {
    addFormParser(scope)
    scope.post(flow.paths.logout, {
      // Set before any check runs, so a CSRF refusal is not cached either.
      onRequest: noStore,
      ...(csrfCheck !== undefined && { preHandler: csrfCheck }),
      config: sessionCookieConfig(fastify),
      schema: {
        summary: 'Log out: end the session and drop the tokens (optionally revoke them)',
        tags: [TAGS.oauth, TAGS.session],
        description: 'JSON. With redirectAfterLogout set, an HTML form post (urlencoded, or Accept: text/html) is ' +
          'answered 303 to that path instead. With the csrf option, the token is required ' +
          '(header x-csrf-token or form field _csrf), else 403 FSS_CSRF_INVALID. A token store that is down ' +
          'answers 503 FSS_STORE_UNAVAILABLE and the session is left as it was.',
        response: {
          200: LogoutReply,
          303: Type.Null({ description: 'HTML form post: logged out, go to redirectAfterLogout (or, with providerLogout get, to the provider\'s end-session endpoint)' }),
          403: ErrorResponse,
          ...errorReplies
        }
      }
    }, async (request, reply) => {
      // Read first: a token store that is down answers 503 here, before anything changes.
      const present = await request.tokens.metadata() !== null
      // Before the tokens go: its hint is the stored id_token.
      const endSession = present ? await flow.endSessionRequest(request, redirectAfterLogout ?? '/') : null
      // A failed revocation does not block the logout: the local session ends regardless.
      const revoked = flow.revokeOnLogout && present ? await request.tokens.revoke() : false
      const sessions = sessionControl(fastify)
      if (sessions !== undefined) await sessions.endCurrent(request, 'logout')
      await request.tokens.clear()
      request.session.delete()
      if (endSession !== null && isPageRequest(request)) {
        if (flow.providerLogout === 'get') return reply.redirect(endSession.redirectUrl, 303)
        reply.header('content-security-policy', `default-src 'none'; script-src 'sha256-${SUBMIT_SCRIPT_HASH}'; form-action ${new URL(endSession.action).origin}`)
        reply.header('referrer-policy', 'no-referrer')
        return reply.type('text/html; charset=utf-8').send(endSessionPage(endSession))
      }
      if (redirectAfterLogout !== undefined && isPageRequest(request)) return reply.redirect(redirectAfterLogout, 303)
      if (endSession === null) return { loggedOut: true as const, revoked }
      const { id_token_hint: _hint, ...fields } = endSession.fields
      const url = new URL(endSession.action)
      for (const [name, value] of Object.entries(fields)) url.searchParams.set(name, value)
      return { loggedOut: true as const, revoked, endSession: { url: url.href } }
    })
  })
}

export default fp(oauthRoutes, {
  fastify: '5.x',
  name: 'fastify-session-suite/oauth-routes',
  dependencies: ['fastify-session-suite/oauth-tokens'],
  encapsulate: true
})

function noStore (_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  reply.header('cache-control', 'no-store')
  done()
}
