// Whatever a token store answers is checked again before it is used: a
// session cookie written by an older release or by the application itself,
// or an application's own `oauth.store`. Anything that is not exactly a token
// the suite could have stored reads as "no token" (a login is asked for, never
// a 500), is logged without its value, and is counted.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { build, captureLogs, type LogCapture } from './helper.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import session from '../plugins/session.ts'
import oauthTokens, { type TokenStore } from '../plugins/oauth-tokens.ts'
import { isStoredToken } from '../lib/oauth/token.ts'
import { SESSION_TOKEN_FIELD } from '../lib/oauth/store.ts'
import { setSuiteField } from '../lib/session/suite-fields.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

const nowS = (): number => Math.floor(Date.now() / 1000)
const valid = { access_token: 'stored-access-value', token_type: 'Bearer', expires_at: nowS() + 600, expires_in: 600 }

// [what, the value a store answers]
const bad: Array<[string, unknown]> = [
  ['a string', 'stored-access-value'],
  ['a number', 5],
  ['an array', [valid]],
  ['an empty object', {}],
  ['an extra field', { ...valid, user: 'x' }],
  ['expires_at centuries ahead', { ...valid, expires_at: 9_999_999_999 }],
  ['expires_at as a Date string (an older shape)', { ...valid, expires_at: new Date().toISOString() }],
  ['token_type bearer', { ...valid, token_type: 'bearer' }],
  ['an empty access_token', { ...valid, access_token: '' }],
  ['CR LF in the access_token', { ...valid, access_token: 'stored-access-value\r\nX-Injected: 1' }],
  ['an id_token of 8193 characters', { ...valid, id_token: 'i'.repeat(8193) }],
  ['a negative expires_in', { ...valid, expires_in: -1 }]
]

interface Rig { app: FastifyInstance, logs: LogCapture }

async function rig (t: Test, store?: TokenStore): Promise<Rig> {
  const logs = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: logs.stream } })
  await app.register(session, { key: randomBytes(32), secure: false })
  await app.register(oauthTokens, {
    provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token },
    clientId: 'stored',
    clientSecret: 'stored-secret',
    callbackUri: 'http://127.0.0.1/callback',
    ...(store !== undefined && { store })
  })
  // Whatever the suite's token field may hold once decrypted (a cookie sealed by an older release, a bug).
  app.post('/raw', async (request) => {
    setSuiteField(request.session, SESSION_TOKEN_FIELD, (request.body as { value: unknown }).value)
    return { set: true }
  })
  app.get('/meta', async (request) => ({ meta: await request.tokens.metadata() }))
  app.get('/token', async (request) => ({ ok: (await request.tokens.accessToken()).length > 0 }))
  await app.ready()
  return { app, logs }
}

function cookieOf (res: { cookies: Array<{ name: string, value: string }> }): Record<string, string> {
  return Object.fromEntries(res.cookies.map((c) => [c.name, c.value]))
}

t.test('the session cookie store: a field that is not a valid token reads as no token, counted', async (t) => {
  const { app, logs } = await rig(t)
  const counters = app.oauthInfo.counters
  for (const [what, value] of bad) {
    const cookies = cookieOf(await app.inject({ method: 'POST', url: '/raw', payload: { value } }))
    const before = counters.rejectedStored
    t.same((await app.inject({ url: '/meta', cookies })).json(), { meta: null }, what)
    const token = await app.inject({ url: '/token', cookies })
    t.equal(token.statusCode, 401, `${what}: a login is asked for`)
    t.equal(token.json().code, 'FSS_TOKEN_MISSING')
    t.equal(counters.rejectedStored, before + 2, `${what}: counted on each read`)
  }
  const good = cookieOf(await app.inject({ method: 'POST', url: '/raw', payload: { value: valid } }))
  t.equal((await app.inject({ url: '/meta', cookies: good })).json().meta.expiresIn > 0, true, 'a valid token is used')
  t.ok(logs.lines.some((l) => l.includes('"event":"stored-token-invalid"')))
  logs.assertNoSecrets(t, ['stored-access-value', 'X-Injected'])
})

t.test('an application\'s own store: the same check, whatever it answers', async (t) => {
  let answer: unknown = null
  const store: TokenStore = {
    async get () { return answer as never },
    async set () {},
    async delete () {}
  }
  const { app } = await rig(t, store)
  for (const [what, value] of [...bad, ['undefined', undefined] as [string, unknown]]) {
    answer = value
    t.same((await app.inject({ url: '/meta' })).json(), { meta: null }, what)
  }
  t.equal(app.oauthInfo.counters.rejectedStored, bad.length, 'counted, undefined (no token) aside')
  // Property: any JSON value (and token-like objects) is a valid token or no token; never a 5xx.
  const tokenLike = fc.record({
    access_token: fc.oneof(fc.string(), fc.constant('at')),
    token_type: fc.constantFrom('Bearer', 'bearer'),
    expires_at: fc.oneof(fc.integer({ min: -5, max: 2 ** 36 }), fc.constant(nowS() + 60)),
    refresh_token: fc.string(),
    scope: fc.string(),
    extra: fc.jsonValue()
  }, { requiredKeys: [] })
  await fc.assert(fc.asyncProperty(fc.oneof(fc.jsonValue(), tokenLike), async (value) => {
    answer = value
    const res = await app.inject({ url: '/meta' })
    return res.statusCode === 200 && (isStoredToken(value) ? res.json().meta !== null : res.json().meta === null)
  }), { numRuns: 300 })
  t.pass('300 answers')
})
