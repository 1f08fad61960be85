import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { randomBytes } from 'node:crypto'
import { build, captureLogs } from './helper.ts'
import { Browser, key, sess, liveCookies, expiredCookies, setCookies } from './session-helper.ts'
import session, { getSessionDetails, type SessionOptions } from '../plugins/session.ts'
import secretKeys, { getSecretKeyBytes } from '../plugins/secret-keys.ts'

// Users type their fields by augmenting secure-session's SessionData; the
// typed test below fails `tsc --noEmit` if request.session loses that typing.
declare module '@fastify/secure-session' {
  interface SessionData { typedTestCounter: number }
}

async function app (t: Test, opts: SessionOptions = { key: key() }) {
  const cap = captureLogs()
  const fastify = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await fastify.register(session, opts)
  fastify.get('/set', async (req) => {
    (req.session as unknown as Record<string, unknown>).user = 'ada' // property access, as secure-session allows
    sess(req).set('role', 'admin')
    return { ok: true }
  })
  fastify.get('/get', async (req) => ({ data: req.session.data(), user: sess(req).get('user'), details: getSessionDetails(req) }))
  fastify.get('/untouched', async () => ({ ok: true }))
  fastify.get('/delete', async (req) => { req.session.delete(); return { ok: true } })
  fastify.get('/big', async (req) => { sess(req).set('big', randomBytes(2500).toString('hex')); return { ok: true } })
  fastify.get('/small', async (req) => { sess(req).set('big', 'x'); return { ok: true } })
  return { fastify, cap }
}
t.test('a value set on one request is read on the next, in a cookie with the safe defaults', async (t) => {
  const opts = { key: key() }
  const { fastify, cap } = await app(t, opts)
  const browser = new Browser(fastify, t)
  const set = await browser.request('/set')
  t.equal(set.lines.length, 1)
  t.match(set.lines[0], /^__Host-session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Max-Age=604800; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  t.notMatch(set.lines[0], /%|Domain=/, 'base64url value: nothing to percent-escape, no Domain')
  const got = await browser.request('/get')
  t.same(got.json().data, { user: 'ada', role: 'admin' }, 'internal timestamps stay out of data()')
  t.equal(got.json().user, 'ada')
  t.same(got.json().details.fields, ['user', 'role'])
  t.equal(got.json().details.chunks, 1)
  t.equal(got.lines.length, 0, 'reading an unchanged session sends no Set-Cookie')
  t.equal(fastify.sessionInfo.counters.issued, 1)
  cap.assertNoSecrets(t, [opts.key, liveCookies(set.lines).get('__Host-session')])
})

t.test('a route that never touches request.session decrypts nothing and sends no cookie', async (t) => {
  const { fastify } = await app(t)
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  const before = fastify.sessionInfo.counters.decoded
  const res = await browser.request('/untouched')
  t.equal(res.statusCode, 200)
  t.equal(res.lines.length, 0)
  await fastify.inject({ url: '/untouched', headers: { cookie: '__Host-session=garbage' } })
  t.equal(fastify.sessionInfo.counters.decoded, before, 'no decode for untouched routes')
  t.same(fastify.sessionInfo.counters.rejected, {}, 'a bad cookie on an untouched route is not even parsed')
  await browser.request('/get')
  t.equal(fastify.sessionInfo.counters.decoded, before + 1, 'first access decodes')
})

t.test('the session is decoded once per request however often it is read', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/many', async (req) => {
    for (let i = 0; i < 5; i++) sess(req).get('user')
    const first = req.session
    return { same: first === req.session }
  })
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  const res = await browser.request('/many')
  t.equal(res.json().same, true)
  t.equal(fastify.sessionInfo.counters.decoded, 1)
})

t.test('delete() expires every cookie of the session, chunks included', async (t) => {
  const { fastify } = await app(t)
  const browser = new Browser(fastify, t)
  const big = await browser.request('/big')
  t.same([...liveCookies(big.lines).keys()], ['__Host-session.0', '__Host-session.1'])
  const del = await browser.request('/delete')
  t.same(expiredCookies(del.lines).sort(), ['__Host-session.0', '__Host-session.1'])
  t.equal(browser.cookieHeader(), '', 'the browser holds no session cookie afterwards')
  t.equal(fastify.sessionInfo.counters.deleted, 1)
  const after = await browser.request('/get')
  t.same(after.json().data, {})
})

