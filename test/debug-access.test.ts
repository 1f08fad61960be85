// Who reaches the debug routes, as classes: Host names (DNS rebinding),
// forwarding headers, and CIDR ranges at their edges, each against an oracle
// written independently of routes/client-filter.ts.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { connect as connectHttp2 } from 'node:http2'
import { connect as connectTcp, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import Fastify, { type FastifyRequest, type FastifyServerOptions } from 'fastify'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { clientFilter, FORWARDING_HEADERS, isForwardingHeader } from '../routes/client-filter.ts'
import { build, tempDir } from './helper.ts'

async function suite (t: Test, debug: SessionSuiteOptions['debug'] = true, server: FastifyServerOptions = {}) {
  const app = await build(t, server)
  await app.register(sessionSuite, { debug, secret: { keyFile: join(await tempDir(t), 'secret.key'), env: {} } })
  await app.ready()
  return app
}

/** A bare app whose one route answers whether the current filter admits the request. */
async function filterApp (t: Test, server: FastifyServerOptions = {}) {
  const app = Fastify(server)
  t.teardown(() => app.close())
  let filter: (request: FastifyRequest) => boolean = () => false
  app.get('/', async (request) => ({ allowed: filter(request) }))
  await app.ready()
  return {
    use (allow: string[], hosts: string[] = []) { filter = clientFilter(allow, hosts) },
    async allowed (remoteAddress: string, headers: Record<string, string> = {}): Promise<boolean> {
      return (await app.inject({ url: '/', remoteAddress, headers })).json().allowed
    }
  }
}

// ── Host: DNS rebinding ────────────────────────────────────────────────────

const LOOPBACK_HOSTS = ['localhost', 'localhost:3000', 'LOCALHOST:80', 'app.localhost', 'a.b.localhost:8080', 'my-app_1.localhost', '127.0.0.1', '127.8.9.10:1', '[::1]', '[::1]:3000', '[::ffff:127.0.0.1]:80']
const FOREIGN_HOSTS = [
  'rebind.attacker.example', 'rebind.attacker.example:80', 'localhost.attacker.example', '127.0.0.1.nip.io', 'localhost.', 'localhostx',
  '10.0.0.1', '[2001:db8::1]', '[::2]', 'localhost:80@evil.example', 'user@localhost', 'localhost/x', 'localhost:abc', 'localhost:123456',
  'localhost:', '[::1', '::1', '[127.0.0.1]', '[localhost]', ' localhost', 'local host', '0x7f.0.0.1', '2130706433', '127.1'
]

t.test('DNS rebinding: a loopback client asking for another host name is refused', async (t) => {
  const app = await suite(t)
  for (const host of LOOPBACK_HOSTS) {
    t.equal((await app.inject({ url: '/api/session/debug', headers: { host } })).statusCode, 200, `Host: ${host}`)
  }
  for (const host of FOREIGN_HOSTS) {
    const res = await app.inject({ url: '/api/session/debug', headers: { host } })
    t.equal(res.statusCode, 403, `Host: ${JSON.stringify(host)}`)
    t.equal(res.json().code, 'FSS_DEBUG_FORBIDDEN')
    t.equal(res.headers['cache-control'], 'no-store')
  }
})

t.test('`debug.hosts` admits the listed names, any case, any port; start-up refuses a malformed one', async (t) => {
  const app = await suite(t, { allow: ['10.0.0.0/8'], hosts: ['devbox.internal', 'my_service', '10.0.0.5', '[fd00::1]'] })
  for (const host of ['devbox.internal', 'DevBox.Internal:8443', 'my_service:3000', '10.0.0.5:3000', '[fd00::1]:80', 'localhost']) {
    t.equal((await app.inject({ url: '/api/session/debug', remoteAddress: '10.1.2.3', headers: { host } })).statusCode, 200, host)
  }
  for (const host of ['devbox.internal.attacker.example', 'x.devbox.internal', '10.0.0.6', '[fd00::2]']) {
    t.equal((await app.inject({ url: '/api/session/debug', remoteAddress: '10.1.2.3', headers: { host } })).statusCode, 403, host)
  }
  for (const hosts of [['devbox:80'], ['user@devbox'], ['http://devbox'], ['devbox/'], ['-devbox'], ['dev box'], ['[fd00::1]:80'], ['']]) {
    const bad = Fastify()
    t.teardown(() => bad.close())
    await t.rejects(Promise.resolve(bad.register(sessionSuite, { debug: { hosts }, secret: { keyFile: join(await tempDir(t), 'k'), env: {} } }).ready()), { code: 'FSS_OPTIONS_INVALID' }, JSON.stringify(hosts))
  }
})

t.test('behind a trusted proxy both the Host it sent and X-Forwarded-Host must be allowed', async (t) => {
  const app = await suite(t, true, { trustProxy: '127.0.0.1' })
  const cases: Array<[Record<string, string>, number]> = [
    [{ host: 'localhost:3000', 'x-forwarded-host': 'localhost' }, 200],
    [{ host: 'localhost:3000', 'x-forwarded-host': 'rebind.attacker.example' }, 403],
    [{ host: 'rebind.attacker.example', 'x-forwarded-host': 'localhost' }, 403]
  ]
  for (const [headers, status] of cases) {
    t.equal((await app.inject({ url: '/api/session/debug', headers })).statusCode, status, JSON.stringify(headers))
  }
})

t.test('a request without any Host (HTTP/1.0 on a real socket) is refused', async (t) => {
  const app = await suite(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const socket = connectTcp((app.server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.end('GET /api/session/debug HTTP/1.0\r\n\r\n')
  let answer = ''
  socket.on('data', (d) => { answer += d })
  await once(socket, 'end')
  t.match(answer, /^HTTP\/1\.[01] 403 /)
})

t.test('over HTTP/2 the :authority is the host checked', async (t) => {
  const app = await suite(t, true, { http2: true } as FastifyServerOptions)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = connectHttp2(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => client.close())
  const status = async (authority: string): Promise<number> => {
    const stream = client.request({ ':path': '/api/session/debug', ':authority': authority })
    const [headers] = await once(stream, 'response') as [Record<string, number>]
    stream.resume()
    await once(stream, 'end')
    return headers[':status']
  }
  t.equal(await status('localhost'), 200)
  t.equal(await status('rebind.attacker.example'), 403)
})

t.test('property: only loopback host names pass, whatever the Host header says (fast-check)', async (t) => {
  const f = await filterApp(t)
  f.use([])
  const port = fc.option(fc.integer({ min: 0, max: 65535 }).map((p) => `:${p}`), { nil: '' })
  // Registrable names: never loopback.
  const foreign = fc.tuple(fc.domain(), port).filter(([d]) => d !== 'localhost' && !d.endsWith('.localhost')).map(([d, p]) => d + p)
  const loopback = fc.tuple(fc.oneof(
    fc.constant('localhost'),
    fc.domain().map((d) => `${d}.localhost`),
    fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `127.${a}.${b}.${c}`),
    fc.constantFrom('[::1]', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]')
  ), port).map(([h, p]) => h + p)
  await fc.assert(fc.asyncProperty(foreign, async (host) => !await f.allowed('127.0.0.1', { host })), { numRuns: 300 })
  await fc.assert(fc.asyncProperty(loopback, async (host) => await f.allowed('127.0.0.1', { host })), { numRuns: 300 })
  // Any text at all: admitted only when a URL parser reads it as a loopback host with nothing else.
  const isLoopbackUrlHost = (host: string): boolean => {
    let url: URL
    try { url = new URL(`http://${host}/`) } catch { return false }
    if (url.host.toLowerCase() !== host.toLowerCase().replace(/:80$/, '') && url.host.toLowerCase() !== host.toLowerCase()) return false
    const name = url.hostname
    return name === 'localhost' || name.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]' || name === '[::ffff:7f00:1]' || /^\[::ffff:7f/.test(name)
  }
  // (light-my-request sends its default Host for an empty one: the real-socket test above covers none at all.)
  const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: fc.constantFrom(...'localhost127.0:[]@/x-_ '.split('')), maxLength: 20 })).filter((h) => h !== '')
  await fc.assert(fc.asyncProperty(text, async (host) => {
    const allowed = await f.allowed('127.0.0.1', { host }).catch(() => false)
    return !allowed || isLoopbackUrlHost(host)
  }), { numRuns: 1000 })
})

