import t from 'tap'
import { chmod, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { build, captureLogs, tempDir } from './helper.ts'

type Test = Parameters<typeof build>[0]
const boot = (p: PromiseLike<unknown>) => Promise.resolve(p)

async function suite (t: Test, opts: SessionSuiteOptions = {}, routes: (app: FastifyInstance) => void = () => {}) {
  const dir = await tempDir(t)
  const keyFile = join(dir, 'secret.key')
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(sessionSuite, { ...opts, secret: { keyFile, env: {}, ...opts.secret }, debug: opts.debug ?? true })
  routes(app)
  await app.ready()
  return { app, cap, keyFile }
}

const byName = (checks: Array<{ name: string, status: string, detail: string }>) =>
  Object.fromEntries(checks.map((c) => [c.name, c]))

t.test('a fresh install with a generated key file and the default cookie policy is healthy', async (t) => {
  const { app } = await suite(t)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['set-cookie'], undefined, 'no Set-Cookie')
  const body = res.json()
  t.equal(body.status, 'healthy')
  t.same(body.checks.map((c: { name: string }) => c.name), ['secret-key', 'key-file', 'cookie-policy', 'cookie-size', 'oauth'])
  const checks = byName(body.checks)
  t.match(checks['secret-key'], { status: 'pass', detail: 'generated, 1 key(s), 256-bit' })
  t.match(checks['key-file'], { status: 'pass', detail: 'key file mode 0600' })
  t.match(checks['cookie-policy'], { status: 'pass', detail: /^__Host-session: Secure=true, HttpOnly=true, SameSite=lax, Path=\/$/ })
  t.match(checks.oauth, { status: 'pass', detail: /not configured/ })
  t.notMatch(res.body, /secret\.key|\/tmp\//, 'no file path in a public answer')
})

t.test('a key from the environment has no key file to check', async (t) => {
  const { app } = await suite(t, { secret: { env: { SESSION_SECRET_KEY: randomBytes(32).toString('base64') } } })
  const checks = byName((await app.inject('/health')).json().checks)
  t.match(checks['secret-key'], { status: 'pass', detail: 'env:SESSION_SECRET_KEY, 1 key(s), 256-bit' })
  t.match(checks['key-file'], { status: 'pass', detail: 'no key file in use' })
})

t.test('a key file that became readable by others after start degrades health', async (t) => {
  const { app, keyFile } = await suite(t)
  await chmod(keyFile, 0o644)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'degraded')
  t.match(byName(res.json().checks)['key-file'], { status: 'warn', detail: /mode 0644 .*chmod 600/ })
})

t.test('a key file deleted after start degrades health: the next start would log everyone out', async (t) => {
  const { app, keyFile } = await suite(t)
  await rm(keyFile)
  const checks = byName((await app.inject('/health')).json().checks)
  t.match(checks['key-file'], { status: 'warn', detail: /unreadable \(ENOENT\)/ })
})

t.test('keyring warnings degrade health without repeating their file names', async (t) => {
  const dir = await tempDir(t)
  const envFile = join(dir, 'key.txt')
  const { writeFile } = await import('node:fs/promises')
  await writeFile(envFile, randomBytes(32).toString('base64'), { mode: 0o644 })
  const { app } = await suite(t, { secret: { env: { SESSION_SECRET_KEY_FILE: envFile } } })
  const res = await app.inject('/health')
  t.equal(res.json().status, 'degraded')
  t.match(byName(res.json().checks)['secret-key'], { status: 'warn', detail: /1 warning\(s\) in the start-up log/ })
  t.notOk(res.body.includes(envFile))
})

t.test('cookies without Secure degrade health, with the reason', async (t) => {
  const { app } = await suite(t, { session: { secure: false } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'degraded')
  t.match(byName(res.json().checks)['cookie-policy'], { status: 'warn', detail: /Secure=false.*plain HTTP/ })
})

t.test('SameSite=None with a Domain is reported', async (t) => {
  const { app } = await suite(t, { session: { sameSite: 'none', cookieName: 'sid', domain: 'example.com' } })
  const check = byName((await app.inject('/health')).json().checks)['cookie-policy']
  t.match(check, { status: 'warn', detail: /SameSite=none, Path=\/, Domain=example\.com; .*cross-site/ })
})

t.test('sessions that needed chunked cookies degrade health; rejected cookies are only counted', async (t) => {
  const { app } = await suite(t, {}, (app) => app.post('/big', async (request) => {
    request.session.set('bigField' as never, randomBytes(3000).toString('base64') as never)
    return { ok: true }
  }))
  await app.inject({ method: 'GET', url: '/api/session/test-persistence', cookies: { '__Host-session': 'garbage' } })
  let checks = byName((await app.inject('/health')).json().checks)
  t.match(checks['cookie-size'], { status: 'pass', detail: '0 issued, 0 chunked, 0 too large; rejected: format 1' })
  const big = await app.inject({ method: 'POST', url: '/big' })
  t.equal(big.statusCode, 200)
  checks = byName((await app.inject('/health')).json().checks)
  t.match(checks['cookie-size'], { status: 'warn', detail: /1 chunked.*several cookies/ })
})

t.test('a session too large for any cookie shows as a warning', async (t) => {
  const { app } = await suite(t, {}, (app) => app.post('/huge', async (request) => {
    request.session.set('bigField' as never, randomBytes(20_000).toString('base64') as never)
    return { ok: true }
  }))
  t.equal((await app.inject({ method: 'POST', url: '/huge' })).statusCode, 500)
  t.match(byName((await app.inject('/health')).json().checks)['cookie-size'], { status: 'warn', detail: /1 too large/ })
})

t.test('/health never decrypts the session and never sets a cookie', async (t) => {
  const { app, cap } = await suite(t)
  const stored = await app.inject({ method: 'POST', url: '/api/session/test-persistence' })
  const cookie = stored.cookies.find((c) => c.name === '__Host-session')
  t.ok(cookie, 'a session cookie to send back')
  const tampered = cookie!.value.slice(0, -4) + (cookie!.value.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  for (const value of [cookie!.value, tampered, 'not-a-cookie']) {
    const res = await app.inject({ url: '/health', cookies: { '__Host-session': value } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['set-cookie'], undefined)
  }
  t.same(app.sessionInfo.counters.rejected, {}, 'not one cookie was opened, so none was rejected')
  const checks = byName((await app.inject('/health')).json().checks)
  t.match(checks['cookie-size'].detail, /^1 issued/)
  cap.assertNoSecrets(t, [cookie!.value])
})

t.test('the health path is configurable and /health can be left out', async (t) => {
  const moved = await suite(t, { health: { path: '/_status' } })
  t.equal((await moved.app.inject('/_status')).statusCode, 200)
  t.equal((await moved.app.inject('/health')).statusCode, 404)
  const off = await suite(t, { health: false })
  t.equal((await off.app.inject('/health')).statusCode, 404)
})

t.test('invalid health options fail registration naming the option', async (t) => {
  const app = await build(t)
  await t.rejects(boot(app.register(sessionSuite, { health: { timeout: 0 } }).ready()), { code: 'FSS_OPTIONS_INVALID', message: /health\.timeout/ })
  const other = await build(t)
  await t.rejects(boot(other.register(sessionSuite, { health: { path: 'health' } }).ready()), { code: 'FSS_OPTIONS_INVALID', message: /health\.path/ })
})
