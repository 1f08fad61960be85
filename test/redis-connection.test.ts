// Reaching Redis: the ways the `redis` option and the environment name a
// topology, what each turns into (the same fail-fast policy everywhere), and
// what is refused at start-up. The topologies themselves run for real in
// redis-cluster.test.ts and redis-sentinel.test.ts; TLS runs here against a
// redis-server with a certificate made for the test.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import {
  connectRedis, describeRedisConnection, parseRedisNodes, redisConnectionFromEnv,
  resolveRedisTarget, sentinelReconnectDelay, topologyOf, type RedisConnectOptions
} from '../lib/redis/connection.ts'
import { failFastOptions, reconnectDelay, waitReady } from '../lib/redis/client.ts'
import { topologyHealth } from '../lib/redis/topology.ts'
import { redisApp } from './fixtures/redis-app.ts'
import { freePort, launch, terminate } from './fixtures/redis-server.ts'
import { tempDir } from './helper.ts'

const K = randomBytes(32)
const NODES = [{ host: '127.0.0.1', port: 7001 }, { host: 'redis-b.internal', port: 7002 }]
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

function refusal (fn: () => unknown): { code?: string, message?: string } | undefined {
  try {
    fn()
  } catch (err) {
    return err as { code?: string, message?: string }
  }
  return undefined
}

t.test('one server by URL: the fail-fast policy, TLS only for rediss://', async (t) => {
  const plain = resolveRedisTarget({ url: 'redis://127.0.0.1:6390/2' }, 400)
  t.match(plain, { topology: 'standalone', url: 'redis://127.0.0.1:6390/2', options: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 400, connectTimeout: 1000, retryStrategy: reconnectDelay } })
  t.notOk('tls' in (plain as { options: object }).options)
  const tls = resolveRedisTarget({ url: 'rediss://cache.example:6380', tls: { ca: PEM, servername: 'cache.example' } }, 2000)
  t.match(tls, { topology: 'standalone', options: { tls: { ca: PEM, servername: 'cache.example' }, connectTimeout: 2000 } })
  // A primary demoted behind the same address answers writes with READONLY: reconnect and ask again.
  const reconnect = (plain as { options: { reconnectOnError: (err: Error) => boolean } }).options.reconnectOnError
  t.equal(reconnect(new Error("READONLY You can't write against a read only replica.")), true)
  t.equal(reconnect(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')), false)
})

t.test('a Cluster by its seed nodes: the same policy on every node, retries bounded by about one timeout', async (t) => {
  const target = resolveRedisTarget({ cluster: NODES, username: 'app', password: 'pw' }, 500)
  t.match(target, {
    topology: 'cluster',
    nodes: NODES,
    options: {
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      retryDelayOnFailover: 100,
      maxRedirections: 5,
      slotsRefreshTimeout: 500,
      redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 500, username: 'app', password: 'pw' }
    }
  })
  const options = (target as { options: { redisOptions: object, dnsLookup?: unknown } }).options
  t.notOk('retryStrategy' in options.redisOptions || 'enableOfflineQueue' in options.redisOptions, 'cluster-level settings stay at cluster level')
  t.equal(options.dnsLookup, undefined, 'without TLS, ioredis resolves names itself')
  t.equal((resolveRedisTarget({ cluster: NODES }, 100) as { options: { maxRedirections: number } }).options.maxRedirections, 3, 'at least 3 redirections')

  const tls = resolveRedisTarget({ cluster: NODES, tls: { ca: PEM } }, 500) as { options: { redisOptions: { tls: object }, dnsLookup: (a: string, cb: (e: null, a: string) => void) => void } }
  t.same(tls.options.redisOptions.tls, { ca: PEM })
  // With TLS the certificate names the host: the seed's name must reach the handshake unresolved.
  const looked = await new Promise((resolve) => tls.options.dnsLookup('redis-b.internal', (_err, address) => resolve(address)))
  t.equal(looked, 'redis-b.internal')
})

