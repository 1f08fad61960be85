// Keys per application and purpose: two applications given the same secret
// seal with different keys, so neither accepts the other's session (tokens and
// CSRF secret included) or opens its Redis records; cookies and records sealed
// by release 0.1.0 (raw keyring keys) keep working for the same application.
import t, { type Test } from 'tap'
import { getSuiteField, setSuiteField } from '../lib/session/suite-fields.ts'
import fc from 'fast-check'
import FakeTimers from '@sinonjs/fake-timers'
import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { deriveKey, DERIVED_INFO } from '../lib/keyring/format.ts'
import { getDerivedKeys, getSecretKeyBytes } from '../plugins/secret-keys.ts'
import { build, captureLogs } from './helper.ts'
import { startRedis } from './fixtures/redis-server.ts'

interface Fixture {
  createdAtMs: number
  key: string
  appName: string
  cookieStore: { csrf: string, cookie: string }
  redisStore: { csrf: string, cookie: string, record: { key: string, value: string } }
}
const fixture = JSON.parse(await readFile(new URL('./fixtures/upgrade-0.1.json', import.meta.url), 'utf8')) as Fixture
const NAME = '__Host-session'

async function app (t: Test, appName: string, hex: string, extra: Partial<SessionSuiteOptions> = {}) {
  const logs = captureLogs()
  const fastify = await build(t, { logger: { level: 'warn', stream: logs.stream } })
  await fastify.register(sessionSuite, {
    appName,
    secret: { env: { SESSION_SECRET_KEY: hex } },
    csrf: true,
    oauth: { provider: { authorizeUrl: 'https://idp.example/authorize', tokenUrl: 'https://idp.example/token' }, clientId: 'c', clientSecret: 's', callbackUri: 'https://app.example/callback' },
    ...extra
  })
  fastify.get('/who', async (request) => ({ user: request.session.get('user' as never) ?? null, token: (await request.tokens.metadata())?.fields ?? null }))
  fastify.get('/seed', async (request, reply) => {
    request.session.set('user' as never, 'ada' as never)
    await request.tokens.store({ access_token: 'access-' + randomBytes(8).toString('hex'), token_type: 'Bearer', expires_in: 3600 })
    return { csrf: reply.generateCsrf() }
  })
  // The Redis token reference of this session, and one planted in a session (to aim it at another app's record).
  fastify.get('/ref', async (request) => ({ ref: getSuiteField(request.session, 'tokenRef') ?? null }))
  fastify.get('/ref/:ref', async (request) => { setSuiteField(request.session, 'tokenRef', (request.params as { ref: string }).ref); return {} })
  fastify.post('/protected', { preHandler: fastify.csrfProtection }, async () => ({ ok: true }))
  await fastify.ready()
  return { fastify, logs }
}

const cookieOf = (res: { cookies: Array<{ name: string, value: string }> }): string | undefined => res.cookies.find((c) => c.name === NAME)?.value
const send = (fastify: FastifyInstance, url: string, cookie: string, opts: { method?: 'GET' | 'POST', csrf?: string } = {}) =>
  fastify.inject({ method: opts.method ?? 'GET', url, headers: { cookie: `${NAME}=${cookie}`, ...(opts.csrf !== undefined && { 'x-csrf-token': opts.csrf }) } })

t.test('the derivation is HKDF-SHA256 with the app name and the purpose in its info', async (t) => {
  t.equal(DERIVED_INFO, 'fastify-session-suite/v2')
  const key = Buffer.from(fixture.key, 'hex')
  const expected = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'fastify-session-suite/v2\0session\0app-a', 32))
  t.same(deriveKey(key, 'app-a', 'session'), expected)
  t.equal(deriveKey(key, 'app-a', 'session').length, 32)
})

t.test('property: distinct (app, purpose) pairs never share a key; the same pair always does (fast-check)', async (t) => {
  const appName = fc.stringMatching(/^[A-Za-z0-9._@-]{1,12}$/)
  const purpose = fc.constantFrom('session', 'redis-token-store')
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), appName, purpose, appName, purpose, (bytes, a1, p1, a2, p2) => {
    const key = Buffer.from(bytes)
    const k1 = deriveKey(key, a1, p1)
    const same = a1 === a2 && p1 === p2
    return k1.equals(deriveKey(key, a2, p2)) === same && !k1.equals(key) && k1.equals(deriveKey(Buffer.from(bytes), a1, p1))
  }), { numRuns: 300 })
})

t.test('the plugin derives from its own appName, default fastify-session-suite', async (t) => {
  const key = randomBytes(32)
  const { fastify } = await app(t, 'app-a', key.toString('hex'))
  t.same(getDerivedKeys(fastify, 'session'), [deriveKey(key, 'app-a', 'session')])
  t.same(getSecretKeyBytes(fastify), [key])
  const plain = await build(t)
  t.equal(getDerivedKeys(plain, 'session'), undefined, 'no keyring: nothing to derive')
  const foreign = await build(t)
  foreign.decorate('secretKeys', { source: 'none', count: 0, fingerprint: '', warnings: [] } as never)
  t.equal(getDerivedKeys(foreign, 'session'), undefined, 'a secretKeys decorator that is not the keyring\'s: nothing either')
  await plain.register(sessionSuite, { secret: { env: { SESSION_SECRET_KEY: key.toString('hex') } } })
  await plain.ready()
  t.same(getDerivedKeys(plain, 'redis-token-store'), [deriveKey(key, 'fastify-session-suite', 'redis-token-store')])
})

