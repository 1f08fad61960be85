// The cookie codec's fast paths against the plain definitions they replace:
// the Cookie-header scan against split-and-trim, and the line-length
// arithmetic of planCookies against @fastify/cookie's real serializer.
import t from 'tap'
import fc from 'fast-check'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import {
  readCookies, planCookies, requestBytes, toCookieValue, toSealed, MAX_CHUNKS, MAX_COOKIE_BYTES, MAX_REQUEST_COOKIE_BYTES, type ReceivedCookies
} from '../lib/session/codec.ts'

/** Our names, written out: `<name>` and `<name>.0` … `<name>.7`. */
const ours = (name: string): string[] => [name, ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `${name}.${i}`)]

/** The definition: split on `;`, trim, keep our names, refuse duplicates and bad chunk sets. */
function reference (header: string | undefined, name: string): ReceivedCookies {
  const found = new Map<string, string>()
  const result: ReceivedCookies = { value: null, parts: [], names: [], bytes: 0, chunks: 0 }
  if (header === undefined || header === '') return result
  const prefix = name + '.'
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1) continue
    const key = pair.slice(0, eq).trim()
    if (!ours(name).includes(key)) continue
    if (found.has(key)) result.problem = 'duplicate'
    found.set(key, pair.slice(eq + 1).trim())
  }
  result.names = [...found.keys()]
  for (const v of found.values()) result.bytes += v.length
  if (result.problem !== undefined) return result
  const single = found.get(name)
  if (single !== undefined) return { ...result, value: single, parts: [single], chunks: 1 }
  if (found.size === 0) return result
  const parts: string[] = []
  for (let i = 0; found.has(prefix + i); i++) parts.push(found.get(prefix + i) as string)
  if (parts.length !== found.size) return { ...result, problem: 'chunks' }
  return { ...result, value: parts.join(''), parts, chunks: parts.length }
}

t.test('the chunk bound is 8 and the request-size bound 12 KB', async (t) => {
  t.equal(MAX_CHUNKS, 8)
  t.equal(MAX_REQUEST_COOKIE_BYTES, 12288)
  t.equal(MAX_COOKIE_BYTES, 4096)
})

t.test('8 chunks are read; a ninth name, or any other name under the prefix, is not ours', async (t) => {
  const eight = ours('sid').slice(1).map((n, i) => `${n}=v${i}`).join('; ')
  t.same(readCookies(eight, 'sid'), {
    value: 'v0v1v2v3v4v5v6v7', parts: ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7'], names: ours('sid').slice(1), bytes: 16, chunks: 8
  }, '.0 to .7 joined in order')
  t.same(readCookies(eight + '; sid.8=v8', 'sid'), readCookies(eight, 'sid'), '.8 is ignored, not a problem')
  for (const stray of ['sid.8', 'sid.10', 'sid.00', 'sid.01', 'sid.-1', 'sid.+1', 'sid.1.0', 'sid.a b', 'sid.', 'sid.é', 'sid.0x1', 'sid. 1', 'sid.１']) {
    t.same(readCookies(`sid.0=a; ${stray}=x; sid.1=b`, 'sid'), { value: 'ab', parts: ['a', 'b'], names: ['sid.0', 'sid.1'], bytes: 2, chunks: 2 }, `${stray} ignored`)
    t.same(readCookies(`${stray}=x`, 'sid'), { value: null, parts: [], names: [], bytes: 0, chunks: 0 }, `${stray} alone: no session, nothing to expire`)
  }
  t.same(readCookies('sid.0=a; sid.7=h', 'sid'), { value: null, parts: [], names: ['sid.0', 'sid.7'], bytes: 2, chunks: 0, problem: 'chunks' }, 'a gap is a problem')
})

