// GET login[/:provider] → provider (PKCE S256, 256-bit state, a flow cookie
// of its own, returnTo kept when it is a local path); GET callback[/<name>] →
// validated token in a regenerated session, or, for a logged-in user and
// another provider, that provider's token beside the login; POST logout →
// session and every provider's tokens gone; POST disconnect/:provider → that
// provider's tokens gone. The OAuth plugin (plugins/oauth-tokens.ts) does the
// protocol: these routes reach it only through `fastify.oauthFlow` and
// `request.tokens`. With the suite's csrf plugin registered first, POST logout
// and disconnect need the session's CSRF token.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { EndSessionRequest } from '../lib/oidc/flow.ts'
import { validateOptions } from '../lib/options.ts'
import type {} from '../plugins/oauth-tokens.ts'
import { LocalRedirectPath } from '../lib/oauth/options.ts'
import { errors } from '../lib/errors.ts'
import { requestForLog } from '../lib/display-url.ts'
import { addFormParser } from '../plugins/csrf.ts'
import { ErrorResponse } from './schemas.ts'
import { sessionCookieConfig, TAGS } from './openapi.ts'

// Every 4xx and 5xx, whatever its source (503: a token store that is down).
const errorReplies = { '4xx': ErrorResponse, '5xx': ErrorResponse }

