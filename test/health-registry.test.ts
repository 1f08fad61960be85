import t from 'tap'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import sessionSuite, { health, session, healthRegistry, type HealthCheckResult } from '../index.ts'
import { build, tempDir } from './helper.ts'

type Test = Parameters<typeof build>[0]

async function suiteWith (t: Test, add: (app: Awaited<ReturnType<typeof build>>) => void, timeout?: number) {
  const dir = await tempDir(t)
  const app = await build(t)
  // A plugin registered before the suite adds its check to the same registry.
  add(app)
  await app.register(sessionSuite, { secret: { keyFile: join(dir, 'secret.key'), env: {} }, ...(timeout !== undefined && { health: { timeout } }) })
  return app
}

t.test('a plugin\'s check shows in /health and its failure makes the instance unhealthy', async (t) => {
  let result: HealthCheckResult = { status: 'pass', detail: 'PONG in 1 ms' }
  const app = await suiteWith(t, (app) => healthRegistry(app).add('redis', () => result))
  let res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.same(res.json().checks.at(-1), { name: 'redis', status: 'pass', detail: 'PONG in 1 ms' })

  result = { status: 'warn', detail: 'slow' }
  res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'degraded')

  result = { status: 'fail', detail: 'ECONNREFUSED' }
  res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.equal(res.json().status, 'unhealthy')
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('a check that throws fails with its error code only, never its message', async (t) => {
  const app = await suiteWith(t, (app) => {
    healthRegistry(app).add('throws-coded', async () => {
      throw Object.assign(new Error('redis://user:hunter2@db:6379 refused'), { code: 'ECONNREFUSED' })
    })
    healthRegistry(app).add('throws-plain', () => { throw new Error('password=hunter2') })
    // eslint-disable-next-line no-throw-literal -- a careless check may throw anything
    healthRegistry(app).add('throws-null', () => { throw null })
  })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  const checks = res.json().checks
  t.same(checks.at(-3), { name: 'throws-coded', status: 'fail', detail: 'check threw ECONNREFUSED' })
  t.same(checks.at(-2), { name: 'throws-plain', status: 'fail', detail: 'check threw an error' })
  t.same(checks.at(-1), { name: 'throws-null', status: 'fail', detail: 'check threw an error' })
  t.notMatch(res.body, /hunter2/)
})

t.test('a check that never answers fails after the timeout instead of hanging /health', async (t) => {
  const app = await suiteWith(t, (app) => healthRegistry(app).add('hangs', () => new Promise<HealthCheckResult>(() => {})), 20)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json().checks.at(-1), { name: 'hangs', status: 'fail', detail: 'no answer within 20 ms' })
})

t.test('check names are unique', async (t) => {
  const app = await build(t)
  healthRegistry(app).add('redis', () => ({ status: 'pass', detail: '' }))
  t.throws(() => healthRegistry(app).add('redis', () => ({ status: 'pass', detail: '' })), { code: 'FSS_HEALTH_CHECK_DUPLICATE' })
  t.equal(healthRegistry(app), app.sessionSuiteHealth, 'one registry per instance')
})

t.test('the health route alone reports what is missing as failures', async (t) => {
  const app = await build(t)
  await app.register(health)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  const checks = Object.fromEntries(res.json().checks.map((c: { name: string }) => [c.name, c]))
  t.match(checks['secret-key'], { status: 'fail', detail: /no key loaded/ })
  t.match(checks['cookie-policy'], { status: 'fail', detail: 'session plugin not registered' })
  t.match(checks['cookie-size'], { status: 'fail', detail: 'session plugin not registered' })
})

t.test('a session with its own key and no keyring passes the key check', async (t) => {
  const app = await build(t)
  await app.register(session, { key: randomBytes(32) })
  await app.register(health)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.match(res.json().checks[0], { name: 'secret-key', status: 'pass', detail: 'key passed to the session plugin directly' })
})
