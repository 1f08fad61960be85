import t from 'tap'
import { join } from 'node:path'
import type { FastifyServerOptions } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { build, captureLogs, tempDir } from './helper.ts'

type Test = Parameters<typeof build>[0]
const boot = (p: PromiseLike<unknown>) => Promise.resolve(p)

const ROUTES = [
  ['GET', '/api/session/debug'],
  ['POST', '/api/session/test-persistence'],
  ['GET', '/api/session/test-persistence'],
  ['GET', '/api/oauth/test-flow']
] as const

async function suite (t: Test, opts: SessionSuiteOptions = {}, server: FastifyServerOptions = {}, keyFile?: string) {
  const file = keyFile ?? join(await tempDir(t), 'secret.key')
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream }, ...server })
  await app.register(sessionSuite, { debug: true, ...opts, secret: { keyFile: file, env: {} } })
  await app.ready()
  return { app, cap, keyFile: file }
}

const sessionCookie = (res: { cookies: Array<{ name: string, value: string }> }) =>
  res.cookies.find((c) => c.name === '__Host-session')?.value

t.test('without `debug` the debug routes do not exist', async (t) => {
  const { app } = await suite(t, { debug: false })
  for (const [method, url] of ROUTES) t.equal((await app.inject({ method, url })).statusCode, 404, `${method} ${url}`)
})

t.test('debug routes are refused under NODE_ENV=production unless forced', async (t) => {
  const before = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { process.env.NODE_ENV = before })
  const app = await build(t)
  await t.rejects(boot(app.register(sessionSuite, { debug: true, secret: { keyFile: join(await tempDir(t), 'k'), env: {} } }).ready()), { code: 'FSS_DEBUG_IN_PRODUCTION' })
  const { app: forced, cap } = await suite(t, { debug: { force: true } })
  t.equal((await forced.inject('/api/session/debug')).statusCode, 200)
  t.ok(cap.lines.some((l) => l.includes('debug routes are on')), 'a warning says so in the log')
})

t.test('only loopback clients get answers, and nothing is cached', async (t) => {
  const { app } = await suite(t)
  for (const remoteAddress of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
    const res = await app.inject({ url: '/api/session/debug', remoteAddress })
    t.equal(res.statusCode, 200, remoteAddress)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  for (const [method, url] of ROUTES) {
    for (const remoteAddress of ['10.1.2.3', '::ffff:10.1.2.3', '2001:db8::1']) {
      const res = await app.inject({ method, url, remoteAddress })
      t.equal(res.statusCode, 403, `${method} ${url} from ${remoteAddress}`)
      t.equal(res.json().code, 'FSS_DEBUG_FORBIDDEN')
      t.equal(res.headers['cache-control'], 'no-store')
      t.equal(res.headers['set-cookie'], undefined)
    }
  }
})

t.test('a request relayed by a proxy Fastify does not trust is refused even from 127.0.0.1', async (t) => {
  const { app } = await suite(t)
  for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
    const res = await app.inject({ url: '/api/session/debug', headers: { [header]: '203.0.113.9' } })
    t.equal(res.statusCode, 403, header)
  }
})

t.test('`debug.allow` admits listed addresses and ranges, through a trusted proxy too', async (t) => {
  const { app } = await suite(t, { debug: { allow: ['10.0.0.0/8', '2001:db8::5', '::ffff:192.168.1.0/120'] } }, { trustProxy: true })
  const cases: Array<[string, number, Record<string, string>?]> = [
    ['10.200.3.4', 200], ['2001:db8::5', 200], ['192.168.1.77', 200], ['2001:db8::6', 403], ['11.0.0.1', 403],
    ['127.0.0.2', 200, { 'x-forwarded-for': '10.9.9.9' }], ['127.0.0.2', 403, { 'x-forwarded-for': '198.51.100.1' }]
  ]
  for (const [remoteAddress, status, headers] of cases) {
    t.equal((await app.inject({ url: '/api/session/debug', remoteAddress, headers })).statusCode, status, `${remoteAddress} ${JSON.stringify(headers ?? {})}`)
  }
})

t.test('every hop must be allowed: a client cannot claim loopback through X-Forwarded-For', async (t) => {
  const { app: trusting } = await suite(t, { debug: { allow: ['10.0.0.0/8'] } }, { trustProxy: true })
  const { app: plain } = await suite(t, { debug: { allow: ['10.0.0.0/8'] } })
  const cases: Array<[string, string | undefined, number, number]> = [
    // remoteAddress, X-Forwarded-For, status with trustProxy true, status without
    ['203.0.113.9', '127.0.0.1', 403, 403],
    ['203.0.113.9', '10.1.1.1, 127.0.0.1', 403, 403],
    ['::ffff:203.0.113.9', '::1', 403, 403],
    ['127.0.0.1', '203.0.113.9, 127.0.0.1', 403, 403],
    ['127.0.0.1', '127.0.0.1, 203.0.113.9', 403, 403],
    ['127.0.0.1', 'not-an-address', 403, 403],
    ['::ffff:127.0.0.1', '10.2.3.4, ::ffff:127.0.0.5', 200, 403],
    ['10.0.0.1', '10.2.3.4', 200, 403],
    ['203.0.113.9', undefined, 403, 403],
    ['::ffff:10.0.0.1', undefined, 200, 200]
  ]
  for (const [remoteAddress, xff, trusted, untrusted] of cases) {
    const headers = xff === undefined ? {} : { 'x-forwarded-for': xff }
    const label = `${remoteAddress} XFF ${xff ?? '-'}`
    t.equal((await trusting.inject({ url: '/api/session/debug', remoteAddress, headers })).statusCode, trusted, `trustProxy: ${label}`)
    t.equal((await plain.inject({ url: '/api/session/debug', remoteAddress, headers })).statusCode, untrusted, `no trustProxy: ${label}`)
  }
})