t.test('two applications sharing a key do not accept each other\'s sessions, tokens or CSRF tokens', async (t) => {
  const hex = randomBytes(32).toString('hex')
  const a = await app(t, 'app-a', hex)
  const b = await app(t, 'app-b', hex)
  const seeded = await a.fastify.inject('/seed')
  const cookie = cookieOf(seeded) as string
  const { csrf } = seeded.json()
  t.same((await send(a.fastify, '/who', cookie)).json(), { user: 'ada', token: ['access_token', 'token_type', 'expires_in', 'expires_at'] }, 'app A reads its session')
  t.equal((await send(a.fastify, '/protected', cookie, { method: 'POST', csrf })).statusCode, 200, 'and takes its CSRF token')
  t.same((await send(b.fastify, '/who', cookie)).json(), { user: null, token: null }, 'app B: an empty session')
  const forged = await send(b.fastify, '/protected', cookie, { method: 'POST', csrf })
  t.equal(forged.statusCode, 403, 'app B refuses the CSRF token')
  t.equal(forged.json().code, 'FSS_CSRF_INVALID')
  t.equal(b.fastify.sessionInfo.counters.rejected.decrypt, 2)
})

t.test('upgrade: a cookie sealed by release 0.1.0 keeps its user, token and CSRF token, and is re-sealed for this app only', async (t) => {
  const clock = FakeTimers.install({ now: fixture.createdAtMs + 60_000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const a = await app(t, fixture.appName, fixture.key)
  const { cookie, csrf } = fixture.cookieStore
  const first = await send(a.fastify, '/who', cookie)
  t.same(first.json(), { user: 'ada', token: ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at'] })
  const resealed = cookieOf(first)
  t.ok(resealed !== undefined && resealed !== cookie, 're-sealed on first use, as after a key rotation')
  t.equal(a.fastify.sessionInfo.counters.rotated, 1)
  t.same((await send(a.fastify, '/who', resealed as string)).json().user, 'ada', 'the re-sealed cookie reads back')
  t.equal((await send(a.fastify, '/protected', cookie, { method: 'POST', csrf })).statusCode, 200, 'the old CSRF token with the old cookie')
  t.equal((await send(a.fastify, '/protected', resealed as string, { method: 'POST', csrf })).statusCode, 200, 'and with the re-sealed one')
  const b = await app(t, 'app-b', fixture.key)
  t.same((await send(b.fastify, '/who', resealed as string)).json(), { user: null, token: null }, 'the re-sealed cookie is app A\'s alone')
})

t.test('Redis store: records are sealed per application; a record written by release 0.1.0 still opens', async (t) => {
  const redis = await startRedis(t)
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  await raw.connect()
  t.teardown(() => raw.disconnect())
  const clock = FakeTimers.install({ now: fixture.createdAtMs + 60_000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const redisOpts = { redis: { url: redis.url, keyPrefix: 'up:' } }
  const a = await app(t, fixture.appName, fixture.key, redisOpts)
  const b = await app(t, 'app-b', fixture.key, redisOpts)
  const refIn = async (fastify: FastifyInstance, cookie: string): Promise<string> => (await send(fastify, '/ref', cookie)).json().ref
  const plantedIn = async (fastify: FastifyInstance, ref: string): Promise<string> => cookieOf(await fastify.inject(`/ref/${ref}`)) as string

  await raw.set(fixture.redisStore.record.key, fixture.redisStore.record.value)
  const old = await send(a.fastify, '/who', fixture.redisStore.cookie)
  t.same(old.json(), { user: 'ada', token: ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at'] }, 'the 0.1.0 cookie and record')
  t.equal((await send(a.fastify, '/protected', fixture.redisStore.cookie, { method: 'POST', csrf: fixture.redisStore.csrf })).statusCode, 200, 'its CSRF token')

  const seeded = cookieOf(await a.fastify.inject('/seed')) as string
  const ref = await refIn(a.fastify, seeded)
  t.match(await raw.get(`up:tok:{${createHash('sha256').update(ref).digest('base64url')}}`), /^v1\./, 'a new record, in the v1 format')
  const inB = await send(b.fastify, '/who', await plantedIn(b.fastify, ref))
  t.equal(inB.json().token, null, 'app B cannot open the record app A wrote, even given its reference')
  t.match(b.logs.lines.join('\n'), /token-record-unreadable/)

  // A 0.1.0 record was sealed with the raw key, which every application on that key still opens until it expires.
  const oldRef = await refIn(a.fastify, fixture.redisStore.cookie)
  t.same((await send(b.fastify, '/who', await plantedIn(b.fastify, oldRef))).json().token, ['access_token', 'refresh_token', 'token_type', 'expires_in', 'expires_at'])
})
