// One soak client: logs in through the real provider (login → authorize →
// callback), reads, logs out, and now and then sends a tampered or an
// oversize cookie as a separate "attacker" request that never touches its
// own cookie jar. It records every status and notices a lost session: a
// logged-in client answered 401 without having logged out.
import { request as httpRequest } from 'node:http'
import { mergeCookies } from './load.ts'

export interface SoakStats {
  requests: number
  byStatus: Record<string, number>
  networkErrors: number
  /** `<path> <error code>` → count, for the report */
  networkErrorKinds: Record<string, number>
  /** 20 KB cookie headers the server hung up on (Node answers 431 and closes; a reset can win the race) */
  oversizeResets: number
  logins: number
  logouts: number
  /** logouts after which the session still read as logged in */
  failedLogouts: number
  lostSessions: number
  tampered: number
  oversize: number
  /** access-token changes seen by clients (each is one refresh) */
  generations: number
  /** seconds spent logged in, per session (for the time-based refresh estimate) */
  sessionSeconds: number[]
}

export function emptyStats (): SoakStats {
  return { requests: 0, byStatus: {}, networkErrors: 0, networkErrorKinds: {}, oversizeResets: 0, logins: 0, logouts: 0, failedLogouts: 0, lostSessions: 0, tampered: 0, oversize: 0, generations: 0, sessionSeconds: [] }
}

interface Answer { status: number, location: string | null, setCookies: string[], body: string }

export interface ClientContext {
  appUrl: string
  stats: SoakStats
  /** false once the time or request budget is spent */
  go: () => boolean
}

async function send (ctx: ClientContext, url: string, init: { method?: string, cookie?: string, headers?: Record<string, string> } = {}): Promise<Answer | null> {
  ctx.stats.requests++
  try {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      headers: { ...init.headers, ...(init.cookie !== undefined && init.cookie !== '' && { cookie: init.cookie }) },
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000)
    })
    const body = await res.text()
    ctx.stats.byStatus[res.status] = (ctx.stats.byStatus[res.status] ?? 0) + 1
    return { status: res.status, location: res.headers.get('location'), setCookies: res.headers.getSetCookie(), body }
  } catch (err) {
    ctx.stats.networkErrors++
    const e = err as Error & { cause?: { code?: string } }
    const kind = `${init.method ?? 'GET'} ${new URL(url).pathname} ${e.cause?.code ?? e.name}`
    ctx.stats.networkErrorKinds[kind] = (ctx.stats.networkErrorKinds[kind] ?? 0) + 1
    return null
  }
}

/**
 * An oversize cookie goes on its own connection: Node answers 431 and closes
 * the socket, and on the shared keep-alive pool that close could race another
 * client's next request (a client-side artefact, not a server fault).
 */
function sendOversize (ctx: ClientContext, cookie: string): Promise<void> {
  ctx.stats.requests++
  return new Promise((resolve) => {
    const req = httpRequest(`${ctx.appUrl}/api/me`, { agent: false, headers: { cookie }, timeout: 10_000 }, (res) => {
      ctx.stats.byStatus[res.statusCode ?? 0] = (ctx.stats.byStatus[res.statusCode ?? 0] ?? 0) + 1
      res.resume()
      res.on('end', resolve)
      res.on('error', () => resolve())
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    // Node may close before it has read all of a header over its limit
    req.on('error', () => { ctx.stats.oversizeResets++; resolve() })
    req.end()
  })
}

/** Flips one character in the middle of the session cookie's value. */
export function tamper (cookie: string): string {
  return cookie.replace(/(session(?:\.\d+)?=)([^;]+)/, (_, name: string, value: string) => {
    const i = Math.floor(value.length / 2)
    return name + value.slice(0, i) + (value[i] === 'A' ? 'B' : 'A') + value.slice(i + 1)
  })
}

export async function runClient (ctx: ClientContext, random: () => number): Promise<void> {
  let jar = ''
  let loggedInAt: number | null = null
  // sessions end by the clock, not by request count, so that they outlive a
  // few token lifetimes however fast the machine is
  let logoutAt = 0
  let generation: string | null = null
  const apply = (answer: Answer | null): Answer | null => {
    if (answer !== null) jar = mergeCookies(jar, answer.setCookies)
    return answer
  }
  const endSession = (): void => {
    if (loggedInAt !== null) ctx.stats.sessionSeconds.push((Date.now() - loggedInAt) / 1000)
    loggedInAt = null
    generation = null
  }

  // Log out as the demo page does: a POST carrying the page's CSRF token when it has one.
  async function logout (): Promise<void> {
    const page = apply(await send(ctx, `${ctx.appUrl}/`, { cookie: jar }))
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page?.body ?? '')?.[1]
    apply(await send(ctx, `${ctx.appUrl}/logout`, { method: 'POST', cookie: jar, headers: csrf === undefined ? {} : { 'x-csrf-token': csrf.replace(/&#x2F;/g, '/').replace(/&amp;/g, '&') } }))
  }

  async function login (): Promise<void> {
    const start = apply(await send(ctx, `${ctx.appUrl}/login`, { cookie: jar }))
    if (start?.location == null) return
    // the provider is another origin: no app cookies go there
    const authorize = await send(ctx, start.location)
    if (authorize?.location == null) return
    const callback = apply(await send(ctx, authorize.location, { cookie: jar }))
    if (callback?.status === 302) {
      ctx.stats.logins++
      loggedInAt = Date.now()
      logoutAt = loggedInAt + 1000 * (5 + 15 * random())
    }
  }

  while (ctx.go()) {
    if (loggedInAt === null) {
      await login()
      continue
    }
    const roll = random()
    if (Date.now() >= logoutAt) {
      await logout()
      ctx.stats.logouts++
      endSession()
      const after = apply(await send(ctx, `${ctx.appUrl}/api/me`, { cookie: jar }))
      if (after?.status !== 401) ctx.stats.failedLogouts++
    } else if (roll < 0.05) {
      ctx.stats.tampered++
      await send(ctx, `${ctx.appUrl}/api/me`, { cookie: tamper(jar) })
    } else if (roll < 0.07) {
      ctx.stats.oversize++
      // 9 KB of junk session chunks (under Node's 16 KB header limit), or 20 KB (over it: 431)
      const size = random() < 0.5 ? 9 * 1024 : 20 * 1024
      await sendOversize(ctx, `session=${'A'.repeat(size / 2)}; session.1=${'B'.repeat(size / 2)}`)
    } else if (roll < 0.17) {
      // the app's page (the demo renders the user from the session)
      apply(await send(ctx, `${ctx.appUrl}/`, { cookie: jar }))
    } else {
      const answer = apply(await send(ctx, `${ctx.appUrl}/api/me`, { cookie: jar }))
      if (answer?.status === 401) {
        ctx.stats.lostSessions++
        endSession()
      } else if (answer?.status === 200) {
        const seen = (JSON.parse(answer.body) as { generation?: string }).generation ?? null
        if (generation !== null && seen !== generation) ctx.stats.generations++
        generation = seen
      }
    }
  }
  endSession()
}
