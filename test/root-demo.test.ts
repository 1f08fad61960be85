// The demo's parts in-process (the browser test drives the whole process):
// its settings from the environment, the page, the development provider.
import t from 'tap'
import { join, resolve } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { demoConfig, DemoConfigError } from '../examples/demo-config.ts'
import { buildDemoApp, discoverUserinfo } from '../examples/demo-app.ts'
import { renderPage } from '../examples/demo-page.ts'
import { startDevProvider } from '../examples/dev-provider.ts'
import { tempDir } from './helper.ts'
import { startOidcServer } from './fixtures/oidc-server.ts'
import { startRedis } from './fixtures/redis-server.ts'

t.test('with no OAuth variables the demo runs its own login provider on 3001, an API provider on 3002, and listens on 3000', async (t) => {
  t.same(demoConfig({}), {
    port: 3000,
    keyFile: resolve('.fss-demo/secret.key'),
    provider: { kind: 'embedded', port: 3001, user: { sub: 'ada', name: 'Ada Lovelace' }, api: { port: 3002, user: { sub: 'ada-books', name: 'Analytical Engines Ltd' } } }
  })
  t.match(demoConfig({ PORT: '0', FSS_DEMO_IDP_PORT: '0', FSS_DEMO_API_IDP_PORT: '0', FSS_DEMO_DIR: '/tmp/x', FSS_DEMO_USER: 'bob', FSS_DEMO_USER_NAME: 'Bob' }),
    { port: 0, keyFile: '/tmp/x/secret.key', provider: { port: 0, user: { sub: 'bob', name: 'Bob' }, api: { port: 0, user: { sub: 'bob-books' } } } })
  t.equal(demoConfig({ FSS_DEMO_KEY_FILE: '/k/secret.key' }).keyFile, '/k/secret.key')
  t.same(demoConfig({ REDIS_URL: 'redis://127.0.0.1:6390/2' }).redis, { url: 'redis://127.0.0.1:6390/2' }, 'REDIS_URL puts the tokens in Redis')
  t.notOk('redis' in demoConfig({ REDIS_URL: '' }), 'an empty REDIS_URL is unset')
  t.same(demoConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001' }).redis, { cluster: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }] }, 'REDIS_CLUSTER_NODES: a Redis Cluster')
  t.same(demoConfig({ REDIS_SENTINELS: '10.0.0.3:26379', REDIS_SENTINEL_NAME: 'main' }).redis, { sentinels: [{ host: '10.0.0.3', port: 26379 }], name: 'main' }, 'REDIS_SENTINELS + REDIS_SENTINEL_NAME: Sentinel')
  t.throws(() => demoConfig({ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:2' }), { code: 'FSS_OPTIONS_INVALID' }, 'two topologies at once stop the demo')
})

t.test('OAUTH_* variables select a real provider', async (t) => {
  t.match(demoConfig({ OAUTH_ISSUER: 'https://id.example', OAUTH_CLIENT_ID: 'app', OAUTH_CLIENT_SECRET: 's', OAUTH_CALLBACK_URL: 'https://app.example/callback' }), {
    callbackUrl: 'https://app.example/callback',
    provider: { kind: 'external', oauth: { provider: { issuer: 'https://id.example' }, clientId: 'app', clientSecret: 's', scope: ['openid', 'profile'] } }
  })
  t.same(demoConfig({ OAUTH_AUTHORIZE_URL: 'https://id.example/a', OAUTH_TOKEN_URL: 'https://id.example/t', OAUTH_REVOKE_URL: 'https://id.example/r', OAUTH_CLIENT_ID: 'app', OAUTH_SCOPE: 'read  write', OAUTH_USERINFO_URL: 'https://id.example/me' }).provider, {
    kind: 'external',
    oauth: { provider: { authorizeUrl: 'https://id.example/a', tokenUrl: 'https://id.example/t', revokeUrl: 'https://id.example/r' }, clientId: 'app', clientSecret: '', scope: ['read', 'write'] },
    userinfoUrl: 'https://id.example/me'
  })
  t.same(demoConfig({ OAUTH_AUTHORIZE_URL: 'https://id.example/a', OAUTH_TOKEN_URL: 'https://id.example/t', OAUTH_CLIENT_ID: 'app' }).provider,
    { kind: 'external', oauth: { provider: { authorizeUrl: 'https://id.example/a', tokenUrl: 'https://id.example/t' }, clientId: 'app', clientSecret: '', scope: ['openid', 'profile'] } })
})

t.test('a wrong variable stops the demo with its name', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'http' }, /^PORT must be a port number/],
    [{ PORT: '70000' }, /^PORT/],
    [{ FSS_DEMO_IDP_PORT: '-1' }, /^FSS_DEMO_IDP_PORT/],
    [{ OAUTH_ISSUER: 'https://id.example' }, /^OAUTH_CLIENT_ID is required/],
    [{ OAUTH_TOKEN_URL: 'https://id.example/t', OAUTH_CLIENT_ID: 'app' }, /^OAUTH_AUTHORIZE_URL and OAUTH_TOKEN_URL go together/]
  ]
  for (const [env, message] of cases) {
    const err = (() => { try { demoConfig(env) } catch (e) { return e } })()
    t.type(err, DemoConfigError, JSON.stringify(env))
    t.match((err as Error | undefined)?.message, message)
  }
})