t.test('regenerate() drops the pre-login contents and starts a new creation time', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/login', async (req) => {
    req.session.regenerate()
    sess(req).set('user', 'grace')
    return { ok: true }
  })
  fastify.get('/logout-login', async (req) => {
    req.session.delete()
    req.session.regenerate(['role'])
    return { ok: true }
  })
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  await browser.request('/login')
  t.same((await browser.request('/get')).json().data, { user: 'grace' }, 'role from before the login is gone')
  await browser.request('/set')
  const res = await browser.request('/logout-login')
  t.equal(expiredCookies(res.lines).length, 0, 'regenerate after delete is a new session, not a logout')
  t.same((await browser.request('/get')).json().data, { role: 'admin' }, 'ignoreFields are kept')
})

t.test('touch() re-issues an unchanged session; internal field names are refused', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/touch', async (req) => { req.session.touch(); return { ok: true } })
  fastify.get('/reserved', async (req) => { req.session.set('__ts' as 'typedTestCounter', 1); return { ok: true } })
  fastify.get('/reserved-i', async (req) => { req.session.set('__i' as 'typedTestCounter', 1); return { ok: true } })
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  t.equal((await browser.request('/touch')).lines.length, 1)
  const res = await browser.request('/reserved')
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FSS_SESSION_KEY_RESERVED')
  const own = await browser.request('/reserved-i')
  t.equal(own.json().code, 'FSS_SESSION_KEY_RESERVED', 'our own issue-time field too')
})

t.test('options() adjusts Max-Age or SameSite for one response, never Path, Domain or Secure', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/short', async (req) => {
    req.session.options({ maxAge: 60, path: '/elsewhere', domain: 'evil.test', secure: false, sameSite: 'strict' })
    sess(req).set('user', 'x')
    return { ok: true }
  })
  const res = await new Browser(fastify, t).request('/short')
  t.match(res.lines[0], /; Max-Age=60; Path=\/; HttpOnly; Secure; SameSite=Strict$/)
})

t.test('property access follows secure-session: methods, own flags, then fields', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/props', async (req) => {
    const s = req.session as unknown as Record<string | symbol, unknown>
    const before = s.changed
    s.nick = 'n'
    s.deleted = false
    let symbolSet = true
    try { s[Symbol('x')] = 1 } catch { symbolSet = false }
    return { before, after: s.changed, nick: s.nick, sym: s[Symbol.iterator] === undefined, symbolSet, get: typeof s.get }
  })
  const res = await new Browser(fastify, t).request('/props')
  t.same(res.json(), { before: false, after: true, nick: 'n', sym: true, symbolSet: false, get: 'function' })
})

t.test('typed fields: SessionData augmentation types get/set', async (t) => {
  const { fastify } = await app(t)
  fastify.get('/typed', async (req) => {
    const n: number | undefined = req.session.get('typedTestCounter')
    req.session.set('typedTestCounter', (n ?? 0) + 1)
    // @ts-expect-error a string is not a number: the augmentation is in force
    if (n === -1) req.session.set('typedTestCounter', 'one')
    return { n: req.session.typedTestCounter }
  })
  const browser = new Browser(fastify, t)
  await browser.request('/typed')
  t.equal((await browser.request('/typed')).json().n, 2)
})

t.test('registration: validated options, defaults, warnings, cookie plugin once', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ secure: false, cookieName: '__Host-x' }, /session\.cookieName.*Secure/],
    [{ domain: 'example.com' }, /session\.cookieName.*Domain/],
    [{ path: '/app' }, /session\.cookieName.*Path/],
    [{ secure: false, cookieName: '__Secure-x' }, /session\.cookieName/],
    [{ secure: false, sameSite: 'none' }, /session\.sameSite/],
    [{ idleTimeout: 3600, absoluteTimeout: 600 }, /session\.absoluteTimeout/],
    [{ idleTimeout: 3600, rollingInterval: 3600 }, /session\.rollingInterval/],
    [{ idleTimeout: 10 }, /session\.idleTimeout/],
    [{ cookieName: 'a b' }, /session\.cookieName/],
    [{ sameSite: 'lax ' }, /session\.sameSite/],
    [{ colour: 'blue' }, /session/],
    [{ key: randomBytes(16) }, /session\.key/],
    [{ key: [] }, /session\.key/],
    [{ key: 'a string' }, /session\.key/]
  ]
  for (const [opts, message] of bad) {
    const f = Fastify()
    await t.rejects(async () => { await f.register(session, { key: key(), ...opts } as SessionOptions) }, { code: 'FSS_OPTIONS_INVALID', message }, JSON.stringify(opts))
    await f.close()
  }

  const plain = await build(t)
  await plain.register(fastifyCookie) // already there: not registered twice
  await plain.register(session, { key: key(), secure: false, sameSite: 'strict', domain: 'app.test', path: '/', httpOnly: false, idleTimeout: 120, prefix: '/x' } as SessionOptions)
  plain.get('/set', async (req) => { req.session.set('typedTestCounter', 1); return {} })
  await plain.ready()
  t.equal(plain.sessionInfo.policy.cookieName, 'session', 'no __Host- prefix without Secure')
  t.equal(plain.sessionInfo.policy.rollingInterval, 60, 'default rolling interval stays under a short idle timeout')
  t.match(plain.sessionInfo.warnings, [/secure cookies are off/, /HttpOnly is off/, /Domain/])
  const res = await plain.inject('/set')
  t.match(setCookies(t, res)[0], /^session=[^;]+; Max-Age=120; Domain=app.test; Path=\/; SameSite=Strict$/)

  const crossSite = await build(t)
  await crossSite.register(session, { key: key(), sameSite: 'none' })
  await crossSite.ready()
  t.equal(crossSite.sessionInfo.policy.cookieName, '__Host-session')
  t.match(crossSite.sessionInfo.warnings, [/SameSite=None/])
})

