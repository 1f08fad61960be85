// Health of the whole Redis topology, not of one socket. A Cluster client
// stays "ready" while one of its primaries is dead (the other shards serve),
// and a Sentinel client may hold a connection to a server that has just been
// demoted, so a PING proves little. Healthy means: every primary answers and
// reports cluster_state:ok (Cluster); a majority of the sentinels answer and
// agree on the primary, and our connection is to a primary (Sentinel); PONG
// (one server). Never throws; each probe is bounded by the timeout.
import type { Cluster, Redis } from 'ioredis'
import { guard, loadIoredis, redisHealth, type RedisClient, type RedisHealth } from './client.ts'
import { topologyOf, type RedisTopology } from './connection.ts'

export interface TopologyHealth extends RedisHealth {
  topology: RedisTopology
  /** What was found, for /health: addresses and states, never a credential. */
  detail: string
}

const address = (node: Redis): string => `${String(node.options.host)}:${String(node.options.port)}`

/** The answer as text, or null when it fails or takes longer than `ms`. */
async function within (ms: number, answer: Promise<unknown>): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), ms) })
  try {
    return await Promise.race([answer.then(String, () => null), late])
  } finally {
    clearTimeout(timer)
  }
}

const SLOTS = 16384

async function clusterHealth (cluster: Cluster, timeoutMs: number): Promise<TopologyHealth> {
  const result = (healthy: boolean, detail: string): TopologyHealth => ({ name: 'redis', healthy, status: cluster.status, topology: 'cluster', detail })
  if (cluster.status !== 'ready') return result(false, `unreachable (${cluster.status})`)
  // The primaries are the ones the client's slot map sends commands to: a dead
  // one stays there (and fails) until the map is read again after its replica's promotion.
  const owners = new Set<string>()
  cluster.slots.forEach((nodes) => owners.add(nodes[0]))
  // Not guard(): a node connection the client has not used yet is still
  // waiting to connect, and this command is what connects it. An owner with
  // no connection at all (a dead primary the pool has dropped) has no answer.
  const asked = cluster.nodes('master').filter((node) => owners.has(address(node)))
  const answers = new Map(await Promise.all(asked.map(async (node) => [address(node), await within(timeoutMs, node.cluster('INFO'))] as const)))
  const silent = [...owners].filter((owner) => answers.get(owner) == null)
  if (silent.length > 0) {
    // Read the slot map now rather than at the next failed command, so a
    // promoted replica is found (and reported healthy) as soon as it serves.
    cluster.refreshSlotsCache()
    return result(false, `unreachable: primary ${silent.join(', ')} does not answer`)
  }
  const failing = [...owners].filter((owner) => !String(answers.get(owner)).includes('cluster_state:ok'))
  if (failing.length > 0) return result(false, `unhealthy: cluster_state is not ok on ${failing.join(', ')}`)
  // cluster_state stays ok with unserved slots when cluster-require-full-coverage is no.
  const served = Math.min(...[...answers.values()].map((info) => parseInt(String(info).split('cluster_slots_ok:')[1], 10)))
  if (!(served >= SLOTS)) return result(false, `unhealthy: ${SLOTS - served} of ${SLOTS} slots are not served`)
  return result(true, `reachable: ${owners.size} primaries, cluster_state:ok`)
}

async function askSentinel (Client: typeof Redis, client: Redis, sentinel: { host?: string, port?: number }, timeoutMs: number): Promise<string | null> {
  const { name, sentinelPassword, sentinelTLS, sentinelUsername } = client.options
  const probe = new Client({
    host: sentinel.host,
    port: sentinel.port,
    ...(sentinelUsername !== undefined && { username: sentinelUsername }),
    ...(sentinelPassword !== undefined && { password: sentinelPassword }),
    ...(sentinelTLS !== undefined && { tls: sentinelTLS }),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs
  })
  // Reported through the count of answers, not as an event nobody listens to.
  probe.on('error', () => {})
  let primary: string | null = null
  try {
    await probe.connect()
    const addr = await probe.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name as string) as [string, string] | null
    if (addr !== null) primary = `${addr[0]}:${addr[1]}`
  } catch {
    // Down, refused or slow: no answer from this sentinel.
  }
  probe.disconnect()
  return primary
}

async function sentinelHealth (client: Redis, timeoutMs: number): Promise<TopologyHealth> {
  const result = (healthy: boolean, detail: string): TopologyHealth => ({ name: 'redis', healthy, status: client.status, topology: 'sentinel', detail })
  // Loaded already: this client is one.
  const { Redis: Client } = await loadIoredis() as typeof import('ioredis')
  const sentinels = client.options.sentinels as Array<{ host?: string, port?: number }>
  const named = (await Promise.all(sentinels.map((s) => askSentinel(Client, client, s, timeoutMs)))).filter((a) => a !== null)
  const majority = Math.floor(sentinels.length / 2) + 1
  if (named.length < majority) return result(false, `unhealthy: ${named.length} of ${sentinels.length} sentinels name a primary`)
  const primaries = [...new Set(named)]
  if (primaries.length > 1) return result(false, `unhealthy: sentinels disagree on the primary (${primaries.join(', ')})`)
  let role: string
  try {
    role = String((await guard(client, timeoutMs, () => client.role()))[0])
  } catch {
    return result(false, `unreachable (${client.status}): primary ${primaries[0]}`)
  }
  if (role !== 'master') return result(false, `unhealthy: connected to a ${role}, sentinels name ${primaries[0]}`)
  return result(true, `reachable: primary ${primaries[0]}, ${named.length} of ${sentinels.length} sentinels agree`)
}

/** For /health: answers within a few timeouts, never throws. */
export async function topologyHealth (client: RedisClient, timeoutMs = 500): Promise<TopologyHealth> {
  const topology = topologyOf(client)
  if (topology === 'cluster') return await clusterHealth(client as unknown as Cluster, timeoutMs)
  if (topology === 'sentinel') return await sentinelHealth(client as unknown as Redis, timeoutMs)
  const h = await redisHealth(client, timeoutMs)
  return { ...h, topology, detail: h.healthy ? 'reachable' : `unreachable (${h.status})` }
}