type Jar = Map<string, string>
function keep (jar: Jar, res: LightMyRequestResponse): void {
  for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
    if (c.maxAge === 0) jar.delete(c.name)
    else jar.set(c.name, c.value)
  }
}
async function login (app: FastifyInstance, jar: Jar): Promise<LightMyRequestResponse> {
  const start = await app.inject('/login')
  keep(jar, start)
  const back = new URL((await fetch(start.headers.location as string, { redirect: 'manual' })).headers.get('location') as string)
  const done = await app.inject({ url: back.pathname + back.search, cookies: Object.fromEntries(jar) })
  keep(jar, done)
  const page = await app.inject({ url: '/', cookies: Object.fromEntries(jar) })
  keep(jar, page)
  return page
}

t.test('the page shows who the development provider logged in, escaped', async (t) => {
  const provider = await startDevProvider(0, { sub: 'ada', name: '<b>Ada</b>' })
  t.teardown(() => provider.stop())
  t.match(provider.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(await discoverUserinfo(provider.issuer), `${provider.issuer}/userinfo`)
  const app = await buildDemoApp({
    origin: 'http://127.0.0.1:1',
    keyFile: join(await tempDir(t), 'secret.key'),
    oauth: { provider: { issuer: provider.issuer }, clientId: 'demo', clientSecret: '' },
    userinfoUrl: `${provider.issuer}/userinfo`,
    logger: false
  })
  t.teardown(() => app.close())
  const out = await app.inject('/')
  t.equal(out.headers['cache-control'], 'no-store')
  t.match(out.body, /data-state="logged-out".*href="\/login\?returnTo=%2F"/s, 'the login link sends this page as returnTo')
  const jar: Jar = new Map()
  const page = await login(app, jar)
  t.match(page.body, /data-state="logged-in">Logged in as <strong id="user">&lt;b&gt;Ada&lt;\/b&gt; <small>\(ada\)<\/small><\/strong> <small id="verified">/, 'the verified name, escaped')
  const csrf = /<form id="logout-form" method="post" action="\/logout"><input type="hidden" name="_csrf" value="([\w-]+)"><button/.exec(page.body)?.[1]
  t.ok(csrf, 'the log-out form carries a CSRF token')
  const [beforeSessions, sessionsSection] = page.body.split('<h2>Your sessions</h2>')
  t.notMatch(beforeSessions, /<script/, 'the log-out form works without script')
  t.equal(sessionsSection.match(/<li class="session" data-id="[\w-]{22}" data-current="true">/g)?.length, 1, '"Your sessions" lists this device, marked')
  t.match(sessionsSection, /id="sign-out-others"/)
  // A second device: each page lists both, its own marked, the other with a Sign out button.
  const phone: Jar = new Map()
  const phonePage = await login(app, phone)
  const phoneSessions = phonePage.body.split('<h2>Your sessions</h2>')[1]
  t.equal(phoneSessions.match(/<li class="session"/g)?.length, 2, 'both devices listed')
  t.equal(phoneSessions.match(/<button class="sign-out" type="button" data-id="[\w-]{22}">Sign out<\/button>/g)?.length, 1, 'the other one can be signed out')
  // The provider's UserInfo names the same user (for services that ask it).
  t.same(await (await fetch(`${provider.issuer}/userinfo`, { headers: { authorization: 'Bearer x' } })).json(), { sub: 'ada', name: '<b>Ada</b>' })
  // The user is kept in the session: the next page needs no provider call.
  await provider.stop()
  const again = await app.inject({ url: '/', cookies: Object.fromEntries(jar) })
  t.match(again.body, /&lt;b&gt;Ada/)
  const form = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
  const refused = await app.inject({ method: 'POST', url: '/logout', cookies: Object.fromEntries(jar), headers: form, payload: '' })
  t.equal(refused.statusCode, 403, 'a form without the token is refused')
  t.equal(refused.json().code, 'FSS_CSRF_INVALID')
  const logout = await app.inject({ method: 'POST', url: '/logout', cookies: Object.fromEntries(jar), headers: form, payload: `_csrf=${csrf}` })
  // RP-initiated logout: the browser is sent on to the provider's end-session endpoint.
  t.equal(logout.statusCode, 303, 'the form\'s urlencoded POST logs out here, then at the provider')
  t.match(logout.headers.location, `${provider.issuer}/endsession?`)
  keep(jar, logout)
  t.match((await app.inject({ url: '/', cookies: Object.fromEntries(jar) })).body, /data-state="logged-out"/)
})

t.test('with a provider that has no usable userinfo the page still shows the login', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  t.equal(await discoverUserinfo(`${oidc.issuer}/nothing-here/`), undefined)
  // A discovery document without a userinfo endpoint.
  const bare = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"issuer":"x"}') }).listen(0, '127.0.0.1')
  await once(bare, 'listening')
  t.teardown(() => new Promise((resolve) => bare.close(resolve)))
  t.equal(await discoverUserinfo(`http://127.0.0.1:${(bare.address() as AddressInfo).port}`), undefined, 'no userinfo_endpoint in the document')
  // A UserInfo endpoint that names the user.
  const named = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"sub":"ann","name":"Ann Named"}') }).listen(0, '127.0.0.1')
  await once(named, 'listening')
  t.teardown(() => new Promise((resolve) => named.close(resolve)))
  const cases = [
    [`http://127.0.0.1:${(named.address() as AddressInfo).port}/userinfo`, /<strong id="user">Ann Named <small>\(ann\)/],
    [`${oidc.issuer}/no-such-endpoint`, /Could not load the user: USERINFO_404/],
    // Nothing listens on port 1: fetch fails without an HTTP status.
    ['http://127.0.0.1:1/userinfo', /Could not load the user: error/],
    [undefined, /someone \(no user info\)/],
    [oidc.endpoints.userinfo, /<strong id="user">johndoe <small>\(johndoe\)/]
  ] as const
  for (const [userinfoUrl, expected] of cases) {
    const app = await buildDemoApp({
      origin: 'http://127.0.0.1:1',
      keyFile: join(await tempDir(t), 'secret.key'),
      // A plain OAuth 2 provider: no verified identity, so the demo asks UserInfo itself.
      oauth: { provider: { authorizeUrl: oidc.endpoints.authorize, tokenUrl: oidc.endpoints.token }, clientId: 'demo', clientSecret: '', scope: ['openid'] },
      ...(userinfoUrl !== undefined && { userinfoUrl }),
      logger: false
    })
    t.teardown(() => app.close())
    t.match((await login(app, new Map())).body, expected)
  }
})

