import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { createRedisLock, lockKey, type RedisLock } from '../lib/redis/lock.ts'
import { createRedisRefreshLock, handoffKey } from '../lib/redis/fleet-refresh.ts'
import { createRedisClient, waitReady } from '../lib/redis/client.ts'
import { errors } from '../lib/errors.ts'
import Fastify from 'fastify'
import { captureLogs, NO_CHILD_COVERAGE } from './helper.ts'
import { deriveStoreKeys, seal } from '../lib/redis/seal.ts'

let redis: RedisServer
const clients: Redis[] = []
t.before(async () => {
  redis = await startRedis(t)
})
t.teardown(() => Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect()))))

async function client (): Promise<Redis> {
  // The full ioredis type: these tests also read keys the lock never touches (pttl, exists).
  const c = await createRedisClient({ url: redis.url, commandTimeout: 1000 }) as Redis
  c.on('error', () => {})
  clients.push(c)
  if (!await waitReady(c, 5000)) throw new Error('redis client not ready')
  return c
}

const name = (): string => 'rt-' + randomBytes(16).toString('base64url')
async function lockOn (opts: Partial<Parameters<typeof createRedisLock>[0]> = {}): Promise<RedisLock> {
  return createRedisLock({ client: await client(), prefix: 'lk:', lockTtl: 5000, maxWait: 8000, commandTimeout: 1000, ...opts })
}

t.test('one holder at a time; release frees the lock; a stale owner cannot free a successor\'s lock', async (t) => {
  const [a, b] = [await lockOn(), await lockOn()]
  const raw = await client()
  const n = name()
  const releaseA = await a.acquire(n)
  t.ok(releaseA)
  t.equal(await b.acquire(n), null, 'busy while held')
  const key = lockKey('lk:', n)
  t.notOk(key.includes(n), 'the refresh token is hashed in the key')
  const pttl = await raw.pttl(key)
  t.ok(pttl > 0 && pttl <= 5000, 'the lock has an expiry')
  // A's lock "expires" (deleted as PX would), B takes it, then A's late release runs.
  await raw.del(key)
  const releaseB = await b.acquire(n)
  t.ok(releaseB)
  await releaseA?.()
  t.equal(await raw.exists(key), 1, 'compare-and-delete left B\'s lock alone')
  await releaseB?.()
  t.equal(await raw.exists(key), 0)
})

t.test('many callers on two instances: the refresh runs once, everyone gets its result', async (t) => {
  const raw = await client()
  const n = name()
  const result = 'result-' + n
  let runs = 0
  const steps = (c: Redis) => ({
    check: async () => await c.get('lk:result:' + n),
    run: async () => {
      runs++
      await raw.set('lk:result:' + n, result)
      return result
    }
  })
  const [a, b] = [await lockOn(), await lockOn()]
  const [ca, cb] = [await client(), await client()]
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => i % 2 === 0 ? a.singleFlight(n, steps(ca)) : b.singleFlight(n, steps(cb))))
  t.equal(runs, 1)
  t.ok(answers.every((x) => x === result))
})

