// GET login → provider (PKCE S256, 256-bit state); GET callback → validated
// token in a regenerated session; POST logout → session and tokens gone.
// Built on @fastify/oauth2 as registered by plugins/oauth-tokens.ts, whose
// options (paths, redirect, revocation) these routes read. With the suite's
// csrf plugin registered first, POST logout needs the session's CSRF token.
import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Token } from '@fastify/oauth2'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'
import { checkState } from '../lib/oauth/state.ts'
import { parseCallbackQuery } from '../lib/oauth/callback-query.ts'
import { classifyTokenEndpointError, codeOf, isEmptySuccess } from '../lib/oauth/provider-errors.ts'
import { rawAnswerOf } from '../lib/oauth/raw-answer.ts'
import { getOAuthRuntime } from '../plugins/oauth-tokens.ts'
import { addFormParser } from '../plugins/csrf.ts'

// Exactly what Fastify's error handler sends; declared so nothing else is. `code`
// is optional: an error from elsewhere (a custom store, another plugin's hook)
// may have none, and a schema that required it could not serialize that answer.
const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})
// Every 4xx and 5xx, whatever its source (503: a token store that is down).
const errorReplies = { '4xx': ErrorReply, '5xx': ErrorReply }

export interface OAuthRoutesOptions {
  /**
   * Where a browser lands after logging out with a plain HTML form: with it, a
   * form post (urlencoded) or a request accepting text/html gets a 303 to this
   * local path; API clients still get JSON. Unset (default): always JSON.
   */
  redirectAfterLogout?: string
}

export const OAuthRoutesOptionsSchema = Type.Object({
  // A local path only, as redirectAfterLogin: `//evil.example` would be an open redirect.
  redirectAfterLogout: Type.Optional(Type.String({ pattern: '^/(?![/\\\\])[^\\s]*$' }))
}, { additionalProperties: false })

/** A plain HTML form posts urlencoded and its navigation accepts text/html; fetch() and API clients do neither by default. */
function isPageRequest (request: FastifyRequest): boolean {
  const type = request.headers['content-type'] ?? ''
  return /^application\/x-www-form-urlencoded\b/i.test(type) || /\btext\/html\b/i.test(request.headers.accept ?? '')
}

const LogoutReply = Type.Object({
  loggedOut: Type.Literal(true),
  /** true when revokeOnLogout is set and the provider accepted both revocations */
  revoked: Type.Boolean()
})

// The callback URL carries the code and the state: the request log shows its
// path only. (The default serializer logs `url` with the query string.)
function requestWithoutQuery (req: FastifyRequest): Record<string, unknown> {
  return { method: req.method, url: req.url.split('?')[0], host: req.host, remoteAddress: req.ip }
}

// An RFC 6749 §4.1.2.1 error code is short ASCII; anything else is not echoed.
function providerErrorCode (value: string): string {
  return /^[a-z0-9_.-]{1,64}$/i.test(value) ? value : 'unrecognised error'
}

