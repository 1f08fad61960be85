// Where several providers' tokens live. In the cookie, each provider's token
// is a suite field of its own, and together they still keep the cookie limits:
// the session is chunked (every Set-Cookie within 4096 bytes), and a session
// that would need more than a browser sends back is refused with
// FSS_SESSION_TOO_LARGE naming Redis, the previous cookie kept. In Redis, each
// provider's tokens are a record of their own. Real providers, real Redis.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import sessionSuite from '../index.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'
import { captureLogs } from './helper.ts'
import { fingerprint } from '../lib/digest.ts'

let main: OidcServer
let api: OidcServer
let redis: RedisServer
let raw: Redis
t.before(async () => {
  [main, api, redis] = await Promise.all([startOidcServer(), startOidcServer(), startRedis(t)])
  raw = new Redis(redis.url)
})
t.teardown(async () => {
  await raw.quit()
  await Promise.all([main.stop(), api.stop()])
})

const key = randomBytes(32)

async function start (t: Test, withRedis?: { keyPrefix: string }) {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env: { SESSION_SECRET_KEY: key.toString('hex') } },
    oauth: {
      providers: {
        main: { provider: { issuer: main.issuer }, clientId: 'suite-client', clientSecret: 'main-secret', scope: ['openid', 'profile'] },
        api: { provider: { authorizeUrl: api.endpoints.authorize, tokenUrl: api.endpoints.token }, clientId: 'api-client', clientSecret: 'api-secret', scope: ['accounting'] }
      },
      callbackUri: `${origin}/callback`,
      timeout: 2000
    },
    ...(withRedis !== undefined && { redis: { url: redis.url, keyPrefix: withRedis.keyPrefix } })
  })
  app.get<{ Params: { name: string } }>('/api/token/:name', async (request) => ({ fp: fingerprint(await request.tokens.for(request.params.name).accessToken()) }))
  await app.ready()
  return { app, logs, browser: () => new HttpBrowser(origin) }
}

function pad (t: Test, server: OidcServer, sizes: { access?: number, id?: number }): void {
  server.padTokens(sizes)
  t.teardown(() => server.padTokens(null))
}

t.test('in the cookie: two providers\' large tokens are chunked, each Set-Cookie within 4096 bytes', async (t) => {
  const env = await start(t)
  pad(t, main, { access: 2048, id: 3072 })
  pad(t, api, { access: 1024 })
  const b = env.browser()
  t.equal((await b.login('/login')).callback.status, 302)
  const connect = await b.login('/login/api')
  t.equal(connect.callback.status, 302)
  t.ok(connect.callback.setCookies.filter((l) => l.startsWith('__Host-session')).length >= 2, 'the session is chunked')
  for (const line of b.allSetCookies) t.ok(Buffer.byteLength(line) <= 4096, `Set-Cookie of ${Buffer.byteLength(line)} bytes`)
  const issued = new Set([...main.issued(), ...api.issued()].map(fingerprint))
  for (const name of ['main', 'api']) {
    const res = await b.request(`/api/token/${name}`)
    t.equal(res.status, 200)
    t.ok(issued.has(res.json().fp), `${name}'s large token reads back intact`)
  }
  env.logs.assertNoSecrets(t, [...main.issued(), ...api.issued()])
})

t.test('in the cookie: more than a browser sends back is FSS_SESSION_TOO_LARGE naming Redis, and the login is kept', async (t) => {
  const env = await start(t)
  pad(t, main, { access: 3072, id: 3072 })
  pad(t, api, { access: 6144 })
  const b = env.browser()
  t.equal((await b.login('/login')).callback.status, 302)
  const connect = await b.login('/login/api')
  t.equal(connect.callback.status, 500)
  t.equal(connect.callback.json().code, 'FSS_SESSION_TOO_LARGE')
  t.match(connect.callback.json().message, /redis/i, 'the error says where large tokens belong')
  t.notOk(connect.callback.setCookies.some((l) => l.startsWith('__Host-session') && !/Max-Age=0/.test(l)), 'no session cookie written')
  t.equal((await b.request('/api/token/main')).status, 200, 'the login is as it was')
  t.equal((await b.request('/api/token/api')).json().code, 'FSS_TOKEN_MISSING', 'and the connect stored nothing')
})

t.test('in Redis: each provider\'s tokens are a record of their own; the cookie holds references only', async (t) => {
  const prefix = `prov${randomBytes(4).toString('hex')}:`
  const env = await start(t, { keyPrefix: prefix })
  pad(t, main, { access: 3072, id: 3072 })
  pad(t, api, { access: 6144 })
  const b = env.browser()
  await b.login('/login')
  t.equal((await raw.keys(`${prefix}tok:*`)).length, 1, 'the login\'s record')
  const connect = await b.login('/login/api')
  t.equal(connect.callback.status, 302, 'tokens too large for any cookie fit in Redis')
  t.equal((await raw.keys(`${prefix}tok:*`)).length, 2, 'a second record for the connected provider')
  t.ok(connect.callback.setCookies.filter((l) => l.startsWith('__Host-session')).length === 1, 'one small session cookie')
  for (const name of ['main', 'api']) t.equal((await b.request(`/api/token/${name}`)).status, 200, `${name}'s token reads back`)
  const csrfFree = await b.request('/disconnect/api', { method: 'POST' })
  t.same(csrfFree.json(), { disconnected: true, revoked: false })
  t.equal((await raw.keys(`${prefix}tok:*`)).length, 1, 'disconnecting deletes that provider\'s record only')
  t.equal((await b.request('/api/token/main')).status, 200)
  await b.request('/logout', { method: 'POST' })
  t.equal((await raw.keys(`${prefix}tok:*`)).length, 0, 'logout deletes every record')
  env.logs.assertNoSecrets(t, [...main.issued(), ...api.issued()])
})