t.test('the page states an expired token without a refresh token, and carries a CSRF token when given', async (t) => {
  const html = renderPage({
    user: null,
    token: { fields: ['access_token', 'token_type', 'expires_at'], tokenType: 'Bearer', expiresAt: 0, expiresIn: -1, expired: true, expiresAssumed: true, hasRefreshToken: false, hasIdToken: false, scopes: [] },
    problem: null,
    provider: 'https://id.example',
    csrfToken: 'a"b'
  })
  t.match(html, /1970-01-01T00:00:00.000Z \(expired\)/)
  t.match(html, /<th>refresh token<\/th><td>no<\/td>/)
  t.match(html, /<th>scopes<\/th><td>\(none\)<\/td>/)
  t.match(html, /<input type="hidden" name="_csrf" value="a&quot;b">/)
  t.notMatch(html, /class="problem"/)
  const named = renderPage({
    user: { sub: 'bob' },
    token: { fields: ['access_token'], tokenType: 'Bearer', expiresAt: 0, expiresIn: 1, expired: false, expiresAssumed: true, hasRefreshToken: true, hasIdToken: false, scopes: ['openid'] },
    problem: null,
    provider: 'https://id.example',
    csrfToken: null
  })
  t.match(named, /<strong id="user">bob <small>\(bob\)<\/small>/, 'a user without a name shows the subject')
  t.match(named, /<form id="logout-form" method="post" action="\/logout"><button/, 'no token, no hidden field')
  t.match(renderPage({ user: null, token: null, problem: null, provider: null, csrfToken: null }), /<small>with the identity provider<\/small>/)
  const api = renderPage({
    user: { sub: 'bob' },
    token: { fields: ['access_token'], tokenType: 'Bearer', expiresAt: 0, expiresIn: 1, expired: false, expiresAssumed: true, hasRefreshToken: true, hasIdToken: false, scopes: [] },
    problem: null,
    provider: null,
    csrfToken: null,
    connections: [{ name: 'api', label: 'API provider', login: false, token: { fields: ['access_token'], tokenType: 'Bearer', expiresAt: 0, expiresIn: 1, expired: false, expiresAssumed: true, hasRefreshToken: false, hasIdToken: false, scopes: [] }, account: { sub: 'acct-1' } }]
  })
  t.match(api, /<td class="account">acct-1<\/td>/, 'an account without a name shows its subject')
  t.match(api, /<form id="disconnect-api-form" method="post" action="\/disconnect\/api"><button/, 'a connection other than the login can be disconnected')
})

