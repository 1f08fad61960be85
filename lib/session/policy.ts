// The cookie policy: options schema, defaults applied once at registration, and
// the cross-field rules browsers enforce silently (a `__Host-` cookie with a
// Domain is dropped without a word), turned into start-up errors instead.
import { Type, type Static } from '@sinclair/typebox'
import type { SerializeOptions } from '@fastify/cookie'
import { errors } from '../errors.ts'
import { validateOptions } from '../options.ts'
import { DECODED_CACHE_DEFAULTS, decodedCacheOptionsSchema, type DecodedCacheOptions } from './decoded-cache.ts'

const DAY = 24 * 60 * 60
// Chrome and the cookie spec draft (RFC 6265bis §5.5) cap Max-Age at 400 days.
const MAX_AGE_CAP = 400 * DAY

/** The defaults that do not depend on another option. */
export const SESSION_DEFAULTS = {
  secure: true,
  httpOnly: true,
  sameSite: 'lax',
  path: '/',
  idleTimeout: 7 * DAY,
  absoluteTimeout: 30 * DAY
} as const

export const SessionOptionsSchema = Type.Object({
  // RFC 6265 token characters only; '.' is allowed and used by the chunk names.
  cookieName: Type.Optional(Type.String({
    pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]{1,64}$',
    description: 'The session cookie\'s name (chunks add `.0`, `.1`, …). Default `__Host-session` when `secure`, else `session`. A `__Host-` name needs `secure`, no `domain` and `path` `/`; a `__Secure-` name needs `secure`.'
  })),
  secure: Type.Optional(Type.Boolean({ description: 'Send the cookie over HTTPS only. `false` shows as a warning in /health.', default: SESSION_DEFAULTS.secure })),
  sameSite: Type.Optional(Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none')], {
    description: 'The SameSite attribute. `none` needs `secure` and shows as a warning.',
    default: SESSION_DEFAULTS.sameSite
  })),
  path: Type.Optional(Type.String({ pattern: '^/[\\x21-\\x3A\\x3C-\\x7E]*$', maxLength: 256, description: 'The cookie\'s Path.', default: SESSION_DEFAULTS.path })),
  domain: Type.Optional(Type.String({
    pattern: '^\\.?[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$',
    maxLength: 253,
    description: 'The cookie\'s Domain; none by default. With one, every subdomain receives the cookie (a warning).'
  })),
  httpOnly: Type.Optional(Type.Boolean({ description: 'Hide the cookie from page scripts. `false` shows as a warning.', default: SESSION_DEFAULTS.httpOnly })),
  /** seconds @default 604800 (7 days) */
  idleTimeout: Type.Optional(Type.Integer({
    minimum: 60,
    maximum: MAX_AGE_CAP,
    description: 'Seconds a session may go unused: the cookie\'s Max-Age and the server-side expiry alike (60 s to 400 days).',
    default: SESSION_DEFAULTS.idleTimeout
  })),
  /** seconds @default 2592000 (30 days) */
  absoluteTimeout: Type.Optional(Type.Integer({
    minimum: 60,
    maximum: 10 * 365 * DAY,
    description: 'Seconds a session lives from its creation (login), however active; at least `idleTimeout`.',
    default: SESSION_DEFAULTS.absoluteTimeout
  })),
  /** seconds @default 3600, or half of idleTimeout when that is shorter */
  rollingInterval: Type.Optional(Type.Integer({
    minimum: 0,
    description: 'Seconds after which an unchanged session read by a request is re-issued with a fresh Max-Age; below `idleTimeout`. Default 3600, or half of `idleTimeout` when that is shorter.'
  })),
  /** @default { maxEntries: 10000, maxBytes: 33554432 } */
  decodedCache: Type.Optional(Type.Union([Type.Literal(false), decodedCacheOptionsSchema], {
    description: 'The cache of decoded sessions, keyed by the exact cookie value: a request carrying a cookie seen before skips decryption (the timeouts are still checked on every request; see docs/sessions.md). `false` turns it off.',
    default: DECODED_CACHE_DEFAULTS
  })),
  // Checked by hand in the plugin (Buffer is not a JSON type).
  key: Type.Optional(Type.Unsafe<Buffer | Buffer[]>(Type.Unknown({
    tsType: 'Buffer | Buffer[]',
    description: '32-byte keys, newest first, instead of the keyring of the secret-keys plugin (which must then not be registered). For tests and embedding.'
  })))
}, { additionalProperties: false })

export type SessionOptions = Static<typeof SessionOptionsSchema>

export type SameSite = NonNullable<SessionOptions['sameSite']>

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
  /** the cache of decoded sessions' bounds, or false when it is off */
  decodedCache: Required<DecodedCacheOptions> | false
  /** the serialized Set-Cookie line, name and attributes included */
  maxCookieBytes: 4096
}

export interface ResolvedPolicy { policy: SessionPolicy, warnings: string[] }

export function resolvePolicy (raw: unknown): ResolvedPolicy {
  if (typeof raw === 'object' && raw !== null && 'secret' in raw) {
    // The keyring has one owner: the secret-keys plugin, with its own options.
    throw new errors.FSS_OPTIONS_INVALID('session.secret', 'the session plugin does not load keys: register the secret-keys plugin with these options first (with the root plugin: the `secret` option)')
  }
  const opts = validateOptions(SessionOptionsSchema, raw, 'session')
  const secure = opts.secure ?? SESSION_DEFAULTS.secure
  const idleTimeout = opts.idleTimeout ?? SESSION_DEFAULTS.idleTimeout
  const policy: SessionPolicy = {
    // The `__Host-` prefix makes browsers refuse the cookie unless it is Secure,
    // Path=/ and has no Domain: no subdomain can plant or shadow it.
    cookieName: opts.cookieName ?? (secure ? '__Host-session' : 'session'),
    secure,
    httpOnly: opts.httpOnly ?? SESSION_DEFAULTS.httpOnly,
    sameSite: opts.sameSite ?? SESSION_DEFAULTS.sameSite,
    path: opts.path ?? SESSION_DEFAULTS.path,
    idleTimeout,
    absoluteTimeout: opts.absoluteTimeout ?? SESSION_DEFAULTS.absoluteTimeout,
    rollingInterval: opts.rollingInterval ?? Math.min(60 * 60, Math.floor(idleTimeout / 2)),
    decodedCache: opts.decodedCache === false ? false : { ...DECODED_CACHE_DEFAULTS, ...opts.decodedCache },
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
  // RFC 6265bis §4.1.3 matches the prefixes without case: browsers hold `__host-s`
  // to the `__Host-` rules, and would silently drop a cookie that breaks them.
  const name = p.cookieName.toLowerCase()
  if (name.startsWith('__host-')) {
    if (!p.secure) throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie must be Secure; set secure: true or pick another name')
    if (p.domain !== undefined) throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie cannot have a Domain')
    if (p.path !== '/') throw new errors.FSS_OPTIONS_INVALID('session.cookieName', 'a __Host- cookie must have Path=/')
  }
  if (name.startsWith('__secure-') && !p.secure) {
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