t.test('a lock holder that dies blocks nobody past the lock\'s expiry', async (t) => {
  const n = name()
  const raw = await client()
  const holder = spawn(process.execPath, ['--import=tsx', fileURLToPath(new URL('./fixtures/lock-holder.ts', import.meta.url)), redis.url, 'lk:', n, '400'], { env: { ...process.env, ...NO_CHILD_COVERAGE }, stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(holder.stdout, 'data') as [Buffer]
  t.equal(line.toString().trim(), 'held')
  const [, signal] = await once(holder, 'exit')
  t.equal(signal, 'SIGKILL', 'the holder died without releasing')
  t.ok(await raw.pttl(lockKey('lk:', n)) > 0, 'its lock is still there')
  let checks = 0
  const lock = await lockOn({ lockTtl: 5000, maxWait: 5000 })
  const got = await lock.singleFlight(n, { check: async () => { checks++; return null }, run: async () => 'mine' })
  t.equal(got, 'mine', 'the waiter took over once the dead lock expired')
  t.ok(checks > 1, 'it waited (polled) before taking over')
})

t.test('a live holder slower than maxWait: the waiter gives up with a coded timeout', async (t) => {
  const n = name()
  const holder = await lockOn()
  const release = await holder.acquire(n)
  const waiter = await lockOn({ maxWait: 100 })
  await t.rejects(waiter.singleFlight(n, { check: async () => null, run: async () => 'never' }), { code: 'FSS_TOKEN_PROVIDER_TIMEOUT', statusCode: 504 })
  await release?.()
})

t.test('fleet refresh hands the winner\'s result, or its failure, to the other instances', async (t) => {
  const keys = [randomBytes(32)]
  const fleet = async (): Promise<ReturnType<typeof createRedisRefreshLock>> => {
    const c = await client()
    return createRedisRefreshLock({ client: c, lock: createRedisLock({ client: c, prefix: 'fl:', lockTtl: 5000, maxWait: 8000, commandTimeout: 1000 }), keys, prefix: 'fl:', graceMs: 30_000, backoffMs: 5000, commandTimeout: 1000 })
  }
  const [a, b, c] = [await fleet(), await fleet(), await fleet()]
  const raw = await client()
  const rt = name()
  let calls = 0
  const fresh = { access_token: 'at-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_at: 2_000_000_000 }
  const call = async (): Promise<typeof fresh> => { calls++; return fresh }
  const got = await Promise.all([a, b, c].flatMap((f) => Array.from({ length: 10 }, () => f.refresh(rt, call))))
  t.equal(calls, 1, 'one provider call for 30 callers on 3 instances')
  t.ok(got.every((x) => x.access_token === fresh.access_token))
  const sealed = await raw.get(handoffKey('fl:', rt)) as string
  t.notOk(sealed.includes(fresh.access_token), 'the handed-off token is sealed')
  t.ok(await raw.pttl(handoffKey('fl:', rt)) <= 30_000)

  const dead = name()
  let failures = 0
  const failing = async (): Promise<never> => { failures++; throw new errors.FSS_TOKEN_REFRESH_REJECTED() }
  await t.rejects(a.refresh(dead, failing), { code: 'FSS_TOKEN_REFRESH_REJECTED' })
  await t.rejects(b.refresh(dead, failing), { code: 'FSS_TOKEN_REFRESH_REJECTED' }, 'another instance gets the failure')
  t.equal(failures, 1, 'without replaying the dead refresh token')
  // An error that is not a provider answer is not shared.
  const odd = name()
  await t.rejects(a.refresh(odd, async () => { throw new Error('bug') }), /bug/)
  t.equal(await raw.exists(handoffKey('fl:', odd)), 0)
  // Every shareable failure reaches the other instances with its own code, without a provider call.
  for (const [code, failure] of [
    ['FSS_TOKEN_PROVIDER_TIMEOUT', () => new errors.FSS_TOKEN_PROVIDER_TIMEOUT()],
    ['FSS_TOKEN_PROVIDER_ERROR', () => new errors.FSS_TOKEN_PROVIDER_ERROR('HTTP 500')],
    ['FSS_TOKEN_INVALID', () => new errors.FSS_TOKEN_INVALID('no access_token')]
  ] as const) {
    const other = name()
    await t.rejects(c.refresh(other, async () => { throw failure() }), { code })
    const before = calls
    await t.rejects(b.refresh(other, call), { code, statusCode: failure().statusCode }, `${code} is handed to another instance`)
    t.equal(calls, before, `${code}: the other instance did not call the provider`)
  }
  // A newer instance in a rolling deploy may hand off a code this version does not know: it reads as a provider error.
  const newer = name()
  const key = handoffKey('fl:', newer)
  await raw.set(key, seal(deriveStoreKeys(keys), JSON.stringify({ failed: 'FSS_TOKEN_FROM_THE_FUTURE' }), key), 'PX', 5000)
  await t.rejects(a.refresh(newer, call), { code: 'FSS_TOKEN_PROVIDER_ERROR', statusCode: 502 })
  t.equal(calls, 1, 'still one provider call in all')
})

t.test('fleet refresh: a failure hand-off never overwrites a success already handed off', async (t) => {
  const keys = [randomBytes(32)]
  const fleet = async (): Promise<ReturnType<typeof createRedisRefreshLock>> => {
    const c = await client()
    return createRedisRefreshLock({ client: c, lock: createRedisLock({ client: c, prefix: 'nx:', lockTtl: 5000, maxWait: 8000, commandTimeout: 1000 }), keys, prefix: 'nx:', graceMs: 30_000, backoffMs: 5000, commandTimeout: 1000 })
  }
  const [a, b, c] = [await fleet(), await fleet(), await fleet()]
  const raw = await client()
  const rt = name()
  const fresh = { access_token: 'at-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_at: 2_000_000_000 }
  // Instance A holds the lock and waits on a slow provider.
  let releaseA!: () => void
  const gateA = new Promise<void>((resolve) => { releaseA = resolve })
  let startedA!: () => void
  const aStarted = new Promise<void>((resolve) => { startedA = resolve })
  const first = a.refresh(rt, async () => { startedA(); await gateA; return fresh })
  await aStarted
  // Its lock expires before the provider answers (what a provider slower than lockTtl does).
  t.equal(await raw.del(lockKey('nx:', rt)), 1, 'A held the lock')
  // Instance B takes the lock and refreshes with the same, now rotated-away, refresh token.
  let rejectB!: (err: Error) => void
  let startedB!: () => void
  const bStarted = new Promise<void>((resolve) => { startedB = resolve })
  const second = b.refresh(rt, () => new Promise<never>((_resolve, reject) => { rejectB = reject; startedB() }))
  await bStarted
  // A's provider call succeeds first and hands its result off...
  releaseA()
  t.equal((await first).access_token, fresh.access_token)
  // ...then B's call is rejected (invalid_grant): its failure hand-off must not replace A's success.
  rejectB(new errors.FSS_TOKEN_REFRESH_REJECTED())
  await t.rejects(second, { code: 'FSS_TOKEN_REFRESH_REJECTED' })
  let calls = 0
  const got = await c.refresh(rt, async () => { calls++; return fresh })
  t.equal(got.access_token, fresh.access_token, 'a waiter still reads the success')
  t.equal(calls, 0, 'without a provider call')
  t.ok(await raw.pttl(handoffKey('nx:', rt)) > 5000, 'the success\'s lifetime, not the failure\'s')
})

t.test('fleet refresh: a result Redis refuses to store is still returned, and the failed hand-off is logged', async (t) => {
  const c = await client()
  const raw = await client()
  const logs = captureLogs()
  const log = Fastify({ logger: { level: 'warn', stream: logs.stream } }).log
  const f = createRedisRefreshLock({ client: c, lock: createRedisLock({ client: c, prefix: 'oom:', lockTtl: 5000, maxWait: 8000, commandTimeout: 1000 }), keys: [randomBytes(32)], prefix: 'oom:', graceMs: 30_000, backoffMs: 5000, commandTimeout: 1000, log })
  const rt = name()
  const fresh = { access_token: 'at-' + randomBytes(16).toString('hex') }
  const restore = async (): Promise<void> => { await raw.config('SET', 'maxmemory', '0') }
  t.teardown(restore)
  // The lock is held by now; from here every write is refused (a real OOM reply).
  const got = await f.refresh(rt, async () => {
    await raw.config('SET', 'maxmemory', '1')
    return fresh
  })
  await restore()
  t.same(got, fresh, 'the caller gets its refreshed token')
  t.equal(await raw.exists(handoffKey('oom:', rt)), 0, 'nothing was handed off')
  const warned = logs.lines.map((l) => JSON.parse(l)).find((l) => l.event === 'refresh-handoff-failed')
  t.match(warned, { level: 40, msg: 'could not share a refresh result with other instances' })
  logs.assertNoSecrets(t, [fresh.access_token, rt])
})

t.test('Redis down: acquiring answers FSS_STORE_UNAVAILABLE; a release that cannot reach Redis is harmless', async (t) => {
  const lock = await lockOn()
  const release = await lock.acquire(name())
  await redis.kill()
  t.teardown(() => redis.restart())
  await t.resolves(release?.() ?? Promise.resolve())
  await t.rejects(lock.acquire(name()), { code: 'FSS_STORE_UNAVAILABLE', statusCode: 503 })
})