// ── forwarding headers ─────────────────────────────────────────────────────

t.test('every client-address forwarding header Fastify did not apply refuses the request, even from 127.0.0.1', async (t) => {
  t.same(FORWARDING_HEADERS, [
    'forwarded', 'x-forwarded-for', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
    'x-cluster-client-ip', 'x-forwarded', 'forwarded-for', 'x-appengine-user-ip', 'cf-pseudo-ipv4'
  ])
  const app = await suite(t)
  for (const header of FORWARDING_HEADERS) {
    const res = await app.inject({ url: '/api/session/debug', headers: { [header]: '203.0.113.9' } })
    t.equal(res.statusCode, 403, header)
  }
  t.equal((await app.inject({ url: '/api/session/debug', headers: { 'x-forwarded-host': 'localhost' } })).statusCode, 200, 'X-Forwarded-Host names no client')
  const proxied = await suite(t, true, { trustProxy: true })
  t.equal((await proxied.inject({ url: '/api/session/debug', remoteAddress: '127.0.0.1', headers: { 'true-client-ip': '203.0.113.9' } })).statusCode, 403,
    'under trustProxy too, when Fastify applied no X-Forwarded-For')
  t.equal((await proxied.inject({ url: '/api/session/debug', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '127.0.0.5', 'cf-connecting-ip': '127.0.0.5' } })).statusCode, 200,
    'with X-Forwarded-For applied, its hops are checked')
})