t.test('keys come from the secret-keys plugin registered before the session plugin, which never loads them itself', async (t) => {
  const hex = randomBytes(32).toString('hex')
  const env = { SESSION_SECRET_KEY: hex }
  const first = await build(t)
  await first.register(secretKeys, { env })
  await first.register(session)
  first.get('/set', async (req) => { req.session.set('typedTestCounter', 7); return {} })
  await first.ready()
  const cookie = liveCookies(setCookies(t, await first.inject('/set')))

  const second = await build(t) // a restart: same variable, same keyring
  await second.register(secretKeys, { env })
  await second.register(session)
  second.get('/get', async (req) => req.session.data())
  const res = await second.inject({ url: '/get', cookies: Object.fromEntries(cookie) })
  t.same(res.json(), { typedTestCounter: 7 }, 'same key from the same variable: the cookie survives a restart')
  t.same(getSecretKeyBytes(second)?.[0], Buffer.from(hex, 'hex'))
})

t.test('without key material the plugin refuses to start; it never loads a keyring itself', async (t) => {
  const none = await build(t)
  await t.rejects(async () => { await none.register(session) }, { code: 'FSS_SESSION_NO_KEY' })
  t.notOk(none.hasDecorator('secretKeys'), 'no keyring was loaded on the side')
  const f = await build(t)
  // A secretKeys decorator that is not the keyring's (no key bytes behind it).
  f.decorate('secretKeys', { source: 'none', count: 0, fingerprint: '', warnings: [] } as never)
  await t.rejects(async () => { await f.register(session) }, { code: 'FSS_SESSION_NO_KEY' })
})

t.test('keys from two places are refused, naming the option', async (t) => {
  const env = { SESSION_SECRET_KEY: randomBytes(32).toString('hex') }
  const both = await build(t)
  await both.register(secretKeys, { env })
  await t.rejects(async () => { await both.register(session, { key: key() }) }, { code: 'FSS_OPTIONS_INVALID', message: /option session\.key: the secret-keys plugin already loaded a keyring/ })
  const own = await build(t)
  await t.rejects(async () => { await own.register(session, { secret: { env } } as SessionOptions) }, { code: 'FSS_OPTIONS_INVALID', message: /option session\.secret: .*register the secret-keys plugin/ })
})

t.test('getSessionDetails outside the plugin has nothing to show', async (t) => {
  const f = await build(t)
  f.get('/d', async (req) => getSessionDetails(req))
  t.same((await f.inject('/d')).json(), { fields: [], encodedBytes: 0, chunks: 0 })
})

t.test('a session too large for the request header limit is refused with FSS_SESSION_TOO_LARGE, no value logged', async (t) => {
  const { fastify, cap } = await app(t)
  const secret = randomBytes(6000).toString('hex')
  fastify.get('/huge', async (req) => { sess(req).set('huge', secret); return { ok: true } })
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  const res = await browser.request('/huge')
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FSS_SESSION_TOO_LARGE')
  t.same(res.lines, [], 'nothing written: the previous session cookie stays')
  t.same((await browser.request('/get')).json().data, { user: 'ada', role: 'admin' })
  t.equal(fastify.sessionInfo.counters.tooLarge, 1)
  const logged = cap.lines.map((l) => JSON.parse(l)).find((l) => l.msg?.startsWith('session too large'))
  t.match(logged, { level: 50, limit: 12288, fields: 3 })
  t.ok(logged.bytes > 12288)
  cap.assertNoSecrets(t, [secret.slice(0, 64)])
})

t.test('getSessionDetails names the reason a cookie was rejected', async (t) => {
  const { fastify } = await app(t)
  const res = await fastify.inject({ url: '/get', headers: { cookie: '__Host-session=not-a-session' } })
  t.same(res.json().details, { fields: [], encodedBytes: 13, chunks: 1, rejected: 'format' })
})