export const OAuthRoutesOptionsSchema = Type.Object({
  redirectAfterLogout: Type.Optional(LocalRedirectPath('A local path in visible ASCII: a logout posted by a plain HTML form (urlencoded, or Accept: text/html) is answered 303 to it; API clients still get JSON. Unset: always JSON.')),
  disconnectPath: Type.Optional(Type.String({ pattern: '^/[^\\s?#:]*$', description: 'Prefix of the per-provider disconnect route (POST `<disconnectPath>/:provider`).', default: '/disconnect' }))
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

const LoginQuery = Type.Object({
  returnTo: Type.Optional(Type.Unknown({ description: 'A local path to land on after the login (at most 2048 characters); anything else lands on the default page.' }))
})
const ProviderParams = Type.Object({ provider: Type.String({ description: 'a provider name of `oauth.providers`' }) })

const DisconnectReply = Type.Object({
  disconnected: Type.Boolean({ description: 'false when this provider had no tokens' }),
  /** true when revokeOnLogout is set and the provider accepted both revocations */
  revoked: Type.Boolean()
})

const oauthRoutes: FastifyPluginAsyncTypebox<OAuthRoutesOptions> = async (fastify, routeOpts) => {
  // Every route here logs its path only: a query string may carry a code, a state, a returnTo or a
  // CSRF token a client put there (the token is then refused, but the request line is still logged).
  fastify.addHook('onRoute', (route) => { route.logSerializers = { ...route.logSerializers, req: requestForLog } })
  const { redirectAfterLogout, disconnectPath = '/disconnect' } = validateOptions(OAuthRoutesOptionsSchema, routeOpts, 'oauth')
  const flow = fastify.oauthFlow
  const known = (name: string): string => {
    if (flow.provider(name) === undefined) throw new errors.FSS_OAUTH_PROVIDER_UNKNOWN()
    return name
  }

  const login = async (request: FastifyRequest, reply: FastifyReply, provider: string, returnTo: unknown): Promise<FastifyReply> => {
    // Sets the flow's cookie (Secure, HttpOnly, Path=/, Max-Age=stateMaxAge).
    const uri = await flow.authorizationUrl(request, reply, { provider, returnTo })
    reply.header('cache-control', 'no-store')
    return reply.redirect(uri, 302)
  }
  const loginSchema = {
    tags: [TAGS.oauth],
    querystring: LoginQuery,
    response: { 302: Type.Null(), ...errorReplies }
  }
  // The request log shows paths only: a returnTo, even a hostile one, is never logged.
  fastify.get(flow.paths.login, {
    logSerializers: { req: requestForLog },
    schema: { summary: 'Start the OAuth login with the default provider: redirect to it', ...loginSchema }
  }, async (request, reply) => await login(request, reply, flow.defaultProvider, request.query.returnTo))
  fastify.get(`${flow.paths.login.replace(/\/$/, '')}/:provider`, {
    logSerializers: { req: requestForLog },
    schema: {
      summary: 'Start the OAuth login (or, logged in, connect) with a provider by name',
      description: 'An unknown provider is 404 FSS_OAUTH_PROVIDER_UNKNOWN.',
      params: ProviderParams,
      ...loginSchema
    }
  }, async (request, reply) => await login(request, reply, known(request.params.provider), request.query.returnTo))

  const callback = async (request: FastifyRequest, reply: FastifyReply, provider: string): Promise<FastifyReply> => {
    reply.header('cache-control', 'no-store')
    // The code and state must not leak to the next page's resources.
    reply.header('referrer-policy', 'no-referrer')
    try {
      // Validated before the session changes: a refused login leaves the old session as it was.
      const exchanged = await flow.exchangeCode(request, reply, provider)
      // Verified before anything is stored: a refused id_token logs nobody in.
      const identity = await flow.verifyIdentity(request, exchanged)
      const { connect } = await flow.completeLogin(request, exchanged, identity)
      const sessions = sessionControl(fastify)
      // The registry records logins: a connect keeps the login (and its registry entry) as it was.
      if (sessions !== undefined && identity !== null && !connect) {
        // The registry groups a user's sessions by subject, and a subject is unique only at its own
        // provider: another login provider's subject is qualified with its name, so a user of one
        // provider never lists or ends the sessions of another provider's user with the same sub.
        await sessions.registerLogin(request, { sub: flow.registrySubject(provider, identity.sub), provider, ...(identity.sid === undefined ? {} : { sid: identity.sid }) })
      }
      flow.recordLogin(undefined, provider)
      return reply.redirect(exchanged.returnTo ?? flow.paths.afterLogin, 302)
    } catch (err) {
      flow.recordLogin(err, provider)
      throw err
    }
  }
  const callbackSchema = {
    tags: [TAGS.oauth],
    description: 'Reads code, state, error, error_description, error_uri, iss and session_state, each at most once ' +
      'and within its length (else 400 FSS_OAUTH_CALLBACK_INVALID); other parameters are ignored. A state of ' +
      'another provider\'s flow is 400 FSS_OAUTH_PROVIDER_MISMATCH; onLogin failing is 500 FSS_OAUTH_LOGIN_HOOK_FAILED.',
    response: { 302: Type.Null(), ...errorReplies }
  }
  // One callback per provider (its own redirect URI): the flow's provider must be this one.
  for (const name of flow.providers) {
    fastify.get((flow.provider(name) as { callbackPath: string }).callbackPath, {
      // The callback URL carries the code and the state: the request log shows its path only.
      logSerializers: { req: requestForLog },
      // No querystring schema: a schema failure would be answered before the
      // flow cookie is cleared; exchangeCode clears it, then parseCallbackQuery checks it.
      schema: { summary: `OAuth callback of provider ${name}: exchange the code, store the token, redirect`, ...callbackSchema }
    }, async (request, reply) => await callback(request, reply, name))
  }
  // Any other name under the callback path: a provider that is not configured.
  fastify.get(`${flow.paths.callback.replace(/\/$/, '')}/:provider`, {
    logSerializers: { req: requestForLog },
    schema: { summary: 'OAuth callback of a provider that is not configured', tags: [TAGS.oauth], params: ProviderParams, response: errorReplies }
  }, async () => { throw new errors.FSS_OAUTH_PROVIDER_UNKNOWN() })

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
      const present = new Map<string, boolean>()
      for (const name of flow.providers) present.set(name, await request.tokens.for(name).metadata() !== null)
      const loggedIn = await flow.loginProvider(request)
      // Before the tokens go: its hint is the stored id_token of the provider the user logged in with.
      const endSession = loggedIn !== null && present.get(loggedIn) === true ? await flow.endSessionRequest(request, redirectAfterLogout ?? '/') : null
      // A failed revocation does not block the logout: the local session ends regardless.
      // `revoked` is the default provider's answer; every provider's tokens are cleared.
      let revoked = false
      for (const name of flow.providers) {
        if (present.get(name) !== true || (flow.provider(name) as { revokeOnLogout: boolean }).revokeOnLogout !== true) continue
        const accepted = await request.tokens.for(name).revoke()
        if (name === flow.defaultProvider) revoked = accepted
      }
      const sessions = sessionControl(fastify)
      if (sessions !== undefined) await sessions.endCurrent(request, 'logout')
      for (const name of flow.providers) await request.tokens.for(name).clear()
      request.session.delete()
      if (endSession !== null && isPageRequest(request)) {
        if (endSession.via === 'get') return reply.redirect(endSession.redirectUrl, 303)
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

    scope.post(`${disconnectPath.replace(/\/$/, '')}/:provider`, {
      onRequest: noStore,
      ...(csrfCheck !== undefined && { preHandler: csrfCheck }),
      config: sessionCookieConfig(fastify),
      schema: {
        summary: 'Disconnect one provider: drop its tokens (optionally revoke them); the login stays',
        tags: [TAGS.oauth],
        description: 'JSON; with redirectAfterLogout set, an HTML form post is answered 303 to it. The provider the user logged in with is 409 FSS_OAUTH_DISCONNECT_LOGIN (log out instead); an ' +
          'unknown one 404 FSS_OAUTH_PROVIDER_UNKNOWN. With the csrf option, the token is required, else 403 FSS_CSRF_INVALID.',
        params: ProviderParams,
        response: {
          200: DisconnectReply,
          303: Type.Null({ description: 'HTML form post with redirectAfterLogout set: disconnected, go to redirectAfterLogout' }),
          403: ErrorResponse,
          ...errorReplies
        }
      }
    }, async (request, reply) => {
      const name = known((request.params as Static<typeof ProviderParams>).provider)
      if (await flow.loginProvider(request) === name) throw new errors.FSS_OAUTH_DISCONNECT_LOGIN()
      const tokens = request.tokens.for(name)
      const present = await tokens.metadata() !== null
      // A failed revocation does not block the disconnect: the tokens go regardless.
      const revoked = present && (flow.provider(name) as { revokeOnLogout: boolean }).revokeOnLogout ? await tokens.revoke() : false
      await tokens.clear()
      if (redirectAfterLogout !== undefined && isPageRequest(request)) return reply.redirect(redirectAfterLogout, 303)
      return { disconnected: present, revoked }
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