t.test('forwarding headers are also known by their shape: names proxies invent refuse the request, request-routing ones do not', async (t) => {
  const forwarding = [
    'x-original-forwarded-for', 'x-forwarded-for-original', 'x-forwarded-client-cert', 'forwarded-for', 'x-originating-ip', 'cf-connecting-ipv6',
    'x-envoy-external-address', 'x-azure-clientip', 'x-azure-socketip', 'x-proxyuser-ip', 'x-remote-ip', 'x-remote-addr', 'client-ip',
    'x-client-ipv4', 'x-true-client-ip', 'x-original-remote-addr', 'x-real-ip', 'x-source-ip', 'x-peer-address',
    // each word that says whose, alone, and each address-like ending
    ...['client', 'real', 'connect', 'origin', 'remote', 'user', 'true', 'proxy', 'external', 'pseudo', 'cluster', 'socket', 'peer', 'source', 'src'].map((w) => `x-${w}-ip`),
    'clientip', 'x-client-ipv6', 'x-client-addr', 'x-client-address', 'x-clientip'
  ]
  const other = [
    // where the request went, not who sent it
    'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-scheme', 'x-forwarded-ssl',
    'x-forwarded-uri', 'x-forwarded-method',
    // an address-like ending without a word that says whose, or such a word without the ending
    'x-request-id', 'x-tip', 'zip', 'x-ip-hint', 'x-ip', 'user-agent', 'accept', 'x-client-version', 'x-client-ip-version', 'x-real-ipx', 'cookie', 'x-client-ipv5'
  ]
  for (const name of forwarding) t.ok(isForwardingHeader(name), `${name} passes an address on`)
  for (const name of other) t.notOk(isForwardingHeader(name), `${name} names no client`)
  for (const name of FORWARDING_HEADERS) t.ok(isForwardingHeader(name), name)
  const app = await suite(t)
  for (const name of forwarding) {
    t.equal((await app.inject({ url: '/api/session/debug', headers: { [name]: '203.0.113.9' } })).statusCode, 403, `${name}: refused from 127.0.0.1`)
  }
  for (const name of ['x-forwarded-proto', 'x-request-id']) {
    t.equal((await app.inject({ url: '/api/session/debug', headers: { [name]: 'https' } })).statusCode, 200, `${name}: served`)
  }
})

