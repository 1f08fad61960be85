// Helpers for the session suites: a browser-like cookie jar (tough-cookie with
// strict `__Host-` prefix rules, so a cookie a browser would drop fails the
// test), and the 4096-byte check every response of these suites goes through.
import { randomBytes } from 'node:crypto'
import { CookieJar } from 'tough-cookie'
import type { FastifyInstance, FastifyRequest, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Session } from '@fastify/secure-session'
import type { Test } from 'tap'

export const MAX_SET_COOKIE = 4096
export const key = (): Buffer => randomBytes(32)

/** request.session with untyped fields (the suites do not augment SessionData for every field they use). */
export const sess = (req: FastifyRequest): Session<Record<string, unknown>> => req.session as unknown as Session<Record<string, unknown>>

/** Every Set-Cookie line of the response; fails the test for one over 4096 bytes. */
export function setCookies (t: Test, res: LightMyRequestResponse, quiet = false): string[] {
  const raw = res.headers['set-cookie']
  const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  const over = lines.filter((l) => Buffer.byteLength(l) > MAX_SET_COOKIE)
  if (over.length > 0) t.fail(`Set-Cookie over ${MAX_SET_COOKIE} bytes: ${over.map((l) => Buffer.byteLength(l)).join(', ')}`)
  else if (lines.length > 0 && !quiet) t.ok(true, `${lines.length} Set-Cookie line(s), each ≤ ${MAX_SET_COOKIE} bytes`)
  return lines
}

/** `name=value` of each Set-Cookie line that sets (not expires) a cookie. */
export function liveCookies (lines: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const l of lines) {
    if (/;\s*Max-Age=0(;|$)/i.test(l)) continue
    const pair = l.split(';')[0]
    const eq = pair.indexOf('=')
    out.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  return out
}

/** Names the response expires (Max-Age=0). */
export function expiredCookies (lines: string[]): string[] {
  return lines.filter((l) => /;\s*Max-Age=0(;|$)/i.test(l)).map((l) => l.slice(0, l.indexOf('=')))
}

export class Browser {
  readonly jar = new CookieJar(undefined, { prefixSecurity: 'strict', rejectPublicSuffixes: false })
  constructor (readonly app: FastifyInstance, readonly t: Test, readonly origin = 'https://app.test') {}

  cookieHeader (url = '/'): string {
    return this.jar.getCookieStringSync(this.origin + url)
  }

  async request (url = '/', opts: InjectOptions = {}): Promise<LightMyRequestResponse & { lines: string[] }> {
    const cookie = this.cookieHeader(url)
    const res = await this.app.inject({
      method: 'GET',
      url,
      ...opts,
      headers: { ...(cookie === '' ? {} : { cookie }), ...opts.headers }
    })
    const lines = setCookies(this.t, res)
    // setCookieSync throws for a cookie a browser would refuse (strict prefixes).
    for (const line of lines) this.jar.setCookieSync(line, this.origin + url)
    return Object.assign(res, { lines })
  }
}
