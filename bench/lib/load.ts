// One bounded autocannon run against 127.0.0.1. Every run counts the
// responses that carry Set-Cookie (the same client-side work for every row,
// so the load generator's share of the two cores is alike); with
// followCookies each connection also keeps its own jar, like a browser.
import autocannon from 'autocannon'

export interface LoadOptions {
  url: string
  duration: number
  connections: number
  cookie?: string
  followCookies?: boolean
}

export interface LoadResult {
  requests: number
  /** how long the load ran, as autocannon measured it */
  seconds: number
  rps: number
  p99: number
  non2xx: number
  errors: number
  responses: number
  withSetCookie: number
}

/** Merges `name=value` pairs from Set-Cookie headers into a Cookie header value. */
export function mergeCookies (cookieHeader: string, setCookies: string[]): string {
  const jar = new Map<string, string>()
  for (const pair of cookieHeader.split(/;\s*/)) {
    const eq = pair.indexOf('=')
    if (eq > 0) jar.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  for (const header of setCookies) {
    const pair = header.split(';', 1)[0]
    const eq = pair.indexOf('=')
    if (eq <= 0) continue
    const name = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    // an expired or emptied cookie leaves the jar, as in a browser
    if (value === '' || /;\s*max-age=0/i.test(header) || /expires=thu, 01 jan 1970/i.test(header)) jar.delete(name)
    else jar.set(name, value)
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
}

/** Set-Cookie values from the raw header list llhttp hands autocannon ([k, v, k, v, ...]). */
function setCookiesOf (raw: unknown): string[] {
  const list = (raw as { headers?: unknown }).headers
  if (!Array.isArray(list)) return []
  const out: string[] = []
  for (let i = 0; i + 1 < list.length; i += 2) {
    if (String(list[i]).toLowerCase() === 'set-cookie') out.push(String(list[i + 1]))
  }
  return out
}

export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  if (!opts.url.startsWith('http://127.0.0.1:')) throw new Error('the bench only loads 127.0.0.1')
  if (opts.connections > 50) throw new Error('the bench keeps connections at 50 or fewer')
  let responses = 0
  let withSetCookie = 0
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.duration,
    headers: opts.cookie !== undefined ? { cookie: opts.cookie } : {},
    setupClient (client) {
      let cookie = opts.cookie ?? ''
      client.on('headers', (info) => {
        responses++
        const setCookies = setCookiesOf(info)
        if (setCookies.length === 0) return
        withSetCookie++
        if (opts.followCookies === true) {
          cookie = mergeCookies(cookie, setCookies)
          client.setHeaders({ cookie })
        }
      })
    }
  })
  return {
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    responses,
    withSetCookie
  }
}
