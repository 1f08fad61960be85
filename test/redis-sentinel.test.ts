// The Redis token store behind real Sentinels (one primary, one replica, three
// sentinels) and three app instances built with the root plugin: login, one
// provider refresh for 3 × 50 concurrent expired requests, a health check that
// asks the sentinels, and the primary killed under load.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startRedisSentinel, type RedisSentinel } from './fixtures/redis-sentinel.ts'
import { ask } from './fixtures/redis-cluster.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser } from './fixtures/oauth-app.ts'
import { call, failoverWalk, startInstance, CLIENT_SECRET, KEY, type Instance } from './fixtures/failover-walk.ts'
import { connectRedis } from '../lib/redis/connection.ts'
import { waitReady } from '../lib/redis/client.ts'
import { topologyHealth } from '../lib/redis/topology.ts'
import { freePort } from './fixtures/redis-server.ts'
import { createSessionRegistry, type SessionRegistry, type SessionRegistryDeps } from '../lib/sessions/registry.ts'
import { flushedOn, revokedOn, session } from './sessions-helper.ts'

let sentinel: RedisSentinel
let oidc: OidcServer
let fleet: Instance[]

t.before(async () => {
  [sentinel, oidc] = await Promise.all([startRedisSentinel(t), startOidcServer()])
  t.teardown(() => oidc.stop())
  fleet = await Promise.all(['A', 'B', 'C'].map((name) => startInstance(t, name, oidc, { sentinels: sentinel.sentinels, name: sentinel.name })))
})

const redisCheck = async (i: Instance): Promise<{ status: string, detail: string } | undefined> => {
  const res = await fetch(i.origin + '/health')
  return ((await res.json()) as { checks: Array<{ name: string, status: string, detail: string }> }).checks.find((c) => c.name === 'redis')
}

t.test('login, the token on every instance, one provider refresh for 3 × 50 concurrent expired requests', async (t) => {
  const [A] = fleet
  const b = new HttpBrowser(A.origin)
  t.equal((await b.login()).callback.status, 302, 'logged in on A')
  const cookie = await b.jar.getCookieString(A.origin + '/')
  const first = await Promise.all(fleet.map((i) => call(i, '/api/token', { cookie })))
  t.ok(first.every((a) => a.status === 200 && a.fp === first[0].fp), 'the same token on A, B and C')

  t.equal((await b.request('/api/expire', { method: 'POST' })).status, 200)
  const before = oidc.tokenCalls.refresh_token
  const answers = await Promise.all(fleet.flatMap((i) => Array.from({ length: 50 }, () => call(i, '/api/token', { cookie }))))
  t.equal(oidc.tokenCalls.refresh_token - before, 1, 'exactly one refresh at the provider for 150 requests on 3 instances')
  const failed = answers.filter((a) => a.status !== 200)
  t.same(failed, [], 'every request got a token')
  t.equal(new Set(answers.map((a) => a.fp)).size, 1, 'the same refreshed token everywhere')
  t.ok(fleet.every((i) => i.app.redisTokenStore.replicaAcks.confirmed > 0), 'token writes waited for the replica (the Sentinel default)')
  const primary = `127.0.0.1:${sentinel.servers[0].port}`
  for (const i of fleet) t.match(await redisCheck(i), { status: 'pass', detail: `token store reachable: primary ${primary}, 3 of 3 sentinels agree` }, `${i.name} healthy`)
  for (const i of fleet) i.logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, KEY, ...cookie.split('; ').map((c) => c.split('=')[1])])
})

t.test('health asks the sentinels: too few answer, or the connection is not to a primary', async (t) => {
  const dead = await Promise.all([freePort(), freePort(), freePort()])
  const unreachable = await connectRedis({ sentinels: dead.map((port) => ({ host: '127.0.0.1', port })), name: sentinel.name }, 300)
  const lost = unreachable.client as Redis
  lost.on('error', () => {})
  t.teardown(() => unreachable.close())
  t.match(await topologyHealth(lost, 300), { healthy: false, topology: 'sentinel', detail: 'unhealthy: 0 of 3 sentinels name a primary' })

  // Shared clients, never connected: the probe asks with the client's master name and sentinel credentials.
  const unknown = new Redis({ sentinels: sentinel.sentinels, name: 'no-such-master', lazyConnect: true })
  t.match(await topologyHealth(unknown, 500), { healthy: false, detail: 'unhealthy: 0 of 3 sentinels name a primary' }, 'a name no sentinel monitors')
  const refused = new Redis({ sentinels: sentinel.sentinels, name: sentinel.name, sentinelUsername: 'probe', sentinelPassword: 'not-set-here', sentinelTLS: {}, lazyConnect: true })
  t.match(await topologyHealth(refused, 500), { healthy: false, detail: 'unhealthy: 0 of 3 sentinels name a primary' }, 'credentials and TLS the sentinels do not take')

  // A shared client may be one that reads from a replica.
  const reader = new Redis({ sentinels: sentinel.sentinels, name: sentinel.name, role: 'slave', enableOfflineQueue: false })
  reader.on('error', () => {})
  t.teardown(() => reader.disconnect())
  t.ok(await waitReady(reader, 10_000))
  t.match(await topologyHealth(reader, 500), { healthy: false, detail: `unhealthy: connected to a slave, sentinels name 127.0.0.1:${sentinel.servers[0].port}` })

  const connection = await connectRedis({ sentinels: sentinel.sentinels, name: sentinel.name }, 500)
  const closed = connection.client
  t.ok(await waitReady(closed, 10_000))
  await connection.close()
  t.match(await topologyHealth(closed, 500), { healthy: false, detail: `unreachable (end): primary 127.0.0.1:${sentinel.servers[0].port}` })
})

