// plugins/csrf.ts — CSRF tokens whose secret lives in the suite's encrypted
// session. A token stays valid exactly as long as the session does: across a
// restart (same key) and a key rotation (old key kept behind the new one), and
// no longer than a logout (the session, and with it the secret, is gone).
//
// Tokens are @fastify/csrf's (the library @fastify/csrf-protection is built
// on, with its defaults, so tokens and secrets of earlier releases stay
// valid). The secret is not random per call: a session's first secret is
// derived from the cookie the request carried, so two requests sent at once
// with the same cookie, each calling generateCsrf() for the first time, store
// the same secret, and whichever Set-Cookie the browser keeps accepts the
// tokens both pages show. (A stateless session keeps only the last response's
// cookie; the secret is the one field that must agree.)
import { createHmac } from 'node:crypto'
import fp from 'fastify-plugin'
import Tokens from '@fastify/csrf'
import type { CookieSerializeOptions } from '@fastify/cookie'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'
import { RESERVED } from '../lib/session/payload.ts'
import { FORBIDDEN_KEYS } from '../lib/session/session-object.ts'
import { SUITE_FIELD } from '../lib/session/suite-fields.ts'
import { receivedSessionDigest } from './session.ts'

// Methods, as @fastify/csrf-protection declares them, so both declarations merge where both are loaded.
declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler (or onRequest) hook: state-changing requests need the session's CSRF token, else FSS_CSRF_INVALID. */
    csrfProtection(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  }
  interface FastifyReply {
    /** A token for this session's secret (stored in the session on first use); options are passed to session.options(). */
    generateCsrf(options?: CookieSerializeOptions): string
  }
}

/** The session as this plugin uses it: one field named by `sessionKey`. */
interface SecretField {
  get: (key: string) => unknown
  set: (key: string, value: unknown) => void
  options: (opts: CookieSerializeOptions) => void
}

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

// RFC 9110 §9.2.1: GET, HEAD and OPTIONS change nothing.
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

/** @fastify/csrf with @fastify/csrf-protection's defaults: 8-character salts, 18-byte secrets, SHA-256. */
const tokens = Tokens()

/**
 * The secret a session gets on its first generateCsrf(). From the cookie the
 * request carried when there is one (see receivedSessionDigest), so that
 * concurrent first calls agree; random for a new or regenerated session, which
 * concurrent requests cannot share anyway. Never from the cookie of a session
 * regenerated here: that cookie may have been planted before a login.
 */
function firstSecret (request: FastifyRequest): string {
  const digest = receivedSessionDigest(request)
  if (digest === null) return tokens.secretSync()
  return createHmac('sha256', digest).update('fastify-session-suite/csrf-secret/v1').digest('base64url')
}

const csrf: FastifyPluginAsync<CsrfOptions> = async (fastify, opts) => {
  const options = validateOptions(CsrfOptionsSchema, opts, 'csrf')
  const getToken = options.getToken ?? tokenFromRequest
  const sessionKey = options.sessionKey ?? DEFAULT_SESSION_KEY
  // A field the session refuses to set (every generateCsrf() would then be a 500), or the one the
  // suite keeps its own fields under (the secret and the stored tokens would overwrite each other).
  if (RESERVED.has(sessionKey) || FORBIDDEN_KEYS.has(sessionKey) || sessionKey === SUITE_FIELD) {
    throw new errors.FSS_OPTIONS_INVALID('csrf.sessionKey', `"${sessionKey}" is a session field the suite reserves; pick another name`)
  }

  if (fastify.hasPlugin('@fastify/csrf-protection')) {
    // Its decorators would clash (FST_ERR_DEC_ALREADY_PRESENT) and its secrets are random per first call.
    throw new errors.FSS_OPTIONS_INVALID('csrf', '@fastify/csrf-protection is already registered; let this plugin register it')
  }

  const sessionOf = (request: FastifyRequest): SecretField => request.session as unknown as SecretField
  const secretOf = (request: FastifyRequest): string | undefined => {
    const secret = sessionOf(request).get(sessionKey)
    return typeof secret === 'string' && secret !== '' ? secret : undefined
  }

  fastify.decorateReply('generateCsrf', function generateCsrf (this: FastifyReply, cookieOptions?: CookieSerializeOptions) {
    let secret = secretOf(this.request)
    if (secret === undefined) {
      secret = firstSecret(this.request)
      sessionOf(this.request).set(sessionKey, secret)
    }
    if (cookieOptions !== undefined) sessionOf(this.request).options(cookieOptions)
    return tokens.create(secret)
  })

  // A state-changing request is what CSRF is about, so the safe methods always
  // pass and an app can hang the check on every route with one `addHook`.
  // Every refusal is one FSS_* code, with one warn line that names the reason.
  fastify.decorate('csrfProtection', function csrfCheck (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (SAFE_METHODS.has(request.method)) return done()
    const refuse = (reason: Refusal): void => {
      request.log.warn({ reason }, 'CSRF check refused the request') // never the token
      done(new errors.FSS_CSRF_INVALID())
    }
    const token = getToken(request)
    if (token === undefined) return refuse('missing-token')
    const secret = secretOf(request)
    if (secret === undefined) return refuse('no-session-secret')
    if (!tokens.verify(secret, token)) return refuse('invalid-token')
    done()
  })

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