t.test('an allow entry that is not an address fails registration naming it', async (t) => {
  for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/x', '::1/129']) {
    const app = await build(t)
    await t.rejects(boot(app.register(sessionSuite, { debug: { allow: ['::1', bad] }, secret: { keyFile: join(await tempDir(t), 'k'), env: {} } }).ready()),
      { code: 'FSS_OPTIONS_INVALID', message: /debug\.allow\.1/ }, bad)
  }
  const app = await build(t)
  await t.rejects(boot(app.register(sessionSuite, { debug: { prefix: 'api' } }).ready()), { code: 'FSS_OPTIONS_INVALID', message: /debug\.prefix/ })
})

t.test('the debug prefix is configurable', async (t) => {
  const { app } = await suite(t, { debug: { prefix: '/_debug' } })
  t.equal((await app.inject('/_debug/session/debug')).statusCode, 200)
  t.equal((await app.inject('/api/session/debug')).statusCode, 404)
})

t.test('session debug shows the key, the policy and field names, never a value', async (t) => {
  const { app, keyFile } = await suite(t)
  const empty = (await app.inject('/api/session/debug')).json()
  t.match(empty.key, { source: `generated:${keyFile}`, bits: 256, count: 1, fingerprint: /^[0-9a-f]{8}$/ })
  t.match(empty.cookie, { cookieName: '__Host-session', secure: true, httpOnly: true, sameSite: 'lax', path: '/', maxCookieBytes: 4096 })
  t.same(empty.session, { fields: [], createdAt: null, expiresAt: null, encodedBytes: 0, chunks: 0, rejected: null })

  const stored = await app.inject({ method: 'POST', url: '/api/session/test-persistence' })
  const cookie = sessionCookie(stored)!
  const res = await app.inject({ url: '/api/session/debug', cookies: { '__Host-session': cookie } })
  const body = res.json()
  t.same(body.session.fields, ['fss.persistenceTest'], 'the suite\'s own field, under its namespace')
  t.ok(body.session.createdAt <= Date.now() && body.session.expiresAt > Date.now())
  t.equal(body.session.chunks, 1)
  t.equal(body.session.encodedBytes, cookie.length)
  t.notOk(res.body.includes(stored.json().nonce), 'the nonce value is not shown')

  const tampered = (await app.inject({ url: '/api/session/debug', cookies: { '__Host-session': (cookie.startsWith('x') ? 'y' : 'x') + cookie.slice(1) } })).json()
  t.equal(tampered.session.rejected, 'decrypt')
})

t.test('the persistence self-test stores a nonce and finds it again', async (t) => {
  const { app } = await suite(t)
  t.same((await app.inject('/api/session/test-persistence')).json(), { persisted: false, storedAt: null, matches: null })
  const stored = await app.inject({ method: 'POST', url: '/api/session/test-persistence' })
  t.equal(stored.statusCode, 200)
  const { nonce, storedAt } = stored.json()
  t.match(nonce, /^[A-Za-z0-9_-]{24}$/)
  const cookies = { '__Host-session': sessionCookie(stored)! }
  t.same((await app.inject({ url: '/api/session/test-persistence', cookies })).json(), { persisted: true, storedAt, matches: null })
  t.same((await app.inject({ url: `/api/session/test-persistence?nonce=${nonce}`, cookies })).json(), { persisted: true, storedAt, matches: true })
  t.same((await app.inject({ url: '/api/session/test-persistence?nonce=other', cookies })).json(), { persisted: true, storedAt, matches: false })
  t.same((await app.inject({ url: `/api/session/test-persistence?nonce=${nonce}` })).json(), { persisted: false, storedAt: null, matches: false })
})

t.test('the persisted nonce survives a restart on the same key file, and only on it', async (t) => {
  const first = await suite(t)
  const stored = await first.app.inject({ method: 'POST', url: '/api/session/test-persistence' })
  const { nonce } = stored.json()
  const cookies = { '__Host-session': sessionCookie(stored)! }
  await first.app.close()

  const second = await suite(t, {}, {}, first.keyFile)
  t.same((await second.app.inject({ url: `/api/session/test-persistence?nonce=${nonce}`, cookies })).json(),
    { persisted: true, storedAt: stored.json().storedAt, matches: true })

  const stranger = await suite(t)
  t.same((await stranger.app.inject({ url: `/api/session/test-persistence?nonce=${nonce}`, cookies })).json(),
    { persisted: false, storedAt: null, matches: false }, 'another key cannot open it')
  first.cap.assertNoSecrets(t, [cookies['__Host-session']])
  second.cap.assertNoSecrets(t, [cookies['__Host-session']])
})

t.test('the OAuth test flow without OAuth says so', async (t) => {
  const { app } = await suite(t)
  t.same((await app.inject('/api/oauth/test-flow')).json(), {
    configured: false, provider: null, tokenPresent: false, expiresAt: null, expired: null, refreshTokenPresent: false, scopes: [], fieldsPresent: [], identity: null, idTokenVerified: false, providers: []
  })
})
