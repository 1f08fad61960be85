// The cache of decoded sessions on the read path: a cookie seen before is not
// decrypted again, yet what a request reads is exactly what decoding would
// give, its own copy, checked against the clock and the keys every time.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import FakeTimers from '@sinonjs/fake-timers'
import { build, captureLogs } from './helper.ts'
import { key, sess, liveCookies, setCookies } from './session-helper.ts'
import session, { type SessionOptions } from '../plugins/session.ts'

const NAME = '__Host-session'
const S = 1000
const D = 24 * 3600 * S

async function app (t: Test, opts: SessionOptions = {}) {
  const cap = captureLogs()
  const fastify = await build(t, { logger: { level: 'debug', stream: cap.stream } })
  await fastify.register(session, { key: key(), ...opts })
  fastify.post<{ Body: Record<string, unknown> }>('/set', async (req) => {
    for (const [k, v] of Object.entries(req.body)) sess(req).set(k, v)
    return {}
  })
  fastify.get('/get', async (req) => ({ data: req.session.data() }))
  // changes a nested object in place, without set(): nothing is written back
  fastify.get('/scribble', async (req) => {
    const user = sess(req).get('user') as { name: string, roles: string[] }
    user.name = 'mallory'
    user.roles.push('admin')
    return { data: req.session.data() }
  })
  fastify.get('/logout', async (req) => { req.session.delete(); return {} })
  const rejected = (): string[] => cap.lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.startsWith('session cookie rejected')).map((l) => l.reason)
  return { fastify, cap, rejected }
}

async function login (t: Test, fastify: Awaited<ReturnType<typeof app>>['fastify'], body: Record<string, unknown> = { user: { name: 'ada', roles: ['reader'] } }): Promise<string> {
  const res = await fastify.inject({ method: 'POST', url: '/set', payload: body })
  t.equal(res.statusCode, 200)
  return liveCookies(setCookies(t, res, true)).get(NAME) as string
}

const read = async (fastify: Awaited<ReturnType<typeof app>>['fastify'], cookie: string, url = '/get') =>
  await fastify.inject({ url, headers: { cookie: `${NAME}=${cookie}` } })

t.test('a cookie seen before is read from the cache, and reads the same', async (t) => {
  const { fastify } = await app(t)
  const info = fastify.sessionInfo.decodedCache
  if (info === null) throw new Error('the cache is on by default')
  const cookie = await login(t, fastify)
  t.equal(info.stats().entries, 1, 'the session just written is kept')
  for (let i = 0; i < 3; i++) t.same((await read(fastify, cookie)).json().data, { user: { name: 'ada', roles: ['reader'] } })
  t.match(info.stats(), { hits: 3, misses: 0, entries: 1 })
  t.equal(fastify.sessionInfo.counters.decoded, 3, 'each read still counts as a decoded session')

  info.flush()
  t.same((await read(fastify, cookie)).json().data, { user: { name: 'ada', roles: ['reader'] } }, 'after a flush: decrypted again')
  t.match(info.stats(), { hits: 3, misses: 1, entries: 1, flushes: 1 })
})

t.test('a change one request makes in place never reaches another request', async (t) => {
  const { fastify } = await app(t)
  const cookie = await login(t, fastify)
  const scribbled = await read(fastify, cookie, '/scribble')
  t.same(scribbled.json().data, { user: { name: 'mallory', roles: ['reader', 'admin'] } }, 'the request sees its own change')
  t.same(setCookies(t, scribbled, true), [], 'and nothing is written back')
  t.same((await read(fastify, cookie)).json().data, { user: { name: 'ada', roles: ['reader'] } }, 'the next request reads the cookie as it is')
  t.equal(fastify.sessionInfo.decodedCache?.stats().hits, 2)
})

t.test('a cached session past its idle or absolute limit is refused, as a decrypted one is', async (t) => {
  const c = FakeTimers.install({ toFake: ['Date'], now: Date.UTC(2030, 0, 1) })
  t.teardown(() => c.uninstall())
  const { fastify, rejected } = await app(t, { idleTimeout: 2 * 24 * 3600, absoluteTimeout: 3 * 24 * 3600 })
  const info = fastify.sessionInfo.decodedCache
  const idle = await login(t, fastify)
  t.equal(info?.stats().entries, 1, 'kept when written')
  c.tick(2 * D)
  t.same((await read(fastify, idle)).json().data, {}, 'at the idle limit: an empty session')
  t.same(rejected(), ['idle'])
  t.equal(info?.stats().hits, 1, 'the refusal came from the cached entry')
  t.equal(info?.stats().entries, 0, 'which is dropped')

  // rollingInterval 0: every read re-issues, so the idle limit never passes
  const rolling = await app(t, { idleTimeout: 2 * 24 * 3600, absoluteTimeout: 3 * 24 * 3600, rollingInterval: 0 })
  let cookie = await login(t, rolling.fastify)
  for (let day = 1; day <= 3; day++) {
    c.tick(D)
    const res = await read(rolling.fastify, cookie)
    if (day < 3) {
      t.same(res.json().data, { user: { name: 'ada', roles: ['reader'] } }, `day ${day}: still valid`)
      cookie = liveCookies(setCookies(t, res, true)).get(NAME) as string
    } else {
      t.same(res.json().data, {}, 'at the absolute limit: an empty session')
    }
  }
  t.same(rolling.rejected(), ['absolute'])
  t.equal(rolling.fastify.sessionInfo.decodedCache?.stats().hits, 3, 'every read was a hit, the refusal too')
})