// ── CIDR ranges ────────────────────────────────────────────────────────────

t.test('malformed `debug.allow` entries are refused at start-up, naming the entry', async (t) => {
  const bad = [
    '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/008', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8.0', '10.0.0.0/0x8', '10.0.0.0/1e1',
    '/8', '10.0.0/8', '10.0.0.0.0/8', '010.0.0.0/8', ' 10.0.0.0/8', '10.0.0.0/8 ', '10.0.0.0 /8', 'localhost', '', '/', '10.0.0.0//8',
    '::/129', '2001:db8::/1280', '::ffff:10.0.0.0/8', '::ffff:10.0.0.0/95', '::ffff:10.0.0.0/129', 'fe80::1%eth0', 'fe80::1%eth0/64', '2001:db8::/64/64'
  ]
  for (const entry of bad) {
    t.throws(() => clientFilter(['127.0.0.1', entry]), { code: 'FSS_OPTIONS_INVALID', message: /debug\.allow\.1/ }, JSON.stringify(entry))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(Promise.resolve(app.register(sessionSuite, { debug: { allow: ['10.0.0.0/8/8'] }, secret: { keyFile: join(await tempDir(t), 'k'), env: {} } }).ready()), { code: 'FSS_OPTIONS_INVALID' })
})

t.test('prefix edges: /0, /32, /128, IPv6 prefixes above /32, and the IPv4-mapped forms', async (t) => {
  const f = await filterApp(t)
  const cases: Array<[string, Array<[string, boolean]>]> = [
    ['0.0.0.0/0', [['1.2.3.4', true], ['255.255.255.255', true], ['::ffff:8.8.8.8', true], ['2001:db8::1', false]]],
    ['10.0.0.0/0', [['200.1.1.1', true]]],
    ['10.1.2.3/32', [['10.1.2.3', true], ['10.1.2.2', false], ['10.1.2.4', false], ['::ffff:10.1.2.3', true]]],
    ['10.1.2.2/31', [['10.1.2.2', true], ['10.1.2.3', true], ['10.1.2.1', false], ['10.1.2.4', false]]],
    ['10.0.0.0/8', [['10.255.255.255', true], ['11.0.0.0', false], ['9.255.255.255', false]]],
    ['10.1.2.3', [['10.1.2.3', true], ['10.1.2.4', false]]],
    ['::/0', [['2001:db8::1', true], ['fe80::1', true]]],
    ['2001:db8::5/128', [['2001:db8::5', true], ['2001:db8::4', false], ['2001:db8::6', false]]],
    ['2001:db8::4/127', [['2001:db8::4', true], ['2001:db8::5', true], ['2001:db8::6', false], ['2001:db8::3', false]]],
    ['2001:db8:1:2::/64', [['2001:db8:1:2:ffff:ffff:ffff:ffff', true], ['2001:db8:1:3::', false], ['2001:db8:1:1:ffff:ffff:ffff:ffff', false]]],
    ['2001:db8:abcd::/48', [['2001:db8:abcd:ffff::1', true], ['2001:db8:abce::1', false]]],
    ['2001:db8::/33', [['2001:db8:7fff::1', true], ['2001:db8:8000::1', false]]],
    ['2001:db8::/32', [['2001:db8:ffff::1', true], ['2001:db9::1', false]]],
    ['::ffff:192.168.1.0/120', [['192.168.1.77', true], ['::ffff:192.168.1.77', true], ['192.168.2.1', false]]],
    ['::ffff:10.0.0.0/104', [['10.9.9.9', true], ['11.0.0.1', false], ['::10.9.9.9', false], ['2001:db8::1', false]]],
    ['::ffff:10.0.0.0/96', [['10.9.9.9', true], ['200.1.1.1', true], ['2001:db8::1', false]]],
    ['::ffff:10.1.2.3/128', [['10.1.2.3', true], ['10.1.2.4', false]]],
    ['::FFFF:10.1.2.3', [['10.1.2.3', true], ['10.1.2.4', false]]]
  ]
  for (const [entry, clients] of cases) {
    f.use([entry])
    for (const [client, expected] of clients) t.equal(await f.allowed(client), expected, `${entry} ${expected ? 'admits' : 'refuses'} ${client}`)
  }
  f.use([])
  for (const [client, expected] of [['127.0.0.1', true], ['127.255.255.255', true], ['128.0.0.1', false], ['126.255.255.255', false], ['::1', true], ['::2', false], ['::ffff:127.0.0.1', true]] as Array<[string, boolean]>) {
    t.equal(await f.allowed(client), expected, `loopback only: ${expected ? 'admits' : 'refuses'} ${JSON.stringify(client)}`)
  }
})

const v4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')
const v6 = (n: bigint): string => Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':')

