// Idle, absolute and rolling timeouts on a fake clock. Only Date is faked, so
// Fastify's own timers keep working.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { build, captureLogs } from './helper.ts'
import { Browser, key, sess, liveCookies, setCookies } from './session-helper.ts'
import session, { getSessionDetails, type SessionOptions } from '../plugins/session.ts'

const S = 1000
const H = 3600 * S
const D = 24 * H
const NAME = '__Host-session'

function clock (t: Test): ReturnType<typeof FakeTimers.install> {
  const c = FakeTimers.install({ toFake: ['Date'], now: Date.UTC(2030, 0, 1) })
  t.teardown(() => c.uninstall())
  return c
}

async function app (t: Test, opts: SessionOptions = {}) {
  const cap = captureLogs()
  const fastify = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await fastify.register(session, { key: key(), ...opts })
  fastify.get('/set', async (req) => { sess(req).set('user', 'ada'); return {} })
  fastify.get('/get', async (req) => ({ data: req.session.data(), details: getSessionDetails(req) }))
  const rejected = () => cap.lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.startsWith('session cookie rejected')).map((l) => l.reason)
  return { fastify, rejected }
}

t.test('idle timeout: the same cookie works 1 s before the limit and not 1 s after, in the browser and on the server', async (t) => {
  const c = clock(t)
  const { fastify, rejected } = await app(t)
  const browser = new Browser(fastify, t)
  const cookie = liveCookies((await browser.request('/set')).lines).get(NAME) as string
  const send = () => fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${cookie}` } })

  // Max-Age counts from receipt (RFC 6265 §5.2.2); tough-cookie counts from the
  // last access, so we ask for the expiry relative to the creation time.
  const [stored] = await browser.jar.getCookies('https://app.test/', { expire: false })
  t.equal(stored.expiryTime(stored.creation as Date), Date.now() + 7 * D, 'browser: the cookie expires 7 days after receipt')

  c.tick(7 * D - S)
  t.same((await send()).json().data, { user: 'ada' }, 'server: valid 1 s before')
  c.tick(2 * S)
  t.same((await send()).json().data, {}, 'server: expired 1 s after')
  t.same(rejected(), ['idle'])
})

t.test('rolling: no Set-Cookie within the interval, one re-issue after it, with a fresh Max-Age', async (t) => {
  const c = clock(t)
  const { fastify } = await app(t)
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  c.tick(H - S)
  t.equal((await browser.request('/get')).lines.length, 0, '59:59 after issue: nothing sent')
  c.tick(2 * S)
  const rolled = await browser.request('/get')
  t.equal(rolled.lines.length, 1, 'past the interval: re-issued')
  t.match(rolled.lines[0], /Max-Age=604800;/)
  t.equal((await browser.request('/get')).lines.length, 0, 'and not again right after')
  t.equal(fastify.sessionInfo.counters.rolled, 1)
  // Rolling extends the idle window: 7 days after the first issue the session lives on.
  c.tick(7 * D - 2 * S)
  t.same((await browser.request('/get')).json().data, { user: 'ada' })
})

t.test('absolute timeout: a session used every day still ends 30 days after creation', async (t) => {
  const c = clock(t)
  const created = Date.now()
  const { fastify, rejected } = await app(t)
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  let last
  for (let day = 1; day <= 29; day++) {
    c.tick(D)
    last = await browser.request('/get')
    t.same(last.json().data, { user: 'ada' }, `day ${day}: still logged in`)
  }
  t.match((last as { lines: string[] }).lines[0], /Max-Age=86400;/, 'the last re-issue is capped at the absolute limit')
  const details = (last as { json: () => { details: { createdAt: number, expiresAt: number } } }).json().details
  t.equal(details.createdAt, created)
  t.equal(details.expiresAt, created + 30 * D, 'expiresAt is the earlier of the idle and absolute limits')
  c.tick(D - S)
  t.same((await fastify.inject({ url: '/get', headers: { cookie: browser.cookieHeader() } })).json().data, { user: 'ada' }, '1 s before 30 days')
  c.tick(S)
  const raw = `${NAME}=${(await browser.jar.getCookies('https://app.test/', { expire: false }))[0]?.value}`
  t.same((await fastify.inject({ url: '/get', headers: { cookie: raw } })).json().data, {}, 'in the exact second of the limit: empty even with the cookie replayed')
  c.tick(S)
  t.same((await fastify.inject({ url: '/get', headers: { cookie: raw } })).json().data, {}, '1 s after: empty')
  t.same(rejected(), ['absolute', 'absolute'])
})

t.test('the absolute limit passing during a request ends the session instead of writing it', async (t) => {
  const c = clock(t)
  const { fastify } = await app(t, { idleTimeout: 3600, absoluteTimeout: 7200 })
  fastify.get('/slow', async (req) => {
    sess(req).get('user')
    c.tick(2 * H) // the request outlives the absolute limit
    sess(req).set('user', 'late')
    return {}
  })
  const browser = new Browser(fastify, t)
  await browser.request('/set')
  const res = await browser.request('/slow')
  t.same(res.lines.map((l) => l.split(';')[0]), [`${NAME}=`])
  t.equal(browser.cookieHeader(), '')
})

t.test('regenerate() restarts the absolute clock; a new session has no times yet', async (t) => {
  const c = clock(t)
  const { fastify } = await app(t)
  fastify.get('/login', async (req) => { req.session.regenerate(); sess(req).set('user', 'grace'); return {} })
  const browser = new Browser(fastify, t)
  const fresh = await browser.request('/get')
  t.same(fresh.json().details, { fields: [], encodedBytes: 0, chunks: 0 })
  t.equal(fresh.lines.length, 0, 'reading an empty new session sets nothing')
  await browser.request('/set')
  c.tick(10 * D)
  await browser.request('/login')
  const details = (await browser.request('/get')).json().details
  t.equal(details.createdAt, Date.now())
  t.equal(details.expiresAt, Date.now() + 7 * D)
  setCookies(t, fresh)
})

t.test('an instance whose clock is 2 s behind re-issues a session the next request still accepts', async (t) => {
  const c = clock(t)
  const T = Date.now()
  const shared = key()
  const ahead = await app(t, { key: shared })
  const behind = await app(t, { key: shared })
  behind.fastify.get('/touch', async (req) => { sess(req).set('seen', true); return {} })
  const browser = new Browser(ahead.fastify, t)
  c.setSystemTime(T + 2 * S) // the instance that creates the session runs 2 s ahead
  await browser.request('/set')
  const created = (await browser.request('/get')).json().details.createdAt
  t.equal(created, T + 2 * S)

  c.setSystemTime(T) // the next request lands on an instance 2 s behind
  const behindBrowser = Object.assign(new Browser(behind.fastify, t), { jar: browser.jar })
  const touched = await behindBrowser.request('/touch')
  t.equal(touched.lines.length, 1, 're-issued by the instance behind')

  // Read right after, at T, on either instance: still logged in.
  for (const [name, instance] of [['behind', behind], ['ahead', ahead]] as const) {
    const reader = Object.assign(new Browser(instance.fastify, t), { jar: browser.jar })
    const got = await reader.request('/get')
    t.same(got.json().data, { user: 'ada', seen: true }, `${name}: the re-issued session is accepted`)
    t.equal(got.json().details.createdAt, T + 2 * S, `${name}: creation time kept`)
  }
  t.same([...ahead.rejected(), ...behind.rejected()], [], 'nothing rejected')
})