t.test('another keyring never serves a cached session: it is decrypted, and refused', async (t) => {
  const first = await app(t)
  const cookie = await login(t, first.fastify)
  t.equal((await read(first.fastify, cookie)).statusCode, 200)
  t.equal(first.fastify.sessionInfo.decodedCache?.stats().hits, 1)
  // a restart with a new key: a new instance, a new cache
  const second = await app(t)
  t.same((await read(second.fastify, cookie)).json().data, {})
  t.same(second.rejected(), ['decrypt'])
  t.match(second.fastify.sessionInfo.decodedCache?.stats(), { hits: 0, misses: 1, entries: 0 })
})

t.test('a cookie opened with an older key is re-sealed and not kept', async (t) => {
  const old = key()
  const before = await app(t, { key: old })
  const cookie = await login(t, before.fastify)
  const after = await app(t, { key: [key(), old] })
  const res = await read(after.fastify, cookie)
  t.same(res.json().data, { user: { name: 'ada', roles: ['reader'] } })
  const resealed = liveCookies(setCookies(t, res, true)).get(NAME) as string
  t.not(resealed, cookie)
  const stats = after.fastify.sessionInfo.decodedCache?.stats()
  t.equal(stats?.entries, 1, 'only the re-sealed value is kept')
  await read(after.fastify, resealed)
  t.equal(after.fastify.sessionInfo.decodedCache?.stats().hits, 1, 'and served')
  await read(after.fastify, cookie)
  t.equal(after.fastify.sessionInfo.counters.rotated, 2, 'the old value is decrypted (and re-sealed) every time')
})

t.test('a re-issued or ended session gives its entry up', async (t) => {
  const { fastify } = await app(t)
  const info = fastify.sessionInfo.decodedCache
  const first = await login(t, fastify)
  await read(fastify, first)
  const res = await fastify.inject({ method: 'POST', url: '/set', payload: { n: 1 }, headers: { cookie: `${NAME}=${first}` } })
  const second = liveCookies(setCookies(t, res, true)).get(NAME) as string
  t.equal(info?.stats().entries, 1, 'the superseded value is dropped, the new one kept')
  t.same((await read(fastify, second)).json().data, { user: { name: 'ada', roles: ['reader'] }, n: 1 })
  t.equal(info?.stats().hits, 3, 'read, read to write, read the new value')
  await read(fastify, second, '/logout')
  t.equal(info?.stats().entries, 0, 'logout drops it')
  t.same((await read(fastify, first)).json().data, { user: { name: 'ada', roles: ['reader'] } }, 'an old cookie, replayed, is decrypted again (a cookie session cannot be revoked by forgetting it)')
})

t.test('the bounds hold through the plugin, and a session too large for them is read without the cache', async (t) => {
  // each entry counts its cookie value (about 250 B here) besides the session
  const { fastify } = await app(t, { decodedCache: { maxEntries: 3, maxBytes: 2048 } })
  const info = fastify.sessionInfo.decodedCache
  const cookies: string[] = []
  for (let i = 0; i < 6; i++) cookies.push(await login(t, fastify, { i }))
  t.match(info?.stats(), { entries: 3, evictions: 3 })
  t.same((await read(fastify, cookies[0])).json().data, { i: 0 }, 'an evicted session is decrypted again')
  const big = await login(t, fastify, { big: 'x'.repeat(1500) })
  t.ok((info?.stats().bytes ?? Infinity) <= 2048, 'never more than maxBytes')
  t.same((await read(fastify, big)).json().data, { big: 'x'.repeat(1500) }, 'too large to keep, read all the same')
  t.ok((info?.stats().refused ?? 0) >= 2, 'refused on write and on read')
})

t.test('decodedCache: false decrypts every request', async (t) => {
  const { fastify } = await app(t, { decodedCache: false })
  t.equal(fastify.sessionInfo.decodedCache, null)
  t.equal(fastify.sessionInfo.policy.decodedCache, false)
  const cookie = await login(t, fastify)
  t.same((await read(fastify, cookie)).json().data, { user: { name: 'ada', roles: ['reader'] } })
})

t.test('bad decodedCache options are refused at registration, naming the option', async (t) => {
  for (const decodedCache of [{ maxEntries: 0 }, { maxBytes: 10 }, { size: 1 }, true]) {
    const fastify = await build(t)
    await t.rejects(async () => { await fastify.register(session, { key: key(), decodedCache } as never) }, { code: 'FSS_OPTIONS_INVALID', message: /session\.decodedCache/ }, JSON.stringify(decodedCache))
  }
})

t.test('cached and uncached reads of any session agree, request after request', async (t) => {
  const k = key()
  const cached = await app(t, { key: k })
  const uncached = await app(t, { key: k, decodedCache: false })
  // Field names session.set() accepts; values as a JSON body carries them.
  const fieldName = fc.string({ maxLength: 10 }).filter((n) => !['__ts', '__i', '__c', '__proto__', 'constructor', 'prototype'].includes(n))
  await fc.assert(fc.asyncProperty(fc.dictionary(fieldName, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }), async (body) => {
    const cookie = await login(t, cached.fastify, body)
    const fromCache = (await read(cached.fastify, cookie)).body
    const again = (await read(cached.fastify, cookie)).body
    const decrypted = (await read(uncached.fastify, cookie)).body
    // the JSON text, so that key order counts too
    if (fromCache !== decrypted || again !== decrypted) t.fail(`cached ${fromCache} vs decrypted ${decrypted}`)
  }), { numRuns: 100 })
  t.ok((cached.fastify.sessionInfo.decodedCache?.stats().hits ?? 0) >= 100, 'the reads were served from the cache')
  cached.cap.assertNoSecrets(t, [k])
})
