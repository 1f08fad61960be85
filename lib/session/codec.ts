// The cookie codec: how a sealed session travels in one or more cookies.
//
// Value form. @fastify/secure-session seals to `base64(cipher);base64(nonce)`.
// `;`, `+`, `/` and `=` are outside the characters a cookie value may carry
// unescaped, so @fastify/cookie percent-escapes them (3 bytes each): about 5 %
// larger cookies. We store `base64url(cipher).base64url(nonce)` instead, which
// needs no escaping, and turn it back into secure-session's form before
// decoding (Buffer.from(x, 'base64') reads base64url too, so only the
// separator changes). Anything else is refused before any crypto runs:
// Buffer.from() would silently skip invalid characters. Cookies written by raw
// secure-session are not read: they carry no creation time (see payload.ts).
//
// Chunks, as Auth.js does: a single cookie `<name>` when its whole Set-Cookie
// line fits in 4096 bytes, else `<name>.0`, `<name>.1`, … each line ≤ 4096.
export const MAX_COOKIE_BYTES = 4096
/** Read bound: more chunks than this is not ours (we never write that many). */
export const MAX_CHUNKS = 8
/**
 * Write bound on what the browser sends back (`name=value; ` for every chunk).
 * Node answers 431 to request headers over 16 KB (`maxHeaderSize`), so a
 * session needing more would lock its user out of the whole site until the
 * cookies expire; we refuse to write it (FSS_SESSION_TOO_LARGE) instead.
 */
export const MAX_REQUEST_COOKIE_BYTES = 12 * 1024

const SEALED = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** secure-session's `cipher;nonce` (base64) → our cookie value (base64url, `.`). */
export function toCookieValue (sealed: string): string {
  const i = sealed.indexOf(';')
  return b64url(sealed.slice(0, i)) + '.' + b64url(sealed.slice(i + 1))
}

function b64url (b64: string): string {
  return b64.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
}

/** Our cookie value → secure-session's form, or null when malformed (percent-escapes included). */
export function toSealed (value: string): string | null {
  return SEALED.test(value) ? value.replace('.', ';') : null
}

export interface ReceivedCookies {
  /** the joined value, or null when nothing of ours was sent */
  value: string | null
  /** every name of ours the browser sent, to expire the ones we stop using */
  names: string[]
  /** bytes of the values as received */
  bytes: number
  /** 1 for a single cookie, n for n chunks, 0 for none */
  chunks: number
  /** why the cookies cannot be a session (duplicate, chunks), else undefined */
  problem?: 'duplicate' | 'chunks'
}

/**
 * Picks our cookies out of the raw Cookie header. We parse it ourselves rather
 * than read request.cookies, because the parsed object keeps only the first of
 * duplicate names, and a duplicate is a sign of cookie tossing from a sibling
 * domain: we refuse the session rather than guess which one is ours.
 */
export function readCookies (header: string | undefined, name: string): ReceivedCookies {
  const found = new Map<string, string>()
  const result: ReceivedCookies = { value: null, names: [], bytes: 0, chunks: 0 }
  if (header === undefined || header === '') return result
  const prefix = name + '.'
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1) continue
    const key = pair.slice(0, eq).trim()
    if (key !== name && !key.startsWith(prefix)) continue
    if (found.has(key)) result.problem = 'duplicate'
    found.set(key, pair.slice(eq + 1).trim())
  }
  result.names = [...found.keys()]
  for (const v of found.values()) result.bytes += v.length
  if (result.problem !== undefined) return result

  const single = found.get(name)
  if (single !== undefined) {
    result.value = single
    result.chunks = 1
    return result
  }
  if (found.size === 0) return result
  // Chunks must be exactly `.0` … `.n-1`, canonical decimal, under the bound.
  const parts: string[] = []
  for (let i = 0; i < MAX_CHUNKS && found.has(prefix + i); i++) parts.push(found.get(prefix + i) as string)
  if (parts.length !== found.size) {
    result.problem = 'chunks'
    return result
  }
  result.value = parts.join('')
  result.chunks = parts.length
  return result
}

export interface CookieLine { name: string, value: string }
type Serialize = (name: string, value: string) => string

/**
 * Splits a cookie value into as few cookies as fit, each serialized line
 * (`name=value; attributes`) at most 4096 bytes. `serialize` is the one
 * @fastify/cookie will use, so what is measured is what is sent.
 */
export function planCookies (name: string, value: string, serialize: Serialize): CookieLine[] {
  if (Buffer.byteLength(serialize(name, value)) <= MAX_COOKIE_BYTES) return [{ name, value }]
  const lines: CookieLine[] = []
  let rest = value
  for (let i = 0; rest.length > 0; i++) {
    const chunkName = `${name}.${i}`
    // Our values are ASCII, so characters are bytes.
    const room = MAX_COOKIE_BYTES - Buffer.byteLength(serialize(chunkName, ''))
    lines.push({ name: chunkName, value: rest.slice(0, room) })
    rest = rest.slice(room)
  }
  return lines
}

/** Bytes the browser sends back for these cookies in its Cookie header. */
export function requestBytes (lines: CookieLine[]): number {
  return lines.reduce((n, l) => n + l.name.length + 1 + l.value.length + 2, 0)
}
