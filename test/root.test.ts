import t from 'tap'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import sessionSuite, * as api from '../index.ts'
import { build, captureLogs, tempDir } from './helper.ts'
import { startOidcServer } from './fixtures/oidc-server.ts'

type Test = Parameters<typeof build>[0]
const boot = (p: PromiseLike<unknown>) => Promise.resolve(p)
const keyFileIn = async (t: Test) => join(await tempDir(t), 'secret.key')

t.test('one register call brings keys, sessions, health; OAuth routes only when asked', async (t) => {
  const app = await build(t)
  await app.register(sessionSuite, { appName: 'root-test', secret: { keyFile: await keyFileIn(t), env: {} } })
  await app.ready()
  for (const name of ['fastify-session-suite', 'fastify-session-suite/secret-keys', 'fastify-session-suite/session', 'fastify-session-suite/health']) {
    t.ok(app.hasPlugin(name), name)
  }
  t.notOk(app.hasPlugin('fastify-session-suite/oauth-tokens'))
  t.notOk(app.hasPlugin('fastify-session-suite/debug'), 'debug is off by default')
  t.equal(app.oauthInfo.configured, false, 'oauthInfo has its one shape without OAuth')
  t.equal((await app.inject('/login')).statusCode, 404)
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal(app.sessionInfo.policy.cookieName, '__Host-session')
  t.equal(app.secretKeys.count, 1)
})

t.test('with `oauth` the login routes exist and health reports the provider', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(sessionSuite, {
    secret: { keyFile: await keyFileIn(t), env: {} },
    oauth: { provider: { issuer: oidc.issuer }, clientId: 'root', clientSecret: 's3cret-root-client', callbackUri: 'http://127.0.0.1/callback' },
    debug: true
  })
  let refreshes = 0
  app.get('/refresh', async (request) => {
    // A new refresh token each time: a refused one is remembered (backoff) and not sent again.
    refreshes++
    await request.tokens.store({ access_token: `stale-access-token-${refreshes}`, token_type: 'Bearer', expires_at: 1000, refresh_token: `dead-refresh-token-${refreshes}` })
    return { token: await request.tokens.accessToken() }
  })
  await app.ready()
  t.ok(app.hasPlugin('fastify-session-suite/oauth-tokens'))
  t.equal((await app.inject('/login')).statusCode, 302)
  let res = await app.inject('/health')
  t.equal(res.json().status, 'healthy')
  t.match(res.json().checks.at(-1), { name: 'oauth', status: 'pass', detail: `${oidc.issuer}: configured, no refresh failure` })

  // A refresh token the provider refuses is one user's grant, not the provider's health: counted only.
  oidc.substitute({ status: 400, json: { error: 'invalid_grant' } })
  t.equal((await app.inject('/refresh')).statusCode, 401)
  res = await app.inject('/health')
  t.equal(res.json().status, 'healthy')
  t.equal(app.oauthInfo.counters.failures.rejected, 1)
  // A provider that fails shows up as a warning with its code and time.
  oidc.substitute({ status: 503, json: { error: 'temporarily_unavailable' } })
  t.equal((await app.inject('/refresh')).statusCode, 502)
  res = await app.inject('/health')
  t.equal(res.json().status, 'degraded')
  t.match(res.json().checks.at(-1), { name: 'oauth', status: 'warn', detail: /last refresh failed with FSS_TOKEN_PROVIDER_ERROR at \d{4}-/ })
  cap.assertNoSecrets(t, ['stale-access-token-1', 'dead-refresh-token-1', 'stale-access-token-2', 'dead-refresh-token-2', 's3cret-root-client'])
})

