// The cookie policy: options schema, defaults applied once at registration, and
// the cross-field rules browsers enforce silently (a `__Host-` cookie with a
// Domain is dropped without a word), turned into start-up errors instead.
import { Type } from '@sinclair/typebox'
import type { SerializeOptions } from '@fastify/cookie'
import { errors } from '../errors.ts'
import { validateOptions } from '../options.ts'

const DAY = 24 * 60 * 60
// Chrome and the cookie spec draft (RFC 6265bis §5.5) cap Max-Age at 400 days.
const MAX_AGE_CAP = 400 * DAY

export const sessionOptionsSchema = Type.Object({
  // RFC 6265 token characters only; '.' is allowed and used by the chunk names.
  cookieName: Type.Optional(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]{1,64}$' })),
  secure: Type.Optional(Type.Boolean()),
  sameSite: Type.Optional(Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none')])),
  path: Type.Optional(Type.String({ pattern: '^/[\\x21-\\x3A\\x3C-\\x7E]*$', maxLength: 256 })),
  domain: Type.Optional(Type.String({ pattern: '^\\.?[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$', maxLength: 253 })),
  httpOnly: Type.Optional(Type.Boolean()),
  idleTimeout: Type.Optional(Type.Integer({ minimum: 60, maximum: MAX_AGE_CAP })),
  absoluteTimeout: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * DAY })),
  rollingInterval: Type.Optional(Type.Integer({ minimum: 0 })),
  // Checked by hand in the plugin (Buffer is not a JSON type).
  key: Type.Optional(Type.Unknown())
}, { additionalProperties: false })

export type SameSite = 'lax' | 'strict' | 'none'

export interface SessionPolicy {
  cookieName: string
  secure: boolean
  httpOnly: boolean
  sameSite: SameSite
  path: string
  domain?: string
  /** seconds: cookie Max-Age and the server-side expiry of `__ts` alike */
  idleTimeout: number
  /** seconds from creation, whatever the activity */
  absoluteTimeout: number
  /** seconds: an unchanged session is re-issued at most this often */
  rollingInterval: number
  /** the serialized Set-Cookie line, name and attributes included */
  maxCookieBytes: 4096
}

export interface ResolvedPolicy { policy: SessionPolicy, warnings: string[] }

export function resolvePolicy (raw: unknown): ResolvedPolicy {
  if (typeof raw === 'object' && raw !== null && 'secret' in raw) {
    // The keyring has one owner: the secret-keys plugin, with its own options.
    throw new errors.FSS_OPTIONS_INVALID('session.secret', 'the session plugin does not load keys: register the secret-keys plugin with these options first (with the root plugin: the `secret` option)')
  }
  const opts = validateOptions(sessionOptionsSchema, raw, 'session')
  const secure = opts.secure ?? true
  const idleTimeout = opts.idleTimeout ?? 7 * DAY
  const policy: SessionPolicy = {
    // The `__Host-` prefix makes browsers refuse the cookie unless it is Secure,
    // Path=/ and has no Domain: no subdomain can plant or shadow it.
    cookieName: opts.cookieName ?? (secure ? '__Host-session' : 'session'),
    secure,
    httpOnly: opts.httpOnly ?? true,
    sameSite: opts.sameSite ?? 'lax',
    path: opts.path ?? '/',
    idleTimeout,
    absoluteTimeout: opts.absoluteTimeout ?? 30 * DAY,
    rollingInterval: opts.rollingInterval ?? Math.min(60 * 60, Math.floor(idleTimeout / 2)),
    maxCookieBytes: 4096
  }
  if (opts.domain !== undefined) policy.domain = opts.domain
  checkCrossFieldRules(policy)

  const warnings: string[] = []
  if (!policy.secure) warnings.push('secure cookies are off: the session cookie is sent over plain HTTP')
  if (!policy.httpOnly) warnings.push('HttpOnly is off: page scripts can read the session cookie')
  if (policy.sameSite === 'none') warnings.push('SameSite=None: the session cookie is sent on cross-site requests; use CSRF protection')
  if (policy.domain !== undefined) warnings.push('a Domain is set: every subdomain receives the session cookie')
  return { policy, warnings }
}

function checkCrossFieldRules (p: SessionPolicy): void {
  const name = p.cookieName
  if (name.startsWith('__Host-')) {
    if (!p.secure) throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie must be Secure; set secure: true or pick another name')
    if (p.domain !== undefined) throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie cannot have a Domain')
    if (p.path !== '/') throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie must have Path=/')
  }
  if (name.startsWith('__Secure-') && !p.secure) {
    throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Secure- cookie must be Secure')
  }
  if (p.sameSite === 'none' && !p.secure) {
    // Browsers reject SameSite=None without Secure.
    throw new errors.FSS_OPTIONS_INVALID('session.sameSite', 'SameSite=None requires secure: true')
  }
  if (p.absoluteTimeout < p.idleTimeout) {
    throw new errors.FSS_OPTIONS_INVALID('session.absoluteTimeout', 'must be at least idleTimeout')
  }
  if (p.rollingInterval >= p.idleTimeout) {
    throw new errors.FSS_OPTIONS_INVALID('session.rollingInterval', 'must be shorter than idleTimeout')
  }
}

/** Attributes of every session cookie; Max-Age is added per response. */
export function cookieAttributes (p: SessionPolicy): SerializeOptions {
  const attrs: SerializeOptions = { path: p.path, httpOnly: p.httpOnly, secure: p.secure, sameSite: p.sameSite }
  if (p.domain !== undefined) attrs.domain = p.domain
  return attrs
}