t.test('Sentinel: the master name is required, failover detection on, TLS for sentinels and servers alike', async (t) => {
  const target = resolveRedisTarget({ sentinels: NODES, name: 'main', password: 'pw', sentinelPassword: 'spw' }, 700)
  t.match(target, {
    topology: 'sentinel',
    options: {
      sentinels: NODES,
      name: 'main',
      role: 'master',
      password: 'pw',
      sentinelPassword: 'spw',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 700,
      sentinelCommandTimeout: 700,
      sentinelRetryStrategy: reconnectDelay,
      retryStrategy: sentinelReconnectDelay,
      failoverDetector: true
    }
  })
  t.notOk('tls' in (target as { options: object }).options)
  t.same([0, 1, 3, 4, 50].map(sentinelReconnectDelay), [50, 100, 400, 500, 500], 'asks the sentinels again at least every 500 ms')
  t.match(resolveRedisTarget({ sentinels: NODES, name: 'main', tls: { ca: PEM } }, 700), { options: { tls: { ca: PEM }, enableTLSForSentinelMode: true, sentinelTLS: { ca: PEM } } })
})

t.test('a shared client is used as is; its topology is read from the client', async (t) => {
  const standalone = new Redis({ lazyConnect: true })
  const sentinel = new Redis({ lazyConnect: true, sentinels: NODES, name: 'main' })
  const cluster = new Cluster(NODES, { lazyConnect: true })
  t.teardown(() => { standalone.disconnect(); sentinel.disconnect(); cluster.disconnect() })
  t.same(resolveRedisTarget({ client: standalone }, 100), { topology: 'client', client: standalone })
  t.equal(topologyOf(standalone), 'standalone')
  t.equal(topologyOf(sentinel), 'sentinel')
  t.equal(topologyOf(cluster), 'cluster')
  const shared = await connectRedis({ client: cluster }, 100)
  t.match(shared, { client: cluster, topology: 'cluster', owned: false })
  await shared.close()
  t.equal(cluster.status, 'wait', 'a shared client is not closed by close()')
})

t.test('connectRedis builds the client for each topology (not connected to anything here)', async (t) => {
  const port = await freePort()
  const built = await Promise.all([
    connectRedis({ url: `redis://127.0.0.1:${port}` }, 100),
    connectRedis({ cluster: [{ host: '127.0.0.1', port }] }, 100),
    connectRedis({ sentinels: [{ host: '127.0.0.1', port }], name: 'main' }, 100)
  ])
  const clients = built.map((c) => c.client as Redis | Cluster)
  for (const [i, { close }] of built.entries()) {
    clients[i].on('error', () => {})
    t.teardown(close)
  }
  t.same(built.map((c, i) => [c.topology, c.owned, clients[i].isCluster]), [['standalone', true, false], ['cluster', true, true], ['sentinel', true, false]])
  t.equal(clients[1].options.enableOfflineQueue, false)
  t.same((built[2].client as Redis).options.sentinels, [{ host: '127.0.0.1', port }])
})

t.test('without a connection option the environment decides, else redis://127.0.0.1:6379', async (t) => {
  t.match(resolveRedisTarget({}, 100, {}), { topology: 'standalone', url: 'redis://127.0.0.1:6379' })
  t.match(resolveRedisTarget({}, 100, { REDIS_URL: 'redis://10.0.0.5:6379' }), { url: 'redis://10.0.0.5:6379' })
  t.match(resolveRedisTarget({ password: 'pw' }, 100, { REDIS_CLUSTER_NODES: '10.0.0.5:7000' }), { topology: 'cluster', nodes: [{ host: '10.0.0.5', port: 7000 }], options: { redisOptions: { password: 'pw' } } })
  t.match(resolveRedisTarget({}, 100, { REDIS_SENTINELS: '10.0.0.6:26379', REDIS_SENTINEL_NAME: 'main' }), { topology: 'sentinel', options: { name: 'main' } })
})

t.test('a conflicting or incomplete connection is refused at start-up, naming the option', async (t) => {
  const client = new Redis({ lazyConnect: true })
  t.teardown(() => client.disconnect())
  const cases: Array<[RedisConnectOptions, RegExp]> = [
    [{ url: 'redis://a:1', cluster: NODES }, /option redis: give one of url, cluster, sentinels or client, not url and cluster/],
    [{ sentinels: NODES, name: 'm', client }, /option redis: .*not sentinels and client/],
    [{ client, password: 'x' }, /option redis\.password: a shared client is used as is/],
    [{ client, tls: {} }, /option redis\.tls: a shared client is used as is/],
    [{ client: {} as Redis }, /option redis\.client: expected an ioredis Redis or Cluster instance/],
    [{ client: null as unknown as Redis }, /option redis\.client: expected an ioredis/],
    [{ cluster: NODES, name: 'm' }, /option redis\.name: names the Sentinel master: give sentinels too/],
    [{ name: 'm' }, /option redis\.name: names the Sentinel master/],
    [{ cluster: NODES, sentinelPassword: 'x' }, /option redis\.sentinelPassword: give sentinels too/],
    [{ url: 'redis://a:1', password: 'x' }, /option redis\.password: put credentials in the url/],
    [{ url: 'redis://a:1', username: 'x' }, /option redis\.username: put credentials in the url/],
    [{ url: 'redis://a:1', tls: { ca: PEM } }, /option redis\.tls: needs a rediss:\/\/ url/],
    [{ sentinels: NODES }, /option redis\.name: the master name the sentinels monitor is required/]
  ]
  for (const [opts, message] of cases) {
    t.match(refusal(() => resolveRedisTarget(opts, 100, {})), { code: 'FSS_OPTIONS_INVALID', message }, message.source)
  }
})

