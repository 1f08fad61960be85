// The cookie codec: how a sealed session travels in one or more cookies.
//
// Value form. @fastify/secure-session seals to `base64(cipher);base64(nonce)`.
// `;`, `+`, `/` and `=` are outside the characters a cookie value may carry
// unescaped, so @fastify/cookie percent-escapes them (3 bytes each): about 5 %
// larger cookies. We store `base64url(cipher).base64url(nonce)` instead, which
// needs no escaping; the sealer (sealer.ts) writes and reads this form
// directly, and toCookieValue/toSealed convert between it and secure-session's
// (the same bytes: only the alphabet, the padding and the separator differ).
// Anything else is refused before any crypto runs:
// Buffer.from() would silently skip invalid characters. Cookies written by raw
// secure-session are not read: they carry no creation time (see payload.ts).
//
// Chunks, as Auth.js does: a single cookie `<name>` when its whole Set-Cookie
// line fits in 4096 bytes, else `<name>.0`, `<name>.1`, … each line ≤ 4096.
export const MAX_COOKIE_BYTES = 4096
/**
 * Chunk bound: `<name>.0` … `<name>.7` are the only chunk names we read or
 * expire. The write bound below keeps every session we write well under it
 * (12 KB of cookies is at most 4 chunks of up to 4 KB). Any other name that merely
 * starts with `<name>.` was set by someone else: it is not read, and never
 * expired, so no request can make us answer with more than
 * MAX_CHUNKS + 1 expiring Set-Cookie lines, or with a name the serializer
 * refuses (a space, a non-ASCII character).
 */
export const MAX_CHUNKS = 8
/**
 * Write bound on what the browser sends back (`name=value; ` for every chunk).
 * Node answers 431 to request headers over 16 KB (`maxHeaderSize`), so a
 * session needing more would lock its user out of the whole site until the
 * cookies expire; we refuse to write it (FSS_SESSION_TOO_LARGE) instead.
 */
export const MAX_REQUEST_COOKIE_BYTES = 12 * 1024

// V8 compiles this to native code: on a 1.6 KB value it measured about 1 µs,
// two to three times faster than a charCodeAt loop doing the same check.
const SEALED = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

// The suffixes of the chunk names we write: canonical decimals below the bound.
const CHUNK_SUFFIXES: ReadonlySet<string> = new Set(Array.from({ length: MAX_CHUNKS }, (_, i) => String(i)))

/** secure-session's `cipher;nonce` (base64) → our cookie value (base64url, `.`). */
export function toCookieValue (sealed: string): string {
  const i = sealed.indexOf(';')
  // Re-encoding through a Buffer is native and single-pass: about twice as fast
  // as three regex replaces over the string, and it drops the `=` padding.
  return Buffer.from(sealed.slice(0, i), 'base64').toString('base64url') + '.' +
    Buffer.from(sealed.slice(i + 1), 'base64').toString('base64url')
}

/** Our cookie value's base64url ciphertext and nonce, or null when malformed (percent-escapes included). */
export function splitSealed (value: string): [string, string] | null {
  if (!SEALED.test(value)) return null
  const dot = value.indexOf('.')
  return [value.slice(0, dot), value.slice(dot + 1)]
}

/** Our cookie value → secure-session's form, or null when malformed (percent-escapes included). */
export function toSealed (value: string): string | null {
  const parts = splitSealed(value)
  return parts === null ? null : parts[0] + ';' + parts[1]
}

export interface ReceivedCookies {
  /** the joined value, or null when nothing of ours was sent */
  value: string | null
  /**
   * The values `value` is joined from, in order: one for a single cookie, one
   * per chunk. Each is a slice of the Cookie header, flat, where `value` is
   * a rope V8 would copy into one string to compare it.
   */
  parts: string[]
  /** every name of ours the browser sent (at most MAX_CHUNKS + 1), to expire the ones we stop using */
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
  const result: ReceivedCookies = { value: null, parts: [], names: [], bytes: 0, chunks: 0 }
  // No pair can be ours unless the name occurs somewhere: most requests stop here.
  if (header === undefined || !header.includes(name)) return result
  const prefix = name + '.'
  // One pass of indexOf over the header, no intermediate array of pairs. The
  // next '=' is searched again only once passed, so pairs without one cannot
  // make the scan quadratic.
  const length = header.length
  let eq = -1
  for (let start = 0; start < length;) {
    let end = header.indexOf(';', start)
    if (end === -1) end = length
    if (eq < start) {
      eq = header.indexOf('=', start)
      if (eq === -1) break
    }
    if (eq < end) {
      const key = header.slice(start, eq).trim()
      if (key === name || (key.startsWith(prefix) && CHUNK_SUFFIXES.has(key.slice(prefix.length)))) {
        if (found.has(key)) result.problem = 'duplicate'
        found.set(key, header.slice(eq + 1, end).trim())
      }
    }
    start = end + 1
  }
  if (found.size === 0) return result
  result.names = [...found.keys()]
  for (const v of found.values()) result.bytes += v.length
  if (result.problem !== undefined) return result

  const single = found.get(name)
  if (single !== undefined) {
    result.value = single
    result.parts = [single]
    result.chunks = 1
    return result
  }
  // Chunks must be exactly `.0` … `.n-1`: a gap is a chunk lost on the way.
  // Joined with `+`, not Array#join: V8 then makes a rope without copying,
  // which only a decrypt flattens (a cache hit compares the parts).
  let value = ''
  const parts: string[] = []
  for (let part = found.get(prefix + '0'); part !== undefined; part = found.get(prefix + String(parts.length))) {
    value += part
    parts.push(part)
  }
  if (parts.length !== found.size) {
    result.problem = 'chunks'
    return result
  }
  result.value = value
  result.parts = parts
  result.chunks = parts.length
  return result
}

export interface CookieLine { name: string, value: string }

/**
 * Splits a cookie value into as few cookies as fit, each serialized line
 * (`name=value; attributes`) at most 4096 bytes. `attributeBytes` is the
 * length of what follows the value in the line (`; Max-Age=…; Path=/; …`),
 * measured once on the serializer @fastify/cookie uses. Names (RFC 6265
 * tokens, checked by the policy schema) and our base64url values are ASCII and
 * pass that serializer's encoding unchanged, so a line is exactly
 * name + 1 + value + attributeBytes bytes: no line is serialized to measure it.
 */
export function planCookies (name: string, value: string, attributeBytes: number): CookieLine[] {
  if (name.length + 1 + value.length + attributeBytes <= MAX_COOKIE_BYTES) return [{ name, value }]
  const lines: CookieLine[] = []
  let rest = value
  for (let i = 0; rest.length > 0; i++) {
    const chunkName = `${name}.${i}`
    const room = MAX_COOKIE_BYTES - (chunkName.length + 1 + attributeBytes)
    lines.push({ name: chunkName, value: rest.slice(0, room) })
    rest = rest.slice(room)
  }
  return lines
}

/** Bytes the browser sends back for these cookies in its Cookie header. */
export function requestBytes (lines: CookieLine[]): number {
  return lines.reduce((n, l) => n + l.name.length + 1 + l.value.length + 2, 0)
}
