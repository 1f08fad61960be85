// No URL the suite shows (/health, the debug routes, oauthInfo) or logs carries
// userinfo, a query string or a fragment.
import t from 'tap'
import fc from 'fast-check'
import { join } from 'node:path'
import sessionSuite from '../index.ts'
import { displayUrl, displayPath, requestForLog } from '../lib/display-url.ts'
import { startOidcServer } from './fixtures/oidc-server.ts'
import { build, captureLogs, tempDir } from './helper.ts'

t.test('provider URLs with user:password@ and a query are shown without them, on /health, the debug routes and in the log', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  const withSecrets = (path: string): string => {
    const url = new URL(path, oidc.issuer)
    url.username = 'operator'
    url.password = 'hunter2-pass'
    url.search = '?api_key=query-secret'
    return url.href
  }
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(sessionSuite, {
    secret: { keyFile: join(await tempDir(t), 'secret.key'), env: {} },
    oauth: { provider: { authorizeUrl: withSecrets('/authorize'), tokenUrl: withSecrets('/token') }, clientId: 'c', clientSecret: 's', callbackUri: 'http://127.0.0.1/callback' },
    debug: true
  })
  await app.ready()
  const shown = new URL(oidc.issuer).origin
  t.equal(app.oauthInfo.provider, shown, 'oauthInfo.provider is scheme, host and port')
  const health = await app.inject('/health')
  t.match(health.json().checks.find((c: { name: string }) => c.name === 'oauth').detail, `${shown}: configured`)
  const flow = await app.inject('/api/oauth/test-flow')
  t.equal(flow.json().provider, shown)
  for (const text of [health.body, flow.body, (await app.inject('/api/session/debug')).body, cap.lines.join('\n')]) {
    t.notMatch(text, /hunter2-pass|operator|query-secret|api_key/)
  }
})

t.test('an OpenID Connect issuer with user:password@ is refused at start-up, without echoing it', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  const issuer = new URL(oidc.issuer)
  issuer.username = 'operator'
  issuer.password = 'hunter2-pass'
  const app = await build(t)
  const err = await (async () => {
    await app.register(sessionSuite, {
      secret: { keyFile: join(await tempDir(t), 'secret.key'), env: {} },
      oauth: { provider: { issuer: issuer.href }, clientId: 'c', clientSecret: 's', callbackUri: 'http://127.0.0.1/callback' }
    })
    await app.ready()
  })().then(() => null, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FSS_OPTIONS_INVALID')
  t.notMatch(`${err?.message ?? ''}${err?.stack ?? ''}`, /hunter2-pass|operator/, 'the credentials are not echoed')
})

t.test('the request log of the health and debug routes shows paths, never the query', async (t) => {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'info', stream: cap.stream } })
  await app.register(sessionSuite, { secret: { keyFile: join(await tempDir(t), 'secret.key'), env: {} }, debug: true })
  await app.ready()
  await app.inject('/health?token=health-query-value')
  await app.inject('/api/session/test-persistence?nonce=debug-query-value#frag')
  const urls = cap.lines.map((l) => JSON.parse(l)).filter((l) => l.req !== undefined).map((l) => l.req.url)
  t.same(urls, ['/health', '/api/session/test-persistence'])
  t.notMatch(cap.lines.join('\n'), /query-value/)
})

t.test('displayUrl and displayPath keep exactly the scheme, host, port and path (fast-check)', async (t) => {
  const userinfo = fc.option(fc.tuple(fc.webSegment(), fc.webSegment()).map(([u, p]) => `${u}:${p}@`), { nil: '' })
  const url = fc.tuple(fc.webUrl({ withQueryParameters: true, withFragments: true }), userinfo).map(([u, info]) => u.replace('://', `://${info}`))
    // An empty user or password can join the generated authority into text no URL parser accepts (`http://://:@a.aa`).
    .filter((raw) => URL.canParse(raw))
  fc.assert(fc.property(url, (raw) => {
    const shown = displayUrl(raw)
    const a = new URL(raw)
    const b = new URL(shown)
    const authority = shown.slice(a.protocol.length + 2).split('/')[0]
    return b.username === '' && b.password === '' && b.search === '' && b.hash === '' && !/[?#]/.test(shown) && !authority.includes('@') &&
      b.protocol === a.protocol && b.host === a.host && b.pathname === a.pathname
  }), { numRuns: 500 })
  fc.assert(fc.property(fc.webPath(), fc.webQueryParameters(), fc.webFragments(), (path, query, fragment) => {
    const p = path === '' ? '/' : path
    return displayPath(`${p}?${query}#${fragment}`) === p && displayPath(`${p}#${fragment}`) === p && displayPath(p) === p
  }), { numRuns: 300 })
  t.same(requestForLog({ method: 'GET', url: '/a?b=c', host: 'h', ip: '127.0.0.1' }), { method: 'GET', url: '/a', host: 'h', remoteAddress: '127.0.0.1' })
  t.equal(displayUrl('https://u:p@idp.example/?q#f'), 'https://idp.example')
  t.equal(displayUrl('https://idp.example/realms/x/?q'), 'https://idp.example/realms/x/')
  t.throws(() => displayUrl('not a url'), TypeError)
})
