// Three instances as real processes sharing one env key and one Redis, a real
// OAuth provider (oauth2-mock-server) counting token-endpoint calls.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { NO_CHILD_COVERAGE, secretForms } from './helper.ts'

const APP = fileURLToPath(new URL('./fixtures/scale-out-app.ts', import.meta.url))
const K1 = randomBytes(32).toString('hex')
const K2 = randomBytes(32).toString('hex')
const logs: string[] = []
const figures: Record<string, unknown> = {}

interface Instance { name: string, origin: string, child: ChildProcess }

let redis: RedisServer
let oidc: OidcServer
t.before(async () => {
  redis = await startRedis(t)
  oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
})

async function launch (name: string, keys: string[]): Promise<Instance> {
  const child = spawn(process.execPath, ['--import=tsx', APP], {
    env: {
      ...NO_CHILD_COVERAGE,
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      SESSION_SECRET_KEY: keys[0],
      ...(keys.length > 1 && { SESSION_SECRET_KEY_PREVIOUS: keys.slice(1).join(',') }),
      REDIS_URL: redis.url,
      OIDC_URL: oidc.issuer
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stderr?.on('data', (c: Buffer) => logs.push(`[${name} stderr] ${c.toString()}`))
  const lines = createInterface({ input: child.stdout! })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${logs.slice(-5).join('\n')}`)))
    lines.on('line', (line) => {
      logs.push(line)
      const port = (JSON.parse(line) as { listening?: number }).listening
      if (port !== undefined) resolve(port)
    })
  })
  return { name, origin: `http://127.0.0.1:${port}`, child }
}

async function stop (i: Instance): Promise<void> {
  if (i.child.exitCode !== null) return
  const exited = once(i.child, 'exit')
  i.child.kill('SIGTERM')
  await exited
}

interface Answer { status: number, body: any, cookie?: string }
async function call (i: Instance, path: string, opts: { cookie?: string, body?: unknown } = {}): Promise<Answer> {
  const res = await fetch(i.origin + path, {
    method: opts.body === undefined ? 'GET' : 'POST',
    headers: { ...(opts.cookie && { cookie: opts.cookie }), ...(opts.body !== undefined && { 'content-type': 'application/json' }) },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
  })
  const set = res.headers.getSetCookie().map((c) => c.split(';')[0]).filter((c) => c.startsWith('session'))
  return { status: res.status, body: await res.json(), ...(set.length > 0 && { cookie: set.join('; ') }) }
}

const seeds: string[] = []
function expiredToken (): Record<string, unknown> {
  const tok = { access_token: 'seed-at-' + randomBytes(16).toString('hex'), refresh_token: 'seed-rt-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) - 10 }
  seeds.push(tok.access_token, tok.refresh_token)
  return tok
}

t.test('three instances, one Redis: sessions, one refresh for the fleet, rolling rotation, an outage', async (t) => {
  const fleet = await Promise.all(['A', 'B', 'C'].map((n) => launch(n, [K1])))
  t.teardown(() => Promise.all(fleet.map(stop)))
  const [A, B] = fleet

  // A session created on A is valid on B and C.
  const created = await call(A, '/api/store', { body: expiredToken() })
  t.equal(created.status, 200)
  const cookie = created.cookie as string
  t.ok(cookie)
  for (const i of fleet) t.match((await call(i, '/api/meta', { cookie })).body, { meta: { hasRefreshToken: true } }, `session valid on ${i.name}`)

  // A token refreshed on A is seen on B, without a second provider call.
  const before = oidc.tokenCalls.refresh_token
  const onA = await call(A, '/api/token', { cookie })
  t.equal(onA.status, 200)
  t.equal(oidc.tokenCalls.refresh_token, before + 1)
  t.same((await call(B, '/api/token', { cookie })).body, onA.body, 'B serves the token A refreshed')
  t.equal(oidc.tokenCalls.refresh_token, before + 1)

  // 3 × 50 concurrent requests with an expired token: one token-endpoint call.
  const second = (await call(A, '/api/store', { body: expiredToken() })).cookie as string
  const start = oidc.tokenCalls.refresh_token
  const answers = await Promise.all(fleet.flatMap((i) => Array.from({ length: 50 }, () => call(i, '/api/token', { cookie: second }))))
  const refreshCalls = oidc.tokenCalls.refresh_token - start
  figures.concurrent = { requests: answers.length, ok: answers.filter((a) => a.status === 200).length, refreshCalls, distinctTokens: new Set(answers.map((a) => a.body.fp)).size }
  t.equal(refreshCalls, 1, 'exactly one refresh for 150 requests on 3 instances')
  t.ok(answers.every((a) => a.status === 200), 'every request got a token')
  t.equal(new Set(answers.map((a) => a.body.fp)).size, 1, 'the same token everywhere')

  // Rolling rotation: K2 arrives as previous on each instance in turn, then is promoted in turn.
  const stillIn = async (step: string): Promise<void> => {
    for (const i of fleet) {
      t.equal((await call(i, '/api/token', { cookie: second })).status, 200, `${step}: logged in on ${i.name}`)
    }
  }
  for (const keys of [[K1, K2], [K2, K1]]) {
    for (let n = 0; n < fleet.length; n++) {
      await stop(fleet[n])
      fleet[n] = await launch(fleet[n].name, keys)
      await stillIn(`keys ${keys.map((k) => k === K1 ? 'K1' : 'K2').join(',')}, ${n + 1} restarted`)
    }
  }
  t.equal(oidc.tokenCalls.refresh_token - start, 1, 'rotation caused no refresh either')

  // Redis dies mid-run: 503 with a code, no crash; service resumes after restart.
  const third = (await call(fleet[0], '/api/store', { body: expiredToken() })).cookie as string
  const midRun = Promise.all(fleet.flatMap((i) => Array.from({ length: 20 }, () => call(i, '/api/token', { cookie: third }))))
  await redis.kill()
  const during = await midRun
  const down = await Promise.all(fleet.map((i) => call(i, '/api/token', { cookie: third })))
  t.ok(down.every((a) => a.status === 503 && a.body.code === 'FSS_STORE_UNAVAILABLE'), 'Redis down: 503 FSS_STORE_UNAVAILABLE')
  t.ok(during.every((a) => a.status === 200 || (a.status === 503 && a.body.code === 'FSS_STORE_UNAVAILABLE')), 'in flight: 200 or coded 503, never a 500')
  for (const i of fleet) {
    t.equal((await call(i, '/public')).status, 200, `${i.name} serves routes without tokens`)
    t.equal((await call(i, '/health')).status, 503, `${i.name} reports unhealthy`)
  }
  figures.outage = { inFlight: during.length, inFlight503: during.filter((a) => a.status === 503).length, crashed: fleet.filter((i) => i.child.exitCode !== null).length }
  t.ok(fleet.every((i) => i.child.exitCode === null), 'no instance crashed')

  await redis.restart()
  for (const i of fleet) t.same((await call(i, '/redis-ready')).body, { ready: true }, `${i.name} reconnected`)
  // The test Redis has no persistence: sessions it held read as "log in again" (401), not an error.
  t.equal((await call(fleet[1], '/api/token', { cookie: third })).body.code, 'FSS_TOKEN_MISSING')
  const fresh = (await call(fleet[1], '/api/store', { body: expiredToken() })).cookie as string
  for (const i of fleet) t.equal((await call(i, '/api/token', { cookie: fresh })).status, 200, `${i.name} serves tokens again`)

  await Promise.all(fleet.map(stop))
  figures.logLines = logs.length
  const secrets = [...seeds, ...oidc.issued(), K1, K2, cookie, second, third, fresh]
  const leaked = secrets.flatMap(secretForms).filter((s) => logs.some((l) => l.includes(s)))
  t.same(leaked.length, 0, `no token, key or cookie value in ${logs.length} log lines`)
  t.comment(JSON.stringify(figures))
})
