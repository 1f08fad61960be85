// The cookie codec's fast paths against the plain definitions they replace:
// the Cookie-header scan against split-and-trim, and the line-length
// arithmetic of planCookies against @fastify/cookie's real serializer.
import t from 'tap'
import fc from 'fast-check'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { readCookies, planCookies, toCookieValue, toSealed, MAX_COOKIE_BYTES, type ReceivedCookies } from '../lib/session/codec.ts'

/** The definition: split on `;`, trim, keep our names, refuse duplicates and bad chunk sets. */
function reference (header: string | undefined, name: string): ReceivedCookies {
  const found = new Map<string, string>()
  const result: ReceivedCookies = { value: null, names: [], bytes: 0, chunks: 0 }
  if (header === undefined || header === '') return result
  const prefix = name + '.'
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1) continue
    const key = pair.slice(0, eq).trim()
    if (key !== name && !key.startsWith(prefix)) continue
    if (found.has(key)) result.problem = 'duplicate'
    found.set(key, pair.slice(eq + 1).trim())
  }
  result.names = [...found.keys()]
  for (const v of found.values()) result.bytes += v.length
  if (result.problem !== undefined) return result
  const single = found.get(name)
  if (single !== undefined) return { ...result, value: single, chunks: 1 }
  if (found.size === 0) return result
  const parts: string[] = []
  for (let i = 0; i < 8 && found.has(prefix + i); i++) parts.push(found.get(prefix + i) as string)
  if (parts.length !== found.size) return { ...result, problem: 'chunks' }
  return { ...result, value: parts.join(''), chunks: parts.length }
}

t.test('the Cookie-header scan reads exactly what split-and-trim reads', async (t) => {
  const name = 'sid'
  // Pieces that stress the scan: our names, look-alikes, pairs without '=', stray separators and spaces.
  const piece = fc.oneof(
    fc.constantFrom('sid', 'sid.0', 'sid.1', 'sid.2', 'sid.9', 'sidx', 'xsid', 'sid.', ' sid ', 'a', ''),
    fc.string({ unit: fc.constantFrom('s', 'i', 'd', '.', '=', ';', ' ', '0', '1', 'A', '\t'), maxLength: 12 })
  )
  const pair = fc.tuple(piece, fc.boolean(), piece).map(([k, eq, v]) => eq ? `${k}=${v}` : k)
  const header = fc.array(pair, { maxLength: 8 }).chain((pairs) => fc.constantFrom('; ', ';').map((sep) => pairs.join(sep)))
  fc.assert(fc.property(header, (h) => {
    t.same(readCookies(h, name), reference(h, name))
  }), { numRuns: 3000 })
  t.same(readCookies(undefined, name), reference(undefined, name))
  t.same(readCookies('junk; other; sid=v', name), { value: 'v', names: ['sid'], bytes: 1, chunks: 1 }, 'pairs without = are skipped')
  t.same(readCookies('a=sid; xsid=1; sid', name), { value: null, names: [], bytes: 0, chunks: 0 }, 'the name inside other pairs is not ours')
})

t.test('a long header of pairs without = is read correctly', async (t) => {
  // 16 KB of `sid;` then one pair (the scan looks for each '=' once, not once per pair).
  const h = 'sid;'.repeat(4000) + 'sid=v'
  t.same(readCookies(h, 'sid'), { value: 'v', names: ['sid'], bytes: 1, chunks: 1 })
})

t.test('planned lines are exactly as long as the lines @fastify/cookie sends, and never over 4096 bytes', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  t.teardown(() => app.close())
  const optionSets = [
    { path: '/', httpOnly: true, secure: true, sameSite: 'lax' as const, maxAge: 604800 },
    { path: '/app/x', domain: 'example.com', httpOnly: false, secure: false, sameSite: 'strict' as const, maxAge: 59, priority: 'high' as const, partitioned: true }
  ]
  for (const options of optionSets) {
    for (const name of ['__Host-session', 's']) {
      const attributeBytes = app.serializeCookie(name, '', options).length - name.length - 1
      for (const length of [0, 1, 3000, 4000, 4096 - name.length - 1 - attributeBytes, 4097 - name.length - 1 - attributeBytes, 9000, 20000]) {
        const value = 'A'.repeat(length)
        const lines = planCookies(name, value, attributeBytes)
        const sent = lines.map((l) => app.serializeCookie(l.name, l.value, options))
        t.ok(sent.every((s) => Buffer.byteLength(s) <= MAX_COOKIE_BYTES), `${name} ${length}: every line fits`)
        t.equal(lines.map((l) => l.value).join(''), value, `${name} ${length}: nothing lost`)
        const fitsOne = Buffer.byteLength(app.serializeCookie(name, value, options)) <= MAX_COOKIE_BYTES
        t.equal(lines.length === 1 && lines[0].name === name, fitsOne, `${name} ${length}: one cookie exactly when its line fits`)
        // Every chunk but the last is filled to the byte.
        for (const s of sent.slice(0, -1)) if (lines.length > 1) t.equal(Buffer.byteLength(s), MAX_COOKIE_BYTES)
      }
    }
  }
})

t.test('the base64url value round-trips to secure-session form for every byte string', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 300 }), fc.uint8Array({ minLength: 24, maxLength: 24 }), (c, n) => {
    const sealed = Buffer.from(c).toString('base64') + ';' + Buffer.from(n).toString('base64')
    const value = toCookieValue(sealed)
    t.match(value, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    const back = toSealed(value) as string
    const [bc, bn] = back.split(';')
    t.same([Buffer.from(bc, 'base64'), Buffer.from(bn, 'base64')], [Buffer.from(c), Buffer.from(n)])
  }), { numRuns: 300 })
  t.equal(toSealed('abc.de%3D'), null, 'a percent-escape is refused')
  t.equal(toSealed('abc.de.f'), null, 'two separators are refused')
})
