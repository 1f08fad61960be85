// plugins/csrf.ts — CSRF tokens whose secret lives in the suite's encrypted
// session. A token stays valid exactly as long as the session does: across a
// restart (same key) and a key rotation (old key kept behind the new one), and
// no longer than a logout (the session, and with it the secret, is gone).
// fastify.csrfProtection and reply.generateCsrf are typed by @fastify/csrf-protection:
// the reference makes the published declarations load its types.
/// <reference types="@fastify/csrf-protection" preserve="true" />
import fp from 'fastify-plugin'
import csrfProtection from '@fastify/csrf-protection'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'

/** Request header that carries the token (fetch/XHR clients). */
export const CSRF_HEADER = 'x-csrf-token'
/** Form field that carries the token (HTML forms). */
export const CSRF_FIELD = '_csrf'
const FORM_TYPE = 'application/x-www-form-urlencoded'
const DEFAULT_SESSION_KEY = '_csrf'

export const CsrfOptionsSchema = Type.Object({
  sessionKey: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9_.-]+$',
    description: 'The session field holding the per-session CSRF secret.',
    default: DEFAULT_SESSION_KEY
  })),
  getToken: Type.Optional(Type.Unsafe<(request: FastifyRequest) => string | undefined>(Type.Function([Type.Unknown()], Type.Unknown(), {
    tsType: '(request) => string | undefined',
    description: 'Where a request carries its token. Default: the `x-csrf-token` header, then the form or JSON body field `_csrf`.'
  }))),
  // A parser added app-wide would let every JSON-only route accept cross-site
  // form posts it answers 415 without one.
  formBody: Type.Optional(Type.Boolean({
    description: 'Add an app-wide `application/x-www-form-urlencoded` parser when the app has none; then guard every state-changing route. POST /logout parses forms in its own scope either way.',
    default: false
  }))
}, { additionalProperties: false })

export type CsrfOptions = Static<typeof CsrfOptionsSchema>

// The library's own check refuses every method; a state-changing request is
// what CSRF is about, so the safe methods (RFC 9110 §9.2.1) always pass and an
// app can hang the check on every route with one `addHook`.
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Default token source: the `x-csrf-token` header, else the `_csrf` body field. Strings only. */
export function tokenFromRequest (request: FastifyRequest): string | undefined {
  const header = request.headers[CSRF_HEADER]
  if (typeof header === 'string' && header !== '') return header
  const body: unknown = request.body
  if (body !== null && typeof body === 'object') {
    const field = (body as Record<string, unknown>)[CSRF_FIELD]
    if (typeof field === 'string' && field !== '') return field
  }
  return undefined
}

/**
 * `a=1&b=2&b=3` → `{ a: '1', b: ['2', '3'] }`, the shape @fastify/formbody gives.
 * Object.fromEntries defines own properties, so a `__proto__` field is data, not a prototype.
 */
export function parseFormBody (body: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>()
  for (const [name, value] of new URLSearchParams(body)) {
    const seen = fields.get(name)
    if (seen === undefined) fields.set(name, value)
    else if (Array.isArray(seen)) seen.push(value)
    else fields.set(name, [seen, value])
  }
  return Object.fromEntries(fields)
}

type Refusal = 'missing-token' | 'no-session-secret' | 'invalid-token'

const csrf: FastifyPluginAsync<CsrfOptions> = async (fastify, opts) => {
  const options = validateOptions(CsrfOptionsSchema, opts, 'csrf')
  const getToken = options.getToken ?? tokenFromRequest

  if (fastify.hasPlugin('@fastify/csrf-protection')) {
    // Its decorators would clash (FST_ERR_DEC_ALREADY_PRESENT) and its mode may differ from ours.
    throw new errors.FSS_OPTIONS_INVALID('csrf', '@fastify/csrf-protection is already registered; let this plugin register it')
  }

  // Session mode: the secret is read and written through request.session.get/set/options, the
  // @fastify/secure-session API that the suite's session exposes. @fastify/csrf-protection 8
  // declares no plugin dependencies and never calls hasPlugin('@fastify/secure-session'), so the
  // session plugin keeping secure-session in a private child context is fine; our own
  // `dependencies: ['fastify-session-suite/session']` is the start-up check that a session exists.
  await fastify.register(csrfProtection, {
    sessionPlugin: '@fastify/secure-session',
    sessionKey: options.sessionKey ?? DEFAULT_SESSION_KEY,
    getToken: (request) => getToken(request),
    logLevel: 'debug' // we log one warn line with a reason below; the library's line would repeat it
  })

  // The library answers a refusal itself with reply.send(FST_CSRF_*) and checks every method. The
  // suite's contract is one FSS_* code for every refusal and free passage for safe methods, so the
  // decorator is replaced by a wrapper around the library's check (same name: the documented hook).
  const libraryCheck = fastify.csrfProtection
  fastify.csrfProtection = function csrfCheck (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (SAFE_METHODS.has(request.method)) return done()
    const refuse = (reason: Refusal): void => {
      request.log.warn({ reason }, 'CSRF check refused the request') // never the token
      done(new errors.FSS_CSRF_INVALID())
    }
    if (getToken(request) === undefined) return refuse('missing-token')
    // In session mode the library touches only reply.send, and only to refuse: a view of the reply
    // whose send turns that refusal into ours. Everything else stays the real reply.
    const view = Object.create(reply, {
      send: {
        value: (error: { code?: string }) => {
          refuse(error.code === 'FST_CSRF_MISSING_SECRET' ? 'no-session-secret' : 'invalid-token')
          return view
        }
      }
    }) as FastifyReply
    libraryCheck(request, view, () => done())
  }

  // Opt-in only: this plugin is fp-wrapped, so the parser would reach every route of the app.
  if (options.formBody === true) addFormParser(fastify)
}

/**
 * Parse urlencoded bodies in `scope` unless something there already does. Fastify core parses JSON
 * and text only, and @fastify/formbody is not a dependency of the suite: without a parser, an HTML
 * form's `_csrf` field could not be read. Call it in an encapsulated scope to keep it local.
 */
export function addFormParser (scope: FastifyInstance): void {
  if (scope.hasContentTypeParser(FORM_TYPE)) return
  scope.addContentTypeParser(FORM_TYPE, { parseAs: 'string' }, (_request, body, done) => {
    done(null, parseFormBody(body as string))
  })
}

export default fp(csrf, {
  fastify: '5.x',
  name: 'fastify-session-suite/csrf',
  dependencies: ['fastify-session-suite/session']
})