t.test('property: an IPv4 range admits exactly the addresses that share its prefix (fast-check)', async (t) => {
  const f = await filterApp(t)
  const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 })
  await fc.assert(fc.asyncProperty(u32, fc.integer({ min: 0, max: 32 }), u32, fc.boolean(), async (net, prefix, other, near) => {
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0
    // Half the clients share the network bits, so both outcomes are exercised.
    const client = near ? ((net & mask) | (other & ~mask)) >>> 0 : other
    f.use([`${v4(net)}/${prefix}`])
    const inRange = ((client & mask) >>> 0) === ((net & mask) >>> 0)
    const loopback = client >>> 24 === 127
    return await f.allowed(v4(client)) === (inRange || loopback)
  }), { numRuns: 400 })
})

t.test('property: an IPv6 range admits exactly the addresses that share its prefix (fast-check)', async (t) => {
  const f = await filterApp(t)
  const u128 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
  await fc.assert(fc.asyncProperty(u128, fc.integer({ min: 0, max: 128 }), u128, fc.boolean(), async (net, prefix, other, near) => {
    const all = (1n << 128n) - 1n
    const mask = prefix === 0 ? 0n : (all << BigInt(128 - prefix)) & all
    const client = near ? (net & mask) | (other & ~mask & all) : other
    f.use([`${v6(net)}/${prefix}`])
    const inRange = (client & mask) === (net & mask)
    // The loopback rule (::1) and the IPv4-mapped block (checked as IPv4, loopback 127/8 included) sit beside the range.
    const special = client === 1n || client >> 32n === 0xffffn
    const allowed = await f.allowed(v6(client))
    return special || allowed === inRange
  }), { numRuns: 400 })
})

t.test('property: an entry is accepted only as an address with an optional canonical prefix in range (fast-check)', async (t) => {
  const piece = fc.oneof(
    fc.constantFrom('10.0.0.0', '::', '2001:db8::', '::ffff:10.0.0.0', '127.0.0.1', 'fe80::1%lo'),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdef.:/%x- '.split('')), maxLength: 16 })
  )
  const entry = fc.tuple(piece, fc.option(fc.string({ unit: fc.constantFrom(...'0123456789/-+. '.split('')), maxLength: 5 }), { nil: '' })).map(([a, b]) => a + (b === '' ? '' : '/' + b))
  fc.assert(fc.property(entry, (e) => {
    let accepted = true
    try {
      clientFilter([e])
    } catch (err) {
      if ((err as { code?: string }).code !== 'FSS_OPTIONS_INVALID') return false
      accepted = false
    }
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(e)
    if (m === null || !isValidAddress(m[1])) return !accepted
    const [, address, bits] = m
    if (bits === undefined) return accepted
    const mapped = /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)
    const n = Number(bits) - (mapped ? 96 : 0)
    const max = mapped || !address.includes(':') ? 32 : 128
    return accepted === (String(Number(bits)) === bits && n >= 0 && n <= max)
  }), { numRuns: 2000 })
})

/** Whether a URL parser takes the text as exactly this IP literal. */
function isValidAddress (address: string): boolean {
  if (address.includes('%')) return false
  try {
    if (address.includes(':')) return new URL(`http://[${address}]/`).hostname.length > 2
    return new URL(`http://${address}/`).hostname === address && /^\d+\.\d+\.\d+\.\d+$/.test(address)
  } catch {
    return false
  }
}