t.test('property: whatever the header, only our nine names are collected (fast-check)', async (t) => {
  const name = '__Host-session'
  // Names under our prefix, from every kind of suffix: digits, spaces, controls, non-ASCII.
  const suffix = fc.oneof(fc.nat({ max: 20 }).map(String), fc.string({ maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 3 }))
  const pair = fc.tuple(suffix, fc.string({ unit: fc.constantFrom('A', 'b', '-', '_', '.'), maxLength: 6 })).map(([s, v]) => `${name}.${s}=${v}`)
  fc.assert(fc.property(fc.array(pair, { maxLength: 40 }), (pairs) => {
    const got = readCookies(pairs.join('; '), name)
    t.ok(got.names.length <= MAX_CHUNKS + 1)
    t.ok(got.names.every((n) => ours(name).includes(n)), 'every collected name is one we could have written')
  }), { numRuns: 2000 })
})

t.test('no session under the 12 KB bound ever needs more chunks than the reader reads', async (t) => {
  // The longest name the policy allows and long attributes make chunks smallest: still at most 4.
  fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 20, max: 700 }), fc.integer({ min: 0, max: 20000 }), (nameLength, attributeBytes, length) => {
    const lines = planCookies('n'.repeat(nameLength), 'A'.repeat(length), attributeBytes)
    if (requestBytes(lines) <= MAX_REQUEST_COOKIE_BYTES) t.ok(lines.length <= 4 && lines.length < MAX_CHUNKS)
  }), { numRuns: 500 })
})

t.test('requestBytes counts `name=value; ` for every cookie, exactly', async (t) => {
  t.equal(requestBytes([]), 0)
  t.equal(requestBytes([{ name: 'ab', value: 'cde' }]), 8)
  t.equal(requestBytes([{ name: 'a.0', value: 'x' }, { name: 'a.1', value: 'yz' }]), 7 + 8)
})

t.test('the Cookie-header scan reads exactly what split-and-trim reads', async (t) => {
  const name = 'sid'
  // Pieces that stress the scan: our names, look-alikes, pairs without '=', stray separators and spaces.
  const piece = fc.oneof(
    fc.constantFrom('sid', 'sid.0', 'sid.1', 'sid.2', 'sid.9', 'sidx', 'xsid', 'sid.', ' sid ', 'a', ''),
    fc.string({ unit: fc.constantFrom('s', 'i', 'd', '.', '=', ';', ' ', '0', '1', 'A', '\t', '\n', '\u00a0', '\ufeff', '\u0085'), maxLength: 12 })
  )
  const pair = fc.tuple(piece, fc.boolean(), piece).map(([k, eq, v]) => eq ? `${k}=${v}` : k)
  const header = fc.array(pair, { maxLength: 8 }).chain((pairs) => fc.constantFrom('; ', ';').map((sep) => pairs.join(sep)))
  fc.assert(fc.property(header, (h) => {
    t.same(readCookies(h, name), reference(h, name))
  }), { numRuns: 3000 })
  t.same(readCookies(undefined, name), reference(undefined, name))
  t.same(readCookies('junk; other; sid=v', name), { value: 'v', parts: ['v'], names: ['sid'], bytes: 1, chunks: 1 }, 'pairs without = are skipped')
  t.same(readCookies('a=sid; xsid=1; sid', name), { value: null, parts: [], names: [], bytes: 0, chunks: 0 }, 'the name inside other pairs is not ours')
})

t.test('a long header of pairs without = is read correctly', async (t) => {
  // 16 KB of `sid;` then one pair (the scan looks for each '=' once, not once per pair).
  const h = 'sid;'.repeat(4000) + 'sid=v'
  t.same(readCookies(h, 'sid'), { value: 'v', parts: ['v'], names: ['sid'], bytes: 1, chunks: 1 })
  // the name thousands of times inside one key, and inside one value: one pair each
  t.same(readCookies('x' + 'sid'.repeat(4000) + '=1; sid=v', 'sid'), { value: 'v', parts: ['v'], names: ['sid'], bytes: 1, chunks: 1 })
  t.same(readCookies('a=' + ' sid'.repeat(4000) + '; \u00a0sid\t=\tv ', 'sid'), { value: 'v', parts: ['v'], names: ['sid'], bytes: 1, chunks: 1 }, 'spaces trimmed as String#trim trims them')
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
