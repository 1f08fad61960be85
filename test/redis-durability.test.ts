// What survives: tokens across a crash and restart of a Redis with an
// append-only file, and a token write confirmed by a replica (WAIT) before its
// request is answered, so a failover right after cannot undo it. Real servers:
// a primary, and a second redis-server made its replica with REPLICAOF.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import FakeTimers from '@sinonjs/fake-timers'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { pollUntil } from './fixtures/redis-cluster.ts'
import { redisApp } from './fixtures/redis-app.ts'
import { waitReady } from '../lib/redis/client.ts'
import { recordKey } from '../lib/redis/store.ts'

const K = randomBytes(32)
const token = (): Record<string, unknown> => ({ access_token: 'at-' + randomBytes(16).toString('hex'), refresh_token: 'rt-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) + 3600 })

function raw (t: Test, server: RedisServer, user = ''): Redis {
  const redis = new Redis(`redis://${user}127.0.0.1:${server.port}`, { enableOfflineQueue: true, maxRetriesPerRequest: 0 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

t.test('with AOF (appendfsync always), tokens survive a crash and restart of Redis', async (t) => {
  const redis = await startRedis(t, { aof: true })
  const { app } = await redisApp(t, [K], { url: redis.url, keyPrefix: 'aof:', commandTimeout: 500 })
  const sessions: Array<{ cookies: Record<string, string>, tok: Record<string, unknown> }> = []
  for (let i = 0; i < 20; i++) {
    const tok = token()
    const res = await app.inject({ method: 'POST', url: '/token', payload: tok })
    t.equal(res.statusCode, 200)
    sessions.push({ cookies: { session: res.cookies.find((c) => c.name === 'session')?.value ?? '' }, tok })
  }
  // SIGKILL: no shutdown save, only what the append-only file already holds.
  await redis.kill('SIGKILL')
  t.equal((await app.inject({ url: '/token', cookies: sessions[0].cookies })).statusCode, 503, 'down: a coded outage')
  await redis.restart()
  t.ok(await waitReady(app.redisTokenStore.client, 10_000), 'reconnected by itself')
  let kept = 0
  for (const s of sessions) {
    const res = await app.inject({ url: '/token', cookies: s.cookies })
    if (JSON.stringify(res.json()) === JSON.stringify({ token: s.tok })) kept++
  }
  t.equal(kept, sessions.length, `all ${sessions.length} token records read back after the crash`)
})

async function primaryWithReplica (t: Test): Promise<{ primary: RedisServer, replica: RedisServer, onReplica: Redis }> {
  const [primary, replica] = await Promise.all([startRedis(t), startRedis(t)])
  const onReplica = raw(t, replica)
  // Sync at once instead of waiting 5 s for more replicas to join the transfer.
  await raw(t, primary).config('SET', 'repl-diskless-sync-delay', '0')
  await onReplica.replicaof('127.0.0.1', primary.port)
  await pollUntil('the replica to sync', 10_000, async () => (await onReplica.info('replication')).includes('master_link_status:up'))
  return { primary, replica, onReplica }
}

t.test('a token write is answered once a replica holds it', async (t) => {
  const { primary, onReplica } = await primaryWithReplica(t)
  // Generous: on a loaded machine a replica may take a while to acknowledge; each write waits for it.
  const { app } = await redisApp(t, [K], { url: primary.url, keyPrefix: 'ack:', commandTimeout: 5000, replicaAcks: 1, replicaAckTimeout: 2000 })
  for (let i = 0; i < 10; i++) {
    const tok = token()
    const res = await app.inject({ method: 'POST', url: '/token', payload: tok })
    const cookies = { session: res.cookies.find((c) => c.name === 'session')?.value ?? '' }
    const ref = (await app.inject({ url: '/ref', cookies })).json().ref as string
    // Read from the replica the moment the write is answered: already there.
    t.ok(await onReplica.get(recordKey('ack:', ref)), `write ${i} is on the replica when answered`)
  }
  t.same(app.redisTokenStore.replicaAcks, { confirmed: 10, unconfirmed: 0, unwaited: 0 })
})

t.test('a replica that does not confirm: the writes are made and reported, WAIT rounds are shared, then a quiet spell', async (t) => {
  const { primary, replica } = await primaryWithReplica(t)
  const { app, logs } = await redisApp(t, [K], { url: primary.url, keyPrefix: 'short:', commandTimeout: 1000, replicaAcks: 1, replicaAckTimeout: 200 })
  // Only Date: WAIT's own timeout runs on the real clock.
  const clock = FakeTimers.install({ toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  replica.pause()
  t.teardown(() => replica.resume())

  const burst = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/token', payload: token() })))
  t.ok(burst.every((r) => r.statusCode === 200), 'every write succeeds: the primary has it')
  const { confirmed, unconfirmed, unwaited } = app.redisTokenStore.replicaAcks
  t.equal(confirmed, 0)
  t.ok(unconfirmed >= 1 && unconfirmed + unwaited === 5, `each write counted as not confirmed (${unconfirmed} waited in vain, ${unwaited} in the quiet spell)`)
  const warned = logs.lines.filter((l) => l.includes('redis-write-unreplicated'))
  t.ok(warned.length >= 1 && warned.length <= 2, `five writes, at most two WAIT rounds (${warned.length})`)
  t.match(JSON.parse(warned[0]), { level: 40, replicas: 0 })

  t.equal((await app.inject({ method: 'POST', url: '/token', payload: token() })).statusCode, 200)
  t.equal(app.redisTokenStore.replicaAcks.unwaited, unwaited + 1, 'within ten WAIT timeouts of a shortfall, no WAIT blocks the connection')
  replica.resume()
  // Caught up as the primary sees it: the replica has acknowledged everything written so far.
  const onPrimary = raw(t, primary)
  await pollUntil('the replica to acknowledge the backlog', 10_000, async () => {
    const info = await onPrimary.info('replication')
    return info.includes(`offset=${/master_repl_offset:(\d+)/.exec(info)?.[1]},`)
  })
  // A replica just resumed on a busy machine may still miss one 200 ms WAIT: a few tries, each after a quiet spell.
  for (let attempt = 0; attempt < 3 && app.redisTokenStore.replicaAcks.confirmed === 0; attempt++) {
    clock.tick(2000)
    t.equal((await app.inject({ method: 'POST', url: '/token', payload: token() })).statusCode, 200)
  }
  t.equal(app.redisTokenStore.replicaAcks.confirmed, 1, 'after the quiet spell, writes wait for the replica again')
})

t.test('a refused WAIT counts as unconfirmed; a refused SET is a coded outage', async (t) => {
  const { primary } = await primaryWithReplica(t)
  const admin = raw(t, primary)
  await admin.call('ACL', 'SETUSER', 'nowait', 'on', '>pw-nowait', '~*', '&*', '+@all', '-wait')
  await admin.call('ACL', 'SETUSER', 'noset', 'on', '>pw-noset', '~*', '&*', '+@all', '-set')

  const { app, logs } = await redisApp(t, [K], { url: primary.url.replace('//', '//nowait:pw-nowait@'), keyPrefix: 'acl:', replicaAcks: 1 })
  t.equal((await app.inject({ method: 'POST', url: '/token', payload: token() })).statusCode, 200, 'the write itself succeeded')
  t.same(app.redisTokenStore.replicaAcks, { confirmed: 0, unconfirmed: 1, unwaited: 0 })
  t.match(JSON.parse(logs.lines.find((l) => l.includes('redis-write-unreplicated')) ?? '{}'), { replicas: -1 }, 'a failed WAIT is reported as -1 confirmations')

  const { app: refused } = await redisApp(t, [K], { url: primary.url.replace('//', '//noset:pw-noset@'), keyPrefix: 'acl:', replicaAcks: 1 })
  const res = await refused.inject({ method: 'POST', url: '/token', payload: token() })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FSS_STORE_UNAVAILABLE')
  logs.assertNoSecrets(t, ['pw-nowait', 'pw-noset'])
})
