// Who may call the debug routes: loopback always, plus the addresses or CIDR
// ranges in `debug.allow`. A request that carries forwarding headers through a
// proxy Fastify does not trust is refused: behind a proxy on the same host,
// every client would otherwise look like 127.0.0.1.
import { BlockList, isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip']

/** `::ffff:127.0.0.1` → `127.0.0.1`, so an IPv4 range matches a dual-stack socket. */
function unmap (address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return mapped === null ? address : mapped[1]
}

function family (address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address)
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined
}

export function clientFilter (allow: string[]): (request: FastifyRequest) => boolean {
  const list = new BlockList()
  list.addSubnet('127.0.0.0', 8, 'ipv4')
  list.addAddress('::1', 'ipv6')
  allow.forEach((entry, i) => {
    const [written, bits] = entry.split('/')
    const address = unmap(written)
    const type = family(address)
    // An IPv4-mapped range (::ffff:10.0.0.0/104) is the IPv4 range /8.
    const prefix = Number(bits) - (address === written ? 0 : 96)
    const max = type === 'ipv4' ? 32 : 128
    if (type === undefined || (bits !== undefined && !(/^\d+$/.test(bits) && prefix >= 0 && prefix <= max))) {
      throw new errors.FSS_OPTIONS_INVALID(`debug.allow.${i}`, 'Expected an IP address or CIDR range')
    }
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, prefix, type)
  })

  const allowed = (address: string): boolean => {
    const ip = unmap(address)
    const type = family(ip)
    return type !== undefined && list.check(ip, type)
  }

  return (request) => {
    /* c8 ignore next -- only a destroyed socket has no remoteAddress; '' is then refused */
    const socket = request.socket.remoteAddress ?? ''
    const proxied = FORWARDING_HEADERS.some((h) => request.headers[h] !== undefined)
    // Forwarding headers Fastify did not apply (no trustProxy) mean request.ip is the proxy's.
    if (proxied && request.ip === socket) return false
    // Every hop must be allowed: the socket peer and each address Fastify took from
    // X-Forwarded-For (request.ips, only set under trustProxy). request.ip alone is the
    // leftmost trusted entry, which with `trustProxy: true` the client writes itself.
    return [socket, ...(request.ips ?? [])].every(allowed)
  }
}