t.test('an entry is one address: text before a `/` or `%`, or a mapped address with any other digits, never registers what follows', async (t) => {
  const bad = [
    '1.2.3.4/10.0.0.0', 'x/10.0.0.0/8', 'x/10.0.0.1', '10.0.0.0/8/10.0.0.0', 'fe80::1%10.0.0.1', 'fe80::1%10.0.0.0/8', 'a%::1', '10.0.0.0/0/0.0.0.0/0',
    '::ffff:10.0.0.1x', '::ffff:10.0.0.1.5', '::ffff:10.0.0.1.5/120', 'x::ffff:10.0.0.1', '::ffff:10.0.0.1:1',
    '::ffff:10.10.10.10/8', '::ffff:10.10.10.10/95', '::ffff:1.22.3.4/95', '::ffff:1.2.33.4/95', '::ffff:1.2.3.44/95', '::ffff:11.2.3.4/0'
  ]
  for (const entry of bad) {
    t.throws(() => clientFilter([entry]), {
      code: 'FSS_OPTIONS_INVALID',
      message: 'Invalid option debug.allow.0: Expected an IP address or a CIDR range such as 10.0.0.0/8'
    }, JSON.stringify(entry))
  }
  // Mapped ranges from /96 up, with digits of every length, are IPv4 ranges.
  for (const entry of ['::ffff:10.10.10.10/96', '::ffff:1.22.3.4/120', '::ffff:1.2.33.4/127', '::ffff:1.2.3.44/128', '::ffff:123.123.123.123']) {
    t.doesNotThrow(() => clientFilter([entry]), entry)
  }
})

t.test('an IPv6 address that only ends in a dotted quad is IPv6, as a range and as a client', async (t) => {
  const f = await filterApp(t)
  f.use(['2001:db8::ffff:10.0.0.0/104'])
  for (const [client, expected] of [['2001:db8::ffff:10.1.1.1', true], ['2001:db8::ffff:a01:101', true], ['10.1.1.1', false], ['::ffff:10.1.1.1', false], ['2001:db8::fffe:10.1.1.1', false]] as Array<[string, boolean]>) {
    t.equal(await f.allowed(client), expected, `2001:db8::ffff:10.0.0.0/104 ${expected ? 'admits' : 'refuses'} ${client}`)
  }
  f.use(['10.0.0.0/8'])
  for (const [client, expected] of [['10.10.10.10', true], ['::ffff:10.10.10.10', true], ['::FFFF:10.1.1.1', true], ['2001:db8::ffff:10.1.1.1', false], ['1::ffff:10.1.1.1', false], ['::10.1.1.1', false]] as Array<[string, boolean]>) {
    t.equal(await f.allowed(client), expected, `10.0.0.0/8 ${expected ? 'admits' : 'refuses'} ${client}`)
  }
})

t.test('property: a valid entry behind other text and a `/` or `%`, or a mapped address followed by other text, is refused (fast-check)', async (t) => {
  const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 })
  const address = fc.oneof(u32.map(v4), u32.map((n) => `::ffff:${v4(n)}`), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map(v6))
  const prefix = fc.option(fc.integer({ min: 0, max: 32 }).map((n) => `/${n}`), { nil: '' })
  const junk = fc.string({ unit: fc.constantFrom(...'0123456789abcdefx.:/% '.split('')), minLength: 1, maxLength: 12 })
  refuses(t, fc.tuple(junk, fc.constantFrom('/', '%'), address, prefix).map(([j, sep, a, p]) => j + sep + a + p))
  refuses(t, fc.tuple(u32, junk.filter((j) => !/^\d*(?:\/\d+)?$/.test(j))).map(([n, j]) => `::ffff:${v4(n)}${j}`))
})

function refuses (t: Test, entries: fc.Arbitrary<string>): void {
  fc.assert(fc.property(entries, (entry) => {
    try {
      clientFilter([entry])
      return false
    } catch (err) {
      return (err as { code?: string }).code === 'FSS_OPTIONS_INVALID'
    }
  }), { numRuns: 1000 })
}