t.test('the REDIS_* environment: one topology, named variables in every refusal', async (t) => {
  t.equal(redisConnectionFromEnv({}), undefined)
  t.equal(redisConnectionFromEnv({ REDIS_URL: '', REDIS_CLUSTER_NODES: '' }), undefined, 'empty is unset')
  t.same(redisConnectionFromEnv({ REDIS_URL: 'rediss://:pw@cache:6380/1' }), { url: 'rediss://:pw@cache:6380/1' })
  t.same(redisConnectionFromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002,redis-c.internal:7003' }), {
    cluster: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '::1', port: 7002 }, { host: 'redis-c.internal', port: 7003 }]
  })
  t.same(redisConnectionFromEnv({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'main' }), { sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'main' })
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ REDIS_URL: 'redis://a:1', REDIS_SENTINELS: 's:1' }, /option REDIS_URL and REDIS_SENTINELS: set only one of/],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 's:1', REDIS_SENTINEL_NAME: 'm' }, /option REDIS_CLUSTER_NODES and REDIS_SENTINELS/],
    [{ REDIS_URL: 'http://a:1' }, /option REDIS_URL: expected redis:\/\//],
    [{ REDIS_SENTINELS: 's:1' }, /option REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_NAME: 'm' }, /option REDIS_SENTINEL_NAME: goes with REDIS_SENTINELS/],
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, /option REDIS_CLUSTER_NODES: .*item "b" is not/],
    [{ REDIS_CLUSTER_NODES: 'a:0' }, /option REDIS_CLUSTER_NODES: .*item "a:0"/],
    [{ REDIS_CLUSTER_NODES: 'a:65536' }, /item "a:65536"/],
    [{ REDIS_CLUSTER_NODES: ' , ' }, /option REDIS_CLUSTER_NODES: expected host:port/],
    [{ REDIS_SENTINELS: 'a:1:2', REDIS_SENTINEL_NAME: 'm' }, /option REDIS_SENTINELS: .*item "a:1:2"/]
  ]
  for (const [env, message] of cases) {
    t.match(refusal(() => redisConnectionFromEnv(env)), { code: 'FSS_OPTIONS_INVALID', message }, message.source)
  }
})

t.test('a node list parses back what was written, and any other text is a coded refusal, never a crash', async (t) => {
  const host = fc.oneof(
    fc.ipV4(),
    fc.domain(),
    fc.ipV6().map((ip) => `[${ip}]`)
  )
  const node = fc.record({ host, port: fc.integer({ min: 1, max: 65535 }) })
  t.doesNotThrow(() => fc.assert(fc.property(fc.array(node, { minLength: 1, maxLength: 20 }), (nodes) => {
    const parsed = parseRedisNodes(nodes.map((n) => `${n.host}:${n.port}`).join(','), 'X')
    return parsed.length === nodes.length && parsed.every((p, i) => p.port === nodes[i].port && p.host === nodes[i].host.replace(/^\[(.*)\]$/, '$1'))
  })), 'written lists parse back')
  t.doesNotThrow(() => fc.assert(fc.property(fc.string({ maxLength: 200 }), (raw) => {
    try {
      const parsed = parseRedisNodes(raw, 'X')
      return parsed.length > 0 && parsed.every((p) => p.port >= 1 && p.port <= 65535 && p.host.length > 0)
    } catch (err) {
      return (err as { code?: string }).code === 'FSS_OPTIONS_INVALID'
    }
  })), 'any text parses to valid nodes or is refused with a code')
})

