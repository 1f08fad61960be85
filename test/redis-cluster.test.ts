// The Redis token store on a real Redis Cluster (three primaries, three
// replicas) behind three app instances built with the root plugin: login,
// one provider refresh for 3 × 50 concurrent expired requests, keys that keep
// a refresh's lock and hand-off in one slot, a topology-wide health check,
// and a primary killed under load.
import t from 'tap'
import type { Cluster } from 'ioredis'
import { startRedisCluster, ask, pollUntil, type RedisCluster } from './fixtures/redis-cluster.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser } from './fixtures/oauth-app.ts'
import { call, failoverWalk, startInstance, CLIENT_SECRET, KEY, type Instance } from './fixtures/failover-walk.ts'
import { lockKey } from '../lib/redis/lock.ts'
import { handoffKey } from '../lib/redis/fleet-refresh.ts'
import { recordKey } from '../lib/redis/store.ts'
import { topologyHealth } from '../lib/redis/topology.ts'
import { connectRedis } from '../lib/redis/connection.ts'
import { waitReady } from '../lib/redis/client.ts'

let cluster: RedisCluster
let oidc: OidcServer
let fleet: Instance[]

t.before(async () => {
  [cluster, oidc] = await Promise.all([startRedisCluster(t), startOidcServer()])
  t.teardown(() => oidc.stop())
  // One seed node is enough: the client learns the rest from it.
  fleet = await Promise.all(['A', 'B', 'C'].map((name) => startInstance(t, name, oidc, { cluster: [cluster.nodes[0]] })))
})

const redisCheck = async (i: Instance): Promise<{ status: string, detail: string } | undefined> => {
  const res = await fetch(i.origin + '/health')
  return ((await res.json()) as { checks: Array<{ name: string, status: string, detail: string }> }).checks.find((c) => c.name === 'redis')
}

t.test('login on one instance, the token on every instance, one provider refresh for 3 × 50 concurrent expired requests', async (t) => {
  const [A] = fleet
  const b = new HttpBrowser(A.origin)
  const login = await b.login()
  t.equal(login.callback.status, 302, 'logged in on A') || t.comment(login.callback.text, A.logs.lines.filter((l) => /"level":(40|50)/.test(l)).join('\n'))
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
  t.same(fleet.map((i) => i.app.redisTokenStore.replicaAcks.unconfirmed), [0, 0, 0], 'no token write went unconfirmed by a replica')
  t.ok(fleet.every((i) => i.app.redisTokenStore.replicaAcks.confirmed > 0), 'token writes waited for a replica (the Cluster default)')

  for (const i of fleet) t.match(await redisCheck(i), { status: 'pass', detail: 'token store reachable: 3 primaries, cluster_state:ok' }, `${i.name} healthy`)
  for (const i of fleet) i.logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, KEY, ...cookie.split('; ').map((c) => c.split('=')[1])])
})