t.test('an invalid option fails registration with FSS_OPTIONS_INVALID naming it', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ debgu: true }, /debgu/],
    [{ appName: '' }, /option appName/],
    [{ appName: '../up' }, /appName/],
    [{ session: 'strict' }, /option session:/],
    [{ health: 'yes' }, /option health:/],
    [{ session: { idleTimeout: 1 } }, /session\.idleTimeout/],
    [{ secret: { keyFile: '' } }, /secret\.keyFile/],
    [{ debug: { allow: 'everyone' } }, /debug\.allow/],
    [{ oauth: { clientId: 'x' } }, /oauth\./],
    [{ csrf: 'on' }, /option csrf:/],
    [{ csrf: { sessionKey: '' } }, /csrf\.sessionKey/],
    [{ oauth: { provider: { authorizeUrl: 'http://127.0.0.1:9/a', tokenUrl: 'http://127.0.0.1:9/t' }, clientId: 'x', clientSecret: '', callbackUri: 'http://127.0.0.1:9/cb', redirectAfterLogout: '//evil.example' } }, /oauth\.redirectAfterLogout/]
  ]
  for (const [opts, name] of cases) {
    const app = await build(t)
    await t.rejects(boot(app.register(sessionSuite, opts as api.SessionSuiteOptions).ready()), { code: 'FSS_OPTIONS_INVALID', message: name }, JSON.stringify(opts))
  }
})

t.test('the keys have one source: a second one is refused at start-up, naming both options, and nothing is loaded', async (t) => {
  const [a, b] = [await keyFileIn(t), await keyFileIn(t)]
  const cases: Array<[api.SessionSuiteOptions, RegExp]> = [
    // As a new user would try it: which file wins? Neither; the answer names both options.
    [{ secret: { keyFile: a, env: {} }, session: { secret: { keyFile: b, env: {} } } } as api.SessionSuiteOptions, /option session\.secret: conflicts with `secret`/],
    [{ session: { secret: { keyFile: b, env: {} } } } as api.SessionSuiteOptions, /option session\.secret: .*the `secret` option/],
    [{ secret: { keyFile: a, env: {} }, session: { key: randomBytes(32) } }, /option session\.key: conflicts with `secret`/]
  ]
  for (const [opts, message] of cases) {
    const app = await build(t)
    await t.rejects(boot(app.register(sessionSuite, opts).ready()), { code: 'FSS_OPTIONS_INVALID', message }, message.source)
  }
  const { access } = await import('node:fs/promises')
  for (const file of [a, b]) await t.rejects(access(file), { code: 'ENOENT' }, 'no key file was created')
})

t.test('with session.key the suite needs no keyring', async (t) => {
  const app = await build(t)
  await app.register(sessionSuite, { session: { key: randomBytes(32) }, logLevel: 'warn' } as api.SessionSuiteOptions)
  await app.ready()
  t.notOk(app.hasPlugin('fastify-session-suite/secret-keys'))
  t.match((await app.inject('/health')).json().checks[0], { name: 'secret-key', status: 'pass', detail: /passed to the session plugin/ })
})

t.test('each part is usable alone through its named export', async (t) => {
  t.equal(typeof api.secretKeys, 'function')
  t.equal(typeof api.oauthTokens, 'function')
  t.equal(typeof api.oauthRoutes, 'function')
  t.equal(typeof api.csrf, 'function')
  t.equal(typeof api.redisTokenStore, 'function')
  t.same([api.CSRF_HEADER, api.CSRF_FIELD], ['x-csrf-token', '_csrf'])
  t.equal(typeof api.getSessionDetails, 'function')
  t.equal(typeof api.rotateKeyFile, 'function', 'key rotation is public API (the CLI uses the same function)')
  t.equal(api.errors.FSS_DEBUG_FORBIDDEN.name, 'FastifyError')
  const app = await build(t)
  await app.register(api.session, { key: randomBytes(32), secure: false })
  await app.register(api.debug, { prefix: '/dbg' })
  await app.ready()
  t.notOk(app.hasPlugin('fastify-session-suite'), 'no root plugin')
  const res = await app.inject({ method: 'POST', url: '/dbg/session/test-persistence' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['set-cookie'], /^session=/)
  const debug = (await app.inject('/dbg/session/debug')).json()
  t.equal(debug.key, null, 'no keyring: the debug route says so')
  t.same((await app.inject('/dbg/oauth/test-flow')).json().configured, false)
})

t.test('the debug routes alone answer truthfully that nothing is registered', async (t) => {
  const app = await build(t)
  await app.register(api.debug)
  const res = await app.inject('/api/session/debug')
  t.same(res.json(), { key: null, cookie: null, session: { fields: [], createdAt: null, expiresAt: null, encodedBytes: 0, chunks: 0, rejected: null } })
})
