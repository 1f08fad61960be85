// Concurrent writes to one session: the browser keeps only the last response's
// cookie. The CSRF secret is the field that must survive it: requests sent at
// once with the same cookie, each calling generateCsrf() for the first time,
// store the same secret, so every token any of those pages shows is accepted
// with whichever cookie the browser kept. Real HTTP, requests held inside the
// handler until all of them have arrived.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import csrfProtection from '@fastify/csrf-protection'
import { captureLogs } from './helper.ts'
import { listeningApp } from './fixtures/oauth-app.ts'
import session from '../plugins/session.ts'
import csrf from '../plugins/csrf.ts'

declare module '@fastify/secure-session' {
  interface SessionData { user: string }
}

const key = randomBytes(32)

interface Rig { app: FastifyInstance, origin: string, hold: (n: number) => void }

async function start (t: Test, register: (app: FastifyInstance) => Promise<void> = async (app) => { await app.register(csrf) }): Promise<Rig> {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(session, { key, secure: false })
  await register(app)
  // A barrier: with hold(n), the first n requests to /form wait for each other inside the handler,
  // after the session was decoded, so none of them has answered before all have read the cookie.
  let expected = 0
  let arrived = 0
  let release = (): void => {}
  let gate = Promise.resolve()
  app.get('/form', async (request, reply) => {
    const user = request.session.get('user')
    if (expected > 0) {
      if (++arrived === expected) release()
      await gate
    }
    return { token: reply.generateCsrf(), user }
  })
  app.post('/start', async (request) => { request.session.set('user', 'alice'); return { started: true } })
  app.post('/login', async (request, reply) => {
    // A new privilege level: new session, and a token rendered in the same response.
    request.session.regenerate()
    request.session.set('user', 'alice')
    return { token: reply.generateCsrf() }
  })
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  await app.ready()
  return {
    app,
    origin,
    hold: (n) => {
      expected = n
      arrived = 0
      gate = new Promise((resolve) => { release = resolve })
    }
  }
}

interface Page { token: string, cookie: string }

async function get (origin: string, path: string, cookie: string): Promise<Page> {
  const res = await fetch(origin + path, { headers: cookie === '' ? {} : { cookie } })
  const set = res.headers.getSetCookie().map((l) => l.split(';')[0]).filter((c) => c.startsWith('session'))
  return { token: (await res.json() as { token: string }).token, cookie: set.join('; ') }
}

async function post (origin: string, path: string, cookie: string, token?: string): Promise<Response> {
  return await fetch(origin + path, { method: 'POST', headers: { cookie, ...(token !== undefined && { 'x-csrf-token': token }) } })
}

async function session0 (rig: Rig): Promise<string> {
  const res = await post(rig.origin, '/start', '')
  return res.headers.getSetCookie().map((l) => l.split(';')[0]).filter((c) => c.startsWith('session')).join('; ')
}

t.test('two concurrent first generateCsrf() calls: each page\'s token is accepted with either response\'s cookie', async (t) => {
  const rig = await start(t)
  const cookie = await session0(rig)
  rig.hold(2)
  const [a, b] = await Promise.all([get(rig.origin, '/form', cookie), get(rig.origin, '/form', cookie)])
  t.not(a.cookie, '', 'the first response wrote the session')
  t.not(b.cookie, '', 'so did the second')
  t.not(a.cookie, b.cookie, 'two different Set-Cookie values: the browser keeps one')
  for (const kept of [a.cookie, b.cookie]) {
    for (const page of [a, b]) {
      t.equal((await post(rig.origin, '/transfer', kept, page.token)).status, 200, 'token accepted with the kept cookie')
    }
  }
  t.equal((await post(rig.origin, '/transfer', a.cookie)).status, 403, 'and no token is still refused')
})

t.test('property: n requests at once, any of their cookies kept, every page\'s token accepted', async (t) => {
  const rig = await start(t)
  await fc.assert(fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.nat(), async (n, pick) => {
    const cookie = await session0(rig)
    rig.hold(n)
    const pages = await Promise.all(Array.from({ length: n }, () => get(rig.origin, '/form', cookie)))
    const kept = pages[pick % n].cookie
    for (const page of pages) {
      if ((await post(rig.origin, '/transfer', kept, page.token)).status !== 200) return false
    }
    return true
  }), { numRuns: 12 })
  t.pass('every interleaving agreed')
})

t.test('the secret of a session regenerated in this request is fresh, not derived from the cookie it came with', async (t) => {
  // That cookie may have been planted before the login (session fixation): its holder must not know the new secret.
  const rig = await start(t)
  const planted = await session0(rig)
  const first = await (async () => {
    const res = await post(rig.origin, '/login', planted)
    return { token: (await res.json() as { token: string }).token, cookie: res.headers.getSetCookie().map((l) => l.split(';')[0]).filter((c) => c.startsWith('session')).join('; ') }
  })()
  const second = await (async () => {
    const res = await post(rig.origin, '/login', planted)
    return { token: (await res.json() as { token: string }).token, cookie: res.headers.getSetCookie().map((l) => l.split(';')[0]).filter((c) => c.startsWith('session')).join('; ') }
  })()
  t.equal((await post(rig.origin, '/transfer', first.cookie, first.token)).status, 200)
  t.equal((await post(rig.origin, '/transfer', second.cookie, second.token)).status, 200)
  t.equal((await post(rig.origin, '/transfer', first.cookie, second.token)).status, 403, 'two logins from the same cookie got different secrets')
  // Without a login in between, the same cookie does give the same first secret (that is the concurrency rule).
  const x = await get(rig.origin, '/form', planted)
  const y = await get(rig.origin, '/form', planted)
  t.equal((await post(rig.origin, '/transfer', x.cookie, y.token)).status, 200)
})

t.test('secrets and tokens made by @fastify/csrf-protection (earlier releases) stay valid', async (t) => {
  const before = await start(t, async (app) => { await app.register(csrfProtection, { sessionPlugin: '@fastify/secure-session' }) })
  const cookie = await session0(before)
  const page = await get(before.origin, '/form', cookie)
  const now = await start(t)
  t.equal((await post(now.origin, '/transfer', page.cookie, page.token)).status, 200, 'the old secret and token are accepted')
  const again = await get(now.origin, '/form', page.cookie)
  t.equal(again.cookie, '', 'the stored secret is kept: nothing to write')
  t.equal((await post(now.origin, '/transfer', page.cookie, again.token)).status, 200)
})