t.test('without the ioredis package, a Cluster or Sentinel connection is the same coded error as one server', async (t) => {
  for (const opts of [{ cluster: NODES }, { sentinels: NODES, name: 'main' }, { url: 'redis://127.0.0.1:1' }]) {
    await t.rejects(connectRedis(opts, 100, {}, 'fss-not-installed-redis-client'), { code: 'FSS_REDIS_CLIENT_MISSING' }, Object.keys(opts)[0])
  }
})

t.test('a start-up line names the hosts, never a password', async (t) => {
  t.equal(describeRedisConnection({ url: 'redis://:s3cret@cache.internal:6380/1' }), 'Redis at cache.internal:6380')
  t.equal(describeRedisConnection({ cluster: NODES }), 'Redis Cluster (seeds 127.0.0.1:7001, redis-b.internal:7002)')
  t.equal(describeRedisConnection({ sentinels: NODES, name: 'main', sentinelPassword: 's3cret' }), 'Redis Sentinel master main (sentinels 127.0.0.1:7001, redis-b.internal:7002)')
  t.equal(describeRedisConnection({ sentinels: NODES }), 'Redis Sentinel master ? (sentinels 127.0.0.1:7001, redis-b.internal:7002)')
  t.equal(describeRedisConnection({}), 'a Redis client the service supplied')
  t.same(failFastOptions(3000), { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 3000, connectTimeout: 3000, retryStrategy: reconnectDelay })
})

t.test('the plugin refuses a brace in keyPrefix, a WAIT as long as the command timeout, and a second way to connect', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ url: 'redis://127.0.0.1:1', keyPrefix: 'app{1}:' }, /option redis\.keyPrefix/],
    [{ url: 'redis://127.0.0.1:1', commandTimeout: 300, replicaAckTimeout: 150 }, /option redis\.replicaAckTimeout: must be under half of commandTimeout \(300 ms\)/],
    [{ url: 'redis://127.0.0.1:1', replicaAcks: 11 }, /option redis\.replicaAcks/],
    [{ url: 'redis://127.0.0.1:1', cluster: NODES }, /option redis: give one of url, cluster/],
    [{ cluster: [{ host: '', port: 1 }] }, /option redis\.cluster\.0\.host/]
  ]
  for (const [opts, message] of cases) {
    await t.rejects(redisApp(t, [K], opts), { code: 'FSS_OPTIONS_INVALID', message }, message.source)
  }
})

// ── TLS, for real ───────────────────────────────────────────────────────────
const run = promisify(execFile)

async function tlsServer (t: Test): Promise<{ port: number, ca: string }> {
  const dir = await tempDir(t, 'fss-tls-')
  // A throw-away CA-less self-signed certificate for 127.0.0.1 (P-256: quick to make).
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { timeout: 10_000 })
  const port = await freePort()
  const output: string[] = []
  const child = await launch(port, dir, output, {
    args: ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'),
      '--tls-ca-cert-file', join(dir, 'cert.pem'), '--tls-auth-clients', 'no']
  })
  t.teardown(() => terminate(child))
  return { port, ca: await readFile(join(dir, 'cert.pem'), 'utf8') }
}

t.test('rediss:// with the server\'s CA stores tokens over TLS; without it the store stays unhealthy', async (t) => {
  const { port, ca } = await tlsServer(t)
  const tok = { access_token: 'at-' + randomBytes(16).toString('hex'), token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) + 3600 }
  const { app } = await redisApp(t, [K], { url: `rediss://127.0.0.1:${port}`, tls: { ca }, keyPrefix: 'tls:' })
  t.equal(app.redisTokenStore.client.status, 'ready')
  const stored = await app.inject({ method: 'POST', url: '/token', payload: tok })
  t.equal(stored.statusCode, 200)
  const cookies = { session: stored.cookies.find((c) => c.name === 'session')?.value ?? '' }
  t.same((await app.inject({ url: '/token', cookies })).json(), { token: tok })
  t.match(await app.redisTokenStore.health(), { healthy: true, topology: 'standalone', detail: 'reachable' })

  // The same server without its CA: the handshake fails, so no connection ever becomes ready.
  const untrusted = new Redis(`rediss://127.0.0.1:${port}`, { ...failFastOptions(300), retryStrategy: () => null })
  untrusted.on('error', () => {})
  t.teardown(() => untrusted.disconnect())
  t.equal(await waitReady(untrusted, 1000), false)
  t.match(await topologyHealth(untrusted, 300), { healthy: false, topology: 'standalone', detail: /^unreachable/ })
})
