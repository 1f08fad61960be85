// Registration: options checked once with the option named, the dev-only
// backup, pluggable store and cross-instance lock, and wiring errors.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyRequest } from 'fastify'
import FakeTimers from '@sinonjs/fake-timers'
import session from '../plugins/session.ts'
import oauthTokens, { unconfiguredOAuthInfo, type StoredToken, type TokenStore } from '../plugins/oauth-tokens.ts'
import oauthRoutes from '../routes/oauth.ts'
import { fingerprint } from '../lib/digest.ts'
import { resolveOAuthOptions } from '../lib/oauth/options.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp } from './fixtures/oauth-app.ts'
import { build, tempDir } from './helper.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

const base = () => ({
  provider: { authorizeUrl: `${oidc.issuer}/authorize`, tokenUrl: `${oidc.issuer}/token` },
  clientId: 'id',
  clientSecret: 'secret-not-in-messages',
  callbackUri: 'https://app.example/callback'
})

t.test('invalid options fail registration naming the option, never a value', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ clientId: '' }, /oauth\.clientId/],
    [{ redirectAfterLogin: '//evil.example' }, /oauth\.redirectAfterLogin/],
    [{ redirectAfterLogin: 'https://evil.example' }, /oauth\.redirectAfterLogin/],
    [{ callbackUri: '/callback' }, /oauth\.callbackUri/],
    [{ callbackUri: 'https://app.example/callback#x' }, /oauth\.callbackUri/],
    [{ callbackUri: 'https://app.example/callback#' }, /oauth\.callbackUri/],
    [{ refreshSkew: -1 }, /oauth\.refreshSkew/],
    [{ assumedLifetime: 31_622_401 }, /oauth\.assumedLifetime/],
    [{ loginPath: 'login' }, /oauth\.loginPath/],
    [{ provider: { issuer: 'not a url' } }, /oauth\.provider/],
    [{ clientSecrets: 'typo' }, /oauth/],
    [{ store: { get: () => null } }, /oauth\.store/],
    [{ store: null }, /oauth\.store/],
    [{ refreshLock: {} }, /oauth\.refreshLock/],
    [{ refreshLock: { refresh: async () => null, outlive: 5000 } }, /oauth\.refreshLock/],
    [{ revokeOnLogout: true }, /oauth\.provider\.revokeUrl/]
  ]
  for (const [patch, where] of cases) {
    const err = t.throws(() => resolveOAuthOptions({ ...base(), ...patch })) as Error & { code: string }
    t.equal(err.code, 'FSS_OPTIONS_INVALID')
    t.match(err.message, where)
    t.notMatch(err.message, /secret-not-in-messages/)
  }
  const app = await build(t)
  await app.register(session, { key: randomBytes(32) })
  app.register(oauthTokens, { ...base(), clientId: '' })
  await t.rejects(async () => { await app.ready() }, { code: 'FSS_OPTIONS_INVALID' })
})

t.test('the plugin needs the session plugin, and the routes need the plugin', async (t) => {
  const alone = await build(t)
  alone.register(oauthTokens, base())
  await t.rejects(async () => { await alone.ready() }, /fastify-session-suite\/session/)
  const routes = await build(t)
  routes.register(oauthRoutes)
  // Declared with fastify-plugin's `dependencies`: Fastify names what is missing.
  await t.rejects(async () => { await routes.ready() }, { code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED', message: /fastify-session-suite\/oauth-tokens/ })
})

t.test('an unreachable discovery issuer fails start-up', async (t) => {
  const dead = await startOidcServer()
  const issuer = dead.issuer
  await dead.stop()
  const app = await build(t)
  await app.register(session, { key: randomBytes(32) })
  app.register(oauthTokens, { ...base(), provider: { issuer } })
  await t.rejects(async () => { await app.ready() }, /discovery/)
})

t.test('oauthInfo shows policy and provider, never the client secret', async (t) => {
  const { app } = await startOAuthApp(t, oidc)
  const text = JSON.stringify(app.oauthInfo)
  t.notMatch(text, /suite-client-secret/)
  t.match(app.oauthInfo, { configured: true, providerKind: 'explicit', lastRefreshFailure: null, policy: { pkce: 'S256', refreshSkew: 60, assumedLifetime: 3600, stateMaxAge: 600, tokenBackup: false } })
  t.same(unconfiguredOAuthInfo().configured, false)
  t.same(unconfiguredOAuthInfo().provider, null)
})

t.test('the assumed lifetime is at most 366 days, and a token stored under the longest one reads back', async (t) => {
  // A longer one was accepted and every token stating no expiry was stored, then refused on read.
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { browser } = await startOAuthApp(t, oidc, { assumedLifetime: 31_622_400 })
  const b = browser()
  const stored = await b.request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'no-expiry-stated', token_type: 'Bearer' }) })
  t.equal(stored.status, 200)
  const meta = (await b.request('/api/meta')).json().meta
  t.match(meta, { expiresIn: 31_622_400, expiresAssumed: true }, 'read back: 366 days, assumed')
})