t.test('an owned Sentinel client that ends without close() starts again; close() ends it for good', async (t) => {
  // ioredis can end a Sentinel client for good when a failover is announced between reconnect attempts.
  const connection = await connectRedis({ sentinels: sentinel.sentinels, name: sentinel.name }, 500)
  t.teardown(() => connection.close())
  const client = connection.client as Redis
  t.ok(await waitReady(client, 10_000))
  const ended = new Promise((resolve) => client.once('end', resolve))
  client.disconnect()
  await ended
  t.ok(await waitReady(client, 10_000), 'connected again by itself')
  await connection.close()
  if (client.status !== 'end') await once(client, 'end')
  t.equal(await waitReady(client, 500), false, 'closed stays closed')
})

/** A session registry on its own Sentinel connection, as an app instance holds it; resolves once its feed is subscribed. */
async function registryOn (t: Test): Promise<SessionRegistry> {
  const connection = await connectRedis({ sentinels: sentinel.sentinels, name: sentinel.name }, 1000)
  const client = connection.client as Redis
  client.on('error', () => {})
  t.teardown(() => connection.close())
  t.ok(await waitReady(connection.client, 10_000))
  const registry = createSessionRegistry({ store: 'redis', keyPrefix: 'sn:' }, { client: connection.client as unknown as SessionRegistryDeps['client'], keys: [KEY] })
  t.teardown(() => registry.close())
  await flushedOn(registry)
  return registry
}

t.test('the primary killed under load: coded 503s only, the replica takes over, service and health return without a restart', async (t) => {
  const [primary, replica] = sentinel.servers
  // Two session registries ride the same failover: the feed must subscribe again and hear revocations.
  const [ra, rb] = [await registryOn(t), await registryOn(t)]
  const gone = await ra.register(session('sentinel-user'))
  t.equal(await rb.isRevoked(gone.id), false)
  const resubscribed = flushedOn(rb, 30_000)
  const figures = await failoverWalk({
    fleet,
    sessions: 30,
    async kill () {
      await sentinel.kill(primary.port)
      t.match(await fleet[0].app.redisTokenStore.health(), { healthy: false, detail: new RegExp(`^unreachable \\(\\w+\\): primary 127.0.0.1:${primary.port}$`) }, 'unhealthy at once: the primary the sentinels name does not answer')
    },
    promoted: () => sentinel.waitMaster(replica.port)
  })
  const acks = fleet.map((i) => i.app.redisTokenStore.replicaAcks)
  t.comment(JSON.stringify({ topology: 'sentinel', ...figures, replicaAcks: acks }))
  t.equal(figures.other, 0, 'no answer but 200 or 503 FSS_STORE_UNAVAILABLE')
  t.equal(figures.hung, 0, 'no request waited past 5000 ms')
  t.ok(figures.unavailable > 0, 'the walk hit the dead primary (coded 503s)')
  t.ok(figures.recoveredAfterMs > 0, 'every session served again on every instance, nothing restarted')
  t.ok(figures.healthyAfterMs > 0, '/health passes again on every instance')
  const unsure = acks.reduce((n, a) => n + a.unconfirmed + a.unwaited, 0)
  t.ok(figures.lost <= unsure, `records lost (${figures.lost}) are at most the writes no replica confirmed (${unsure})`)

  await resubscribed
  // The registries' own connections may still be finding the new primary: bounded retries.
  let revoked = false
  for (let i = 0; i < 100 && !revoked; i++) {
    const heard = revokedOn(rb, gone.id, 1000)
    try {
      revoked = await ra.revoke(gone.id, 'user')
      t.same(await heard, [gone.id], 'after the failover, the other registry hears a revocation within one second')
    } catch (err) {
      heard.catch(() => {})
      t.equal((err as { code?: string }).code, 'FSS_STORE_UNAVAILABLE')
      await delay(100)
    }
  }
  t.ok(revoked, 'revoked on the new primary')

  await sentinel.restart(primary.port)
  await sentinel.waitStable()
  for (const i of fleet) t.match(await redisCheck(i), { status: 'pass', detail: new RegExp(`primary 127.0.0.1:${replica.port}`) }, `${i.name} healthy, on the new primary`)
  for (const i of fleet) i.logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, KEY])
})

t.test('sentinels that disagree on the primary make the store unhealthy', async (t) => {
  // One sentinel told to watch the other server under the same name: it now names a different primary.
  const [first] = sentinel.sentinels
  const current = await ask(first.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', sentinel.name) as [string, string]
  const other = sentinel.servers.find((s) => String(s.port) !== current[1])?.port as number
  await ask(first.port, 'SENTINEL', 'REMOVE', sentinel.name)
  await ask(first.port, 'SENTINEL', 'MONITOR', sentinel.name, '127.0.0.1', other, 2)
  t.match(await fleet[0].app.redisTokenStore.health(), { healthy: false, detail: /^unhealthy: sentinels disagree on the primary \(/ })
})