t.test('a refresh\'s lock and hand-off share one slot; token records spread over the shards', async (t) => {
  const slot = async (key: string): Promise<number> => await ask(cluster.nodes[0].port, 'CLUSTER', 'KEYSLOT', key) as number
  for (const refreshToken of ['rt-1', 'another-refresh-token', 'x'.repeat(500)]) {
    t.equal(await slot(lockKey('walk:', refreshToken)), await slot(handoffKey('walk:', refreshToken)), 'lock and hand-off in one slot')
  }
  const slots = await Promise.all(Array.from({ length: 30 }, (_, n) => slot(recordKey('walk:', `ref-${n}`))))
  const shards = await cluster.shards()
  const ranges = await ask(cluster.nodes[0].port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  const owner = (s: number): number | undefined => ranges.find(([lo, hi]) => s >= lo && s <= hi)?.[2][1]
  t.equal(new Set(slots.map(owner)).size, shards.length, `30 records land on all ${shards.length} primaries`)
})

t.test('health covers the topology: a client whose cluster is unreachable, and a slot no primary serves', async (t) => {
  const { client, close } = await connectRedis({ cluster: [{ host: '127.0.0.1', port: 1 }] }, 200)
  const unreachable = client as Cluster
  unreachable.on('error', () => {})
  t.teardown(close)
  t.match(await topologyHealth(client, 200), { healthy: false, topology: 'cluster', detail: /^unreachable \(/ })

  const own = await connectRedis({ cluster: [cluster.nodes[0]] }, 500)
  // Reported through health, not as an unhandled 'error' event while slots are taken away.
  const ownClient = own.client as Cluster
  ownClient.on('error', () => {})
  t.teardown(() => own.close())
  t.ok(await waitReady(own.client, 10_000))
  t.match(await topologyHealth(own.client, 500), { healthy: true })

  // A slot nobody serves: every primary answers, and says cluster_state:fail.
  const all = cluster.nodes.map((n) => n.port)
  const owner = (await ask(all[0], 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>).find(([lo]) => lo === 0)?.[2][1] as number
  await Promise.all(all.map((p) => ask(p, 'CLUSTER', 'DELSLOTS', 0)))
  t.teardown(async () => {
    await ask(owner, 'CLUSTER', 'ADDSLOTS', 0)
    await Promise.all(all.map((p) => ask(p, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'yes')))
    await cluster.waitStable()
  })
  await pollUntil('every primary to report cluster_state:fail', 10_000, async () => (await topologyHealth(own.client, 500)).detail.startsWith('unhealthy: cluster_state is not ok on '))
  t.match(await topologyHealth(own.client, 500), { healthy: false, detail: /^unhealthy: cluster_state is not ok on 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+$/ })
  // With full coverage not required, Redis itself says cluster_state:ok while a slot has no primary.
  await Promise.all(all.map((p) => ask(p, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'no')))
  await pollUntil('cluster_state:ok with slot 0 unserved', 10_000, async () => (await topologyHealth(own.client, 500)).detail.includes('slots are not served'))
  t.match(await topologyHealth(own.client, 500), { healthy: false, detail: 'unhealthy: 1 of 16384 slots are not served' })
})

t.test('a primary killed under load: coded 503s only, its replica takes over, service and health return without a restart', async (t) => {
  const [victim] = await cluster.shards()
  const standIn = victim.replicas[0]
  const figures = await failoverWalk({
    fleet,
    sessions: 30,
    async kill () {
      await cluster.kill(victim.primary.port)
      t.match(await fleet[0].app.redisTokenStore.health(), { healthy: false, detail: `unreachable: primary 127.0.0.1:${victim.primary.port} does not answer` }, 'unhealthy at once: a primary does not answer')
    },
    promoted: () => cluster.waitRole(standIn.port, 'master')
  })
  const acks = fleet.map((i) => i.app.redisTokenStore.replicaAcks)
  t.comment(JSON.stringify({ topology: 'cluster', ...figures, replicaAcks: acks }))
  t.equal(figures.other, 0, 'no answer but 200 or 503 FSS_STORE_UNAVAILABLE')
  t.equal(figures.hung, 0, `no request waited past ${5000} ms`)
  t.ok(figures.unavailable > 0, 'the walk hit the dead primary (coded 503s)')
  t.ok(figures.recoveredAfterMs > 0, 'every session served again on every instance, nothing restarted')
  t.ok(figures.healthyAfterMs > 0, '/health passes again on every instance')
  const unsure = acks.reduce((n, a) => n + a.unconfirmed + a.unwaited, 0)
  t.ok(figures.lost <= unsure, `records lost (${figures.lost}) are at most the writes no replica confirmed (${unsure})`)

  // The dead primary comes back as a replica of its stand-in; everything stays healthy.
  await cluster.restart(victim.primary.port)
  await cluster.waitStable()
  // The cluster is stable before the returning node has finished its replica handshake: wait for that too.
  const rejoined = async (): Promise<boolean> => (await cluster.shards()).some((s) => s.primary.port === standIn.port && s.replicas.some((r) => r.port === victim.primary.port))
  await pollUntil('the old primary to rejoin as a replica', 20_000, rejoined).catch(() => {})
  t.ok(await rejoined(), 'the old primary serves as its stand-in\'s replica')
  for (const i of fleet) t.match(await redisCheck(i), { status: 'pass' }, `${i.name} healthy after the rejoin`)
  for (const i of fleet) i.logs.assertNoSecrets(t, [...oidc.issued(), CLIENT_SECRET, KEY])
})