t.test('request.tokens.store() refuses an invalid token with a coded 502', async (t) => {
  const { browser } = await startOAuthApp(t, oidc)
  const res = await browser().request('/api/store', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'value-not-echoed', token_type: 'MAC' }) })
  t.equal(res.status, 502)
  t.equal(res.json().code, 'FSS_TOKEN_INVALID')
  t.notMatch(res.text, /value-not-echoed/)
})

t.test('a custom store and a cross-instance refresh lock are used', async (t) => {
  const tokens = new Map<string, StoredToken>()
  const id = (r: FastifyRequest): string => String(r.headers['x-user'])
  const store: TokenStore = {
    get: async (r) => tokens.get(id(r)) ?? null,
    set: async (r, token) => { tokens.set(id(r), token) },
    delete: async (r) => { tokens.delete(id(r)) }
  }
  const locked: string[] = []
  const refreshLock = { refresh: async <T>(rt: string, fn: () => Promise<T>): Promise<T> => { locked.push(fingerprint(rt)); return await fn() } }
  const { browser } = await startOAuthApp(t, oidc, { store, refreshLock })
  const b = browser()
  const headers = { 'x-user': 'alice', 'content-type': 'application/json' }
  await b.request('/api/store', { method: 'POST', headers, body: JSON.stringify({ access_token: 'alice-access', token_type: 'Bearer', expires_in: 0, refresh_token: 'alice-refresh' }) })
  t.equal(tokens.get('alice')?.access_token, 'alice-access')
  const res = await b.request('/api/token', { headers })
  t.equal(res.status, 200)
  t.same(locked, [fingerprint('alice-refresh')], 'the refresh went through the lock')
  t.equal(tokens.get('alice')?.refresh_token !== undefined, true)
  const cleared = await b.request('/api/clear', { method: 'POST', headers: { 'x-user': 'alice' } })
  t.same(cleared.json(), { cleared: true })
  t.notOk(tokens.has('alice'))
})

t.test('the token backup is refused in production', async (t) => {
  const saved = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { process.env.NODE_ENV = saved })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(session, { key: randomBytes(32) })
  app.register(oauthTokens, { ...base(), tokenBackup: { file: '/tmp/never-written.json' } })
  await t.rejects(async () => { await app.ready() }, { code: 'FSS_TOKEN_BACKUP_IN_PRODUCTION' })
})

t.test('the dev token backup is a 0600 file of metadata and fingerprints', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'tokens.json')
  const { app, browser, logs } = await startOAuthApp(t, oidc, { tokenBackup: { file } })
  t.equal(app.oauthInfo.policy?.tokenBackup, true)
  const b = browser()
  await b.login()
  const info = await stat(file)
  t.equal((info.mode & 0o777).toString(8), '600')
  const text = await readFile(file, 'utf8')
  for (const value of oidc.issued()) t.notOk(text.includes(value), 'no token value in the backup')
  const doc = JSON.parse(text)
  t.match(doc.token, { tokenType: 'Bearer', hasRefreshToken: true, fingerprints: { access_token: /^[0-9a-f]{8}$/, refresh_token: /^[0-9a-f]{8}$/, id_token: /^[0-9a-f]{8}$/ } })
  t.ok(oidc.issued().some((v) => fingerprint(v) === doc.token.fingerprints.access_token))
  await b.request('/logout', { method: 'POST' })
  t.same(JSON.parse(await readFile(file, 'utf8')).token, null, 'logout clears the backup')
  logs.assertNoSecrets(t, oidc.issued())
})

t.test('a backup that cannot be written is logged, not fatal', async (t) => {
  const dir = await tempDir(t)
  const { browser, logs } = await startOAuthApp(t, oidc, { tokenBackup: { file: join(dir, 'missing-dir', 'tokens.json') } })
  const flow = await browser().login()
  t.equal(flow.callback.status, 302)
  t.ok(logs.lines.some((l) => l.includes('token backup not written') && l.includes('ENOENT')))
})
