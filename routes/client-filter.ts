// Who may call the debug routes: loopback always, plus the addresses or CIDR
// ranges in `debug.allow`; and under which name: loopback host names always,
// plus the names in `debug.hosts`. A request that carries forwarding headers
// through a proxy Fastify does not trust is refused: behind a proxy on the
// same host, every client would otherwise look like 127.0.0.1.
//
// The Host check stops DNS rebinding: a page on attacker.example whose name
// is re-pointed at 127.0.0.1 makes the browser send loopback requests with
// `Host: attacker.example`, and read the answers as same-origin.
import { BlockList, isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'

// Every header a proxy uses to pass the client's address on (the list the
// request-ip package reads). Fastify applies only X-Forwarded-For, and only
// under trustProxy; any of these left unapplied means the peer is a relay.
export const FORWARDING_HEADERS = [
  'forwarded', 'x-forwarded-for', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-cluster-client-ip', 'x-forwarded', 'forwarded-for', 'x-appengine-user-ip', 'cf-pseudo-ipv4'
]

// Proxies invent more (X-Original-Forwarded-For, X-Originating-IP, CF-Connecting-IPv6,
// X-Envoy-External-Address, X-Azure-ClientIP…), so the names are also judged by their
// shape: anything "forwarded", or an address-like ending after a word that says whose.
// X-Forwarded-Host/-Proto/-Port/-Prefix name where the request went, not who sent it.
const NOT_A_CLIENT = new Set(['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-scheme', 'x-forwarded-ssl', 'x-forwarded-uri', 'x-forwarded-method'])
const ADDRESS_ENDING = /(?:^|-)(?:[a-z]*ip|ipv4|ipv6|addr|address)$/
const WHOSE = /client|real|connect|origin|remote|user|true|proxy|external|pseudo|cluster|socket|peer|source|src/

/** True for a header that passes a client's address on (lower-case name, as Node gives it). */
export function isForwardingHeader (name: string): boolean {
  if (NOT_A_CLIENT.has(name)) return false
  return FORWARDING_HEADERS.includes(name) || name.includes('forwarded') || (ADDRESS_ENDING.test(name) && WHOSE.test(name))
}

// An address, then optionally `/` and a prefix length in canonical decimal.
const ENTRY = /^([^/%]+)(?:\/(0|[1-9]\d{0,2}))?$/
// The IPv4-mapped form `::ffff:a.b.c.d`: its range in IPv4 is the prefix minus 96.
const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/** `::ffff:127.0.0.1` → `127.0.0.1`, so an IPv4 range matches a dual-stack socket. */
function unmap (address: string): string {
  const mapped = MAPPED.exec(address)
  return mapped === null ? address : mapped[1]
}

function family (address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address)
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined
}

/** Adds one `debug.allow` entry to the list; anything but an address or a well-formed CIDR range is refused. */
function addEntry (list: BlockList, entry: string, i: number): void {
  const parts = ENTRY.exec(entry)
  const written = parts?.[1] ?? ''
  const address = unmap(written)
  const type = family(address)
  const bits = parts?.[2]
  // A mapped range below /96 would reach outside the mapped block (`::ffff:10.0.0.0/8` is `::/8`).
  const prefix = Number(bits) - (address === written ? 0 : 96)
  if (type === undefined || (bits !== undefined && (prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)))) {
    throw new errors.FSS_OPTIONS_INVALID(`debug.allow.${i}`, 'Expected an IP address or a CIDR range such as 10.0.0.0/8')
  }
  if (bits === undefined) list.addAddress(address, type)
  else list.addSubnet(address, prefix, type)
}

// `host[:port]` or `[ipv6][:port]`, nothing else (no userinfo, no path).
const HOST = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d{1,5})?$/

/**
 * The host name of a Host header, lower-cased, when it is one of: `localhost`
 * or a name under `.localhost` (RFC 6761 §6.3: browsers resolve them to
 * loopback themselves, so no DNS answer can point them elsewhere), a loopback
 * IP literal, or a name listed in `hosts`.
 */
function hostAllowed (value: string, loopback: BlockList, hosts: ReadonlySet<string>): boolean {
  const parts = HOST.exec(value.toLowerCase())
  if (parts === null) return false
  const ipv6 = parts[1]
  const name = parts[2] ?? `[${ipv6}]`
  if (hosts.has(name)) return true
  if (ipv6 !== undefined) return isIP(ipv6) === 6 && loopback.check(ipv6, 'ipv6')
  if (isIP(name) === 4) return loopback.check(name, 'ipv4')
  return name === 'localhost' || name.endsWith('.localhost')
}

export function clientFilter (allow: string[], hosts: string[] = []): (request: FastifyRequest) => boolean {
  const loopback = new BlockList()
  loopback.addSubnet('127.0.0.0', 8, 'ipv4')
  loopback.addAddress('::1', 'ipv6')
  const list = new BlockList()
  list.addSubnet('127.0.0.0', 8, 'ipv4')
  list.addAddress('::1', 'ipv6')
  allow.forEach((entry, i) => addEntry(list, entry, i))
  const hostNames: ReadonlySet<string> = new Set(hosts.map((h) => h.toLowerCase()))

  const allowed = (address: string): boolean => {
    const ip = unmap(address)
    const type = family(ip)
    return type !== undefined && list.check(ip, type)
  }

  return (request) => {
    // request.host is Host (HTTP/2: :authority), or X-Forwarded-Host under trustProxy; the
    // Host header the proxy sent must pass as well then.
    const sent = request.headers.host
    if (!hostAllowed(request.host, loopback, hostNames) || (sent !== undefined && !hostAllowed(sent, loopback, hostNames))) return false
    /* c8 ignore next -- only a destroyed socket has no remoteAddress; '' is then refused */
    const socket = request.socket.remoteAddress ?? ''
    let proxied = false
    for (const name in request.headers) if (isForwardingHeader(name)) proxied = true
    // Forwarding headers Fastify did not apply (no trustProxy) mean request.ip is the proxy's.
    if (proxied && request.ip === socket) return false
    // Every hop must be allowed: the socket peer and each address Fastify took from
    // X-Forwarded-For (request.ips, only set under trustProxy). request.ip alone is the
    // leftmost trusted entry, which with `trustProxy: true` the client writes itself.
    return [socket, ...(request.ips ?? [])].every(allowed)
  }
}