t.test('with two development providers the page logs in with one and connects the other, each with its button', async (t) => {
  const [loginProvider, apiProvider] = await Promise.all([startDevProvider(0, { sub: 'ada', name: 'Ada' }), startDevProvider(0, { sub: 'ada-books', name: 'Analytical <Engines>' })])
  t.teardown(async () => { await loginProvider.stop(); await apiProvider.stop() })
  const app = await buildDemoApp({
    origin: 'http://127.0.0.1:1',
    keyFile: join(await tempDir(t), 'secret.key'),
    oauth: { provider: { issuer: loginProvider.issuer }, clientId: 'demo', clientSecret: '', scope: ['openid', 'profile'] },
    apiProvider: { issuer: apiProvider.issuer, userinfoUrl: `${apiProvider.issuer}/userinfo` },
    logger: false
  })
  t.teardown(() => app.close())
  const jar: Jar = new Map()
  const page = await login(app, jar)
  t.match(page.body, /<h2 id="connection-login" data-connected="true">Login provider <small>\(logged in with\)/)
  t.match(page.body, /<a id="connect-api" class="button" href="\/login\/api\?returnTo=%2F">Connect API provider<\/a>/, 'the API provider has its connect button')
  // Connect from another page of the demo: the flow comes back there.
  const start = await app.inject({ url: '/login/api?returnTo=%2F%3Ftab%3D2', cookies: Object.fromEntries(jar) })
  keep(jar, start)
  const back = new URL((await fetch(start.headers.location as string, { redirect: 'manual' })).headers.get('location') as string)
  t.equal(back.pathname, '/callback/api')
  const done = await app.inject({ url: back.pathname + back.search, cookies: Object.fromEntries(jar) })
  keep(jar, done)
  t.equal(done.headers.location, '/?tab=2', 'back where the connect started')
  const connected = await app.inject({ url: '/?tab=2', cookies: Object.fromEntries(jar) })
  keep(jar, connected)
  t.match(connected.body, /Logged in as <strong id="user">Ada/, 'the login is unchanged')
  t.match(connected.body, /<h2 id="connection-api" data-connected="true">API provider<\/h2>/)
  t.match(connected.body, /<td class="account">Analytical &lt;Engines&gt;<\/td>/, 'onLogin kept the connected account')
  t.match(connected.body, /href="\/login\?returnTo=|action="\/disconnect\/api"/)
  const csrf = /<form id="disconnect-api-form" method="post" action="\/disconnect\/api"><input type="hidden" name="_csrf" value="([\w-]+)">/.exec(connected.body)?.[1]
  t.ok(csrf, 'the disconnect form carries a CSRF token')
  const form = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
  const disconnect = await app.inject({ method: 'POST', url: '/disconnect/api', cookies: Object.fromEntries(jar), headers: form, payload: `_csrf=${csrf}` })
  t.equal(disconnect.statusCode, 303)
  t.equal(disconnect.headers.location, '/')
  keep(jar, disconnect)
  const after = await app.inject({ url: '/', cookies: Object.fromEntries(jar) })
  t.match(after.body, /data-state="logged-in"/)
  t.match(after.body, /id="connect-api"/, 'disconnected: the connect button is back')
  const flow = (await app.inject({ url: '/api/oauth/test-flow', cookies: Object.fromEntries(jar) })).json()
  t.same(flow.providers.map((p: { name: string, tokenPresent: boolean }) => [p.name, p.tokenPresent]), [['login', true], ['api', false]])
})

t.test('with REDIS_URL the demo keeps tokens in Redis and /health reports it', async (t) => {
  const [redis, provider] = await Promise.all([startRedis(t), startDevProvider(0, { sub: 'ada', name: 'Ada' })])
  t.teardown(() => provider.stop())
  const app = await buildDemoApp({
    origin: 'http://127.0.0.1:1',
    keyFile: join(await tempDir(t), 'secret.key'),
    oauth: { provider: { issuer: provider.issuer }, clientId: 'demo', clientSecret: '' },
    redis: { url: redis.url },
    logger: false
  })
  t.teardown(() => app.close())
  t.ok(app.hasPlugin('fastify-session-suite/redis-token-store'))
  const jar: Jar = new Map()
  t.match((await login(app, jar)).body, /data-state="logged-in"/, 'the login works with the token in Redis')
  t.ok((jar.get('__Host-session') ?? '').length < 600, 'the cookie holds a reference and the identity, not the tokens')
  const health = (await app.inject('/health')).json()
  t.match(health.checks.find((c: { name: string }) => c.name === 'redis'), { status: 'pass' })
})