const oauthRoutes: FastifyPluginAsyncTypebox<OAuthRoutesOptions> = async (fastify, routeOpts) => {
  const { redirectAfterLogout } = validateOptions(OAuthRoutesOptionsSchema, routeOpts, 'oauth')
  const rt = getOAuthRuntime(fastify)
  const { options: opts, oauth2, cookies, info } = rt
  const cookieOpts = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const }

  fastify.get(opts.loginPath, {
    schema: {
      summary: 'Start the OAuth login: redirect to the provider',
      querystring: Type.Object({}),
      response: { 302: Type.Null(), ...errorReplies }
    }
  }, async (request, reply) => {
    // Sets the state and PKCE verifier cookies (Secure, HttpOnly, Path=/, Max-Age=stateMaxAge).
    const uri = await oauth2.generateAuthorizationUri(request, reply)
    reply.header('cache-control', 'no-store')
    return reply.redirect(uri, 302)
  })

  fastify.get(opts.callbackPath, {
    logSerializers: { req: requestWithoutQuery },
    // No querystring schema: a schema failure would be answered before the
    // cookies below are cleared. parseCallbackQuery checks it inside.
    schema: {
      summary: 'OAuth callback: exchange the code, store the token, redirect',
      description: 'Reads code, state, error, error_description, error_uri, iss and session_state, each at most once ' +
        'and within its length (else 400 FSS_OAUTH_CALLBACK_INVALID); other parameters are ignored.',
      response: { 302: Type.Null(), ...errorReplies }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    // The code and state must not leak to the next page's resources.
    reply.header('referrer-policy', 'no-referrer')
    // Single-use cookies: cleared on every outcome (the values were read from the request).
    reply.clearCookie(cookies.state, cookieOpts)
    reply.clearCookie(cookies.verifier, cookieOpts)
    try {
      // Fastify's querystring parser gives an object of strings, or arrays of strings for repeated names.
      const query = parseCallbackQuery(request.query as Record<string, unknown>)
      if (query.error !== undefined) throw new errors.FSS_OAUTH_DENIED(providerErrorCode(query.error))
      rt.usedStates.consume(checkState(request, cookies.state))
      if (query.code === undefined) throw new errors.FSS_OAUTH_CODE_MISSING()
      const verifier = request.cookies[cookies.verifier]
      if (verifier === undefined || verifier === '') throw new errors.FSS_OAUTH_VERIFIER_MISSING()
      let raw: unknown
      try {
        // Without `reply`: the cookies are already cleared above. It runs our
        // state check again (pure) and POSTs code + code_verifier. The provider's
        // raw JSON is what gets validated, not simple-oauth2's rewritten copy.
        raw = await rawAnswerOf(() => oauth2.getAccessTokenFromAuthorizationCodeFlow(request))
      } catch (err) {
        throw classifyTokenEndpointError(err, 'authorization_code')
      }
      const token = rt.normalize(raw)
      // New privilege level, new session (session fixation, OWASP ASVS 3.2.1).
      request.session.regenerate()
      await rt.store.set(request, token)
      info.counters.logins++
      return reply.redirect(opts.redirectAfterLogin, 302)
    } catch (err) {
      const code = codeOf(err)
      info.counters.loginFailures[code] = (info.counters.loginFailures[code] ?? 0) + 1
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
    scope.post(opts.logoutPath, {
      // Set before any check runs, so a CSRF refusal is not cached either.
      onRequest: noStore,
      ...(csrfCheck !== undefined && { preHandler: csrfCheck }),
      schema: {
        summary: 'Log out: end the session and drop the tokens (optionally revoke them)',
        description: 'JSON. With redirectAfterLogout set, an HTML form post (urlencoded, or Accept: text/html) is ' +
          'answered 303 to that path instead. With the csrf option, the token is required ' +
          '(header x-csrf-token or form field _csrf), else 403 FSS_CSRF_INVALID. A token store that is down ' +
          'answers 503 FSS_STORE_UNAVAILABLE and the session is left as it was.',
        response: {
          200: LogoutReply,
          303: Type.Null({ description: 'HTML form post: logged out, go to redirectAfterLogout' }),
          ...errorReplies
        }
      }
    }, async (request, reply) => {
      const token = await rt.store.get(request)
      const revoked = opts.revokeOnLogout && token !== null ? await revoke(request, token as unknown as Token) : false
      await rt.store.delete(request)
      request.session.delete()
      if (redirectAfterLogout !== undefined && isPageRequest(request)) return reply.redirect(redirectAfterLogout, 303)
      return { loggedOut: true as const, revoked }
    })
  })

  // RFC 7009: the refresh token first (servers should then drop its access
  // tokens too), then the access token. A failure does not block the logout:
  // the local session ends regardless, and the log says revocation failed.
  async function revokeOne (token: Token, type: 'refresh_token' | 'access_token'): Promise<void> {
    await oauth2.revokeToken(token, type, undefined).catch((err: unknown) => {
      if (!isEmptySuccess(err)) throw err
    })
  }

  async function revoke (request: FastifyRequest, token: Token): Promise<boolean> {
    try {
      if (token.refresh_token !== undefined) await revokeOne(token, 'refresh_token')
      await revokeOne(token, 'access_token')
      return true
    } catch (err) {
      const coded = classifyTokenEndpointError(err, 'refresh_token')
      request.log.warn({ code: coded.code }, 'token revocation failed; the session ended anyway')
      return false
    }
  }
}

export default oauthRoutes

function noStore (_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  reply.header('cache-control', 'no-store')
  done()
}
