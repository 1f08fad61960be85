// The cache of decoded sessions on its own: least recently used out first,
// both bounds held, every caller its own copy, flush, and — against the real
// sealer — a cached read that always equals decoding the cookie again.
import t from 'tap'
import fc from 'fast-check'
import { createHash, randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createDecodedCache, entryBytes, ENTRY_OVERHEAD, type DecodedSession } from '../lib/session/decoded-cache.ts'
import { createSealer, type Sealer } from '../lib/session/sealer.ts'
import { buildPayload, nowSeconds } from '../lib/session/payload.ts'

const session = (data: Record<string, unknown>, issuedAt = 1_700_000_000, createdAt = issuedAt): DecodedSession => ({ data, issuedAt, createdAt })

/**
 * A session the size of a real OAuth token set (about 1.2 KB of JSON), its
 * strings made from a digest of `seed`: randomBytes() would do, but under tap
 * each call leaves ~50 bytes of its own behind, which the memory test would count.
 */
function tokenSession (seed: number): Record<string, unknown> {
  const part = (n: number, salt: string): string => createHash('sha256').update(`${seed}/${salt}`).digest('base64url').repeat(Math.ceil(n / 43)).slice(0, n)
  return JSON.parse(JSON.stringify({
    oauth: {
      access_token: `${part(40, 'a')}.${part(347, 'b')}.${part(86, 'c')}`,
      refresh_token: part(32, 'd'),
      id_token: `${part(40, 'e')}.${part(400, 'f')}.${part(86, 'g')}`,
      token_type: 'Bearer',
      expires_at: 1_700_003_600,
      scope: 'openid profile email offline_access'
    }
  })) as Record<string, unknown>
}

t.test('the least recently used session is the one evicted', async (t) => {
  const cache = createDecodedCache({ maxEntries: 3 })
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((v) => cache.key(v))
  cache.set(a, session({ v: 'a' }))
  cache.set(b, session({ v: 'b' }))
  cache.set(c, session({ v: 'c' }))
  t.ok(cache.get(a), 'reading a makes it the most recent')
  cache.set(d, session({ v: 'd' }))
  t.equal(cache.get(b), undefined, 'b, the least recently used, is gone')
  t.same([a, c, d].map((k) => cache.get(k)?.data.v), ['a', 'c', 'd'], 'the others stay')
  t.match(cache.stats(), { entries: 3, evictions: 1 })
})

t.test('never more entries than maxEntries', async (t) => {
  const cache = createDecodedCache({ maxEntries: 10 })
  for (let i = 0; i < 100; i++) cache.set(cache.key(`cookie-${i}`), session({ i }))
  const stats = cache.stats()
  t.equal(stats.entries, 10)
  t.equal(stats.evictions, 90)
  t.same(cache.get(cache.key('cookie-99'))?.data, { i: 99 }, 'the newest is kept')
  t.equal(cache.get(cache.key('cookie-89')), undefined, 'the 11th newest is not')
})

t.test('never more estimated bytes than maxBytes, and a session larger than the bound alone is not kept', async (t) => {
  const one = entryBytes({ s: 'x'.repeat(1000) }, 'c0') as number
  const cache = createDecodedCache({ maxBytes: 4 * one })
  for (let i = 0; i < 20; i++) {
    t.equal(cache.set(cache.key(`c${i}`), session({ s: String(i % 10).repeat(1000) })), true)
    t.ok(cache.stats().bytes <= 4 * one, `within the bound after ${i + 1} sets`)
  }
  t.equal(cache.stats().entries, 4, 'four such sessions fit')
  t.equal(cache.stats().bytes, 4 * one, 'bytes are the sum of the entries')
  t.equal(cache.set(cache.key('huge'), session({ s: 'x'.repeat(5 * 1000) })), false, 'too large alone: refused')
  t.equal(cache.get(cache.key('huge')), undefined)
  t.equal(cache.stats().entries, 4, 'and nothing was evicted for it')
  t.equal(cache.stats().refused, 1)
})

t.test('replacing or deleting an entry gives its bytes back', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('v')
  cache.set(k, session({ s: 'x'.repeat(100) }))
  cache.set(k, session({ s: 'x'.repeat(10) }))
  t.equal(cache.stats().bytes, entryBytes({ s: 'x'.repeat(10) }, 'v'))
  t.equal(cache.stats().entries, 1)
  t.equal(cache.delete(k), true)
  t.equal(cache.delete(k), false, 'a second delete finds nothing')
  t.match(cache.stats(), { entries: 0, bytes: 0 })
})

t.test('every caller gets its own deep copy: a write through one never shows in another or in the cache', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('cookie')
  const original = { user: { name: 'ann', roles: ['a', 'b'] }, n: 1 }
  cache.set(k, session(original))
  original.user.roles.push('stored-then-changed')
  const first = cache.get(k) as DecodedSession
  const second = cache.get(k) as DecodedSession
  t.not(first.data, second.data)
  const user = first.data.user as { name: string, roles: string[] }
  user.name = 'eve'
  user.roles.push('admin')
  first.data.n = 2
  first.data.added = true
  t.same(second.data, { user: { name: 'ann', roles: ['a', 'b'] }, n: 1 }, 'the other copy is untouched')
  t.same(cache.get(k)?.data, { user: { name: 'ann', roles: ['a', 'b'] }, n: 1 }, 'so is the cache, also by the object given to set()')
})

t.test('flush forgets every session', async (t) => {
  const cache = createDecodedCache()
  const keys = ['a', 'b', 'c'].map((v) => cache.key(v))
  for (const k of keys) cache.set(k, session({ k }))
  cache.flush()
  t.same(keys.map((k) => cache.get(k)), [undefined, undefined, undefined])
  t.match(cache.stats(), { entries: 0, bytes: 0, flushes: 1, misses: 3 })
})

t.test('the times come back as stored; hits and misses are counted', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('v')
  t.equal(cache.get(k), undefined)
  cache.set(k, session({}, 1_700_000_500, 1_700_000_000))
  t.same(cache.get(k), { data: {}, issuedAt: 1_700_000_500, createdAt: 1_700_000_000 })
  t.match(cache.stats(), { hits: 1, misses: 1 })
})

t.test('a hit needs every character of the value', async (t) => {
  const cache = createDecodedCache()
  const value = randomBytes(1200).toString('base64url') + '.' + randomBytes(24).toString('base64url')
  const key = cache.key(value)
  cache.set(key, session({ v: 'genuine' }))
  const header = `other=1; session=${value}; more=2`
  t.same(cache.get(cache.key(header.slice(17, 17 + value.length)))?.data, { v: 'genuine' }, 'the same value, cut from a Cookie header: a hit')
  const flipped = value.slice(0, 600) + (value[600] === 'A' ? 'B' : 'A') + value.slice(601)
  const near = [
    ['one character changed in the middle', flipped],
    ['one character added', value + 'A'],
    ['one character dropped', value.slice(0, -1)],
    ['the first 32 characters alone', value.slice(0, 32)],
    ['the last character changed', value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A')]
  ]
  for (const [what, other] of near) {
    t.equal(cache.get(cache.key(other)), undefined, `${what}: a miss`)
    t.equal(cache.delete(cache.key(other)), false, `${what}: deletes nothing`)
  }
  t.equal(cache.stats().entries, 1)
  const [first, second] = [value.slice(0, 700), value.slice(700)]
  t.same(cache.get(cache.key(first + second, [first, second]))?.data, { v: 'genuine' }, 'joined from chunks, compared chunk by chunk: a hit')
  const [a, b, c] = [value.slice(0, 10), value.slice(10, 900), value.slice(900)]
  t.same(cache.get(cache.key(a + b + c, [a, b, c]))?.data, { v: 'genuine' }, 'a first chunk shorter than the slot: found by the whole value\'s slot')
  t.equal(cache.get(cache.key(second + first, [second, first])), undefined, 'the chunks in another order: a miss')
  const flippedSecond = second.slice(0, 100) + (second[100] === 'A' ? 'B' : 'A') + second.slice(101)
  t.equal(cache.get(cache.key(first + flippedSecond, [first, flippedSecond])), undefined, 'one character changed in a later chunk: a miss')
  t.equal(cache.get(cache.key(first + second.slice(0, -1), [first, second.slice(0, -1)])), undefined, 'the last chunk one character short: a miss')
  t.equal(cache.get(cache.key(first + second + 'A', [first, second + 'A'])), undefined, 'the last chunk one character long: a miss')
  t.equal(cache.get(cache.key(first + second, [first, second.slice(0, -1)])), undefined, 'chunks that do not cover the kept value: a miss')
  t.equal(cache.get(cache.key(value.slice(0, 32) + 'A', [value.slice(0, 32), 'A'])), undefined, 'a short value sharing the slot: a miss')
  t.equal(cache.delete(cache.key(first + flippedSecond, [first, flippedSecond])), false, 'a changed chunk deletes nothing')
  t.equal(cache.delete(cache.key(first + second, [first, second])), true, 'the same chunks delete the entry')
  cache.set(key, session({ v: 'genuine' }))
  cache.set(cache.key(flipped), session({ v: 'other' }))
  t.same(cache.get(cache.key(flipped))?.data, { v: 'other' }, 'a value sharing the first characters replaces the entry')
  t.equal(cache.get(key), undefined, 'and the first value is a miss again, never served the other')
  t.match(cache.stats(), { entries: 1, bytes: entryBytes({ v: 'other' }, flipped) })
  const wide = '€'.repeat(40) + value
  cache.set(cache.key(wide), session({ v: 'wide' }))
  t.same(cache.get(cache.key(wide.slice(0)))?.data, { v: 'wide' }, 'any string works, not only ASCII')
  t.equal(cache.get(cache.key('€'.repeat(40) + flipped)), undefined)
})

t.test('data a JSON round trip would change is refused, so a hit is always what decoding gives', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('v')
  class Point { x = 1 }
  const sparse: unknown[] = [1]
  sparse[2] = 3
  let deep: unknown = 'leaf'
  for (let i = 0; i < 64; i++) deep = [deep]
  const refused: Array<[string, unknown]> = [
    ['undefined', undefined], ['NaN', Number.NaN], ['Infinity', Infinity], ['-0', -0], ['a bigint', 1n],
    ['a function', () => 1], ['a symbol', Symbol('s')], ['a Date', new Date(0)], ['a class instance', new Point()],
    ['a Map', new Map()], ['a Buffer', Buffer.from('x')], ['a toJSON method', { toJSON: () => 'x' }],
    ['an array with a hole', sparse], ['nesting deeper than 64', deep]
  ]
  for (const [what, value] of refused) {
    t.equal(cache.set(k, session({ ok: 1, value })), false, what)
    t.equal(cache.get(k), undefined, `${what}: nothing stored`)
    t.equal(entryBytes({ value }, 'v'), undefined, `${what}: no size either`)
  }
  t.equal(cache.stats().refused, refused.length)
  t.equal(cache.set(k, session({ value: (deep as unknown[])[0] })), true, '64 levels are kept')
  const bare = Object.create(null) as Record<string, unknown>
  bare.x = 1
  t.equal(cache.set(k, session({ bare })), true, 'an object without a prototype is plain JSON')
  t.equal(Object.getPrototypeOf(cache.get(k)?.data.bare), Object.prototype, 'and comes back as JSON.parse would make it')
})

t.test('a "__proto__" field stays a field and never becomes the prototype', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('v')
  const data = JSON.parse('{"__proto__":{"isAdmin":true},"list":[{"__proto__":{"x":1}}]}') as Record<string, unknown>
  t.equal(cache.set(k, session(data)), true)
  const got = cache.get(k) as DecodedSession
  t.equal(Object.getPrototypeOf(got.data), Object.prototype)
  t.equal((got.data as { isAdmin?: boolean }).isAdmin, undefined, 'nothing inherited')
  t.ok(Object.hasOwn(got.data, '__proto__'), 'an own field')
  t.equal(JSON.stringify(got.data), JSON.stringify(data), 'the same JSON')
})

t.test('an enumerable property on Object.prototype is not copied into the session', async (t) => {
  const cache = createDecodedCache()
  const k = cache.key('v')
  cache.set(k, session({ user: { name: 'ann' }, list: [{ a: 1 }] }))
  // the pollution this guards against, undone in finally
  // eslint-disable-next-line no-extend-native
  Object.defineProperty(Object.prototype, 'polluted', { value: 'yes', enumerable: true, configurable: true, writable: true })
  let got: DecodedSession | undefined
  try {
    got = cache.get(k)
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted
  }
  t.ok(got)
  for (const o of [got?.data, got?.data.user, (got?.data.list as unknown[])[0]]) t.notOk(Object.hasOwn(o as object, 'polluted'), 'inherited, as a fresh decode would have it, not own')
  t.same(got?.data, { user: { name: 'ann' }, list: [{ a: 1 }] })
  t.strictSame(cache.get(k), { data: { user: { name: 'ann' }, list: [{ a: 1 }] }, issuedAt: 1_700_000_000, createdAt: 1_700_000_000 }, 'and the fast copy is back once it is gone')
})

t.test('options are checked once, naming the option', async (t) => {
  t.throws(() => createDecodedCache({ maxEntries: 0 }), { code: 'FSS_OPTIONS_INVALID', message: /decodedCache\.maxEntries/ })
  t.throws(() => createDecodedCache({ maxBytes: 1.5 }), { code: 'FSS_OPTIONS_INVALID', message: /decodedCache\.maxBytes/ })
  t.throws(() => createDecodedCache({ size: 1 } as never), { code: 'FSS_OPTIONS_INVALID' })
})

t.test('against the real sealer: a cached read equals decoding the cookie again', async (t) => {
  const idle = 7 * 24 * 3600
  const sealer: Sealer = createSealer([randomBytes(32)], idle, 30 * 24 * 3600)
  const seal = (data: Record<string, unknown>, created: number, issued: number): string => sealer.seal(buildPayload(data, created, issued))
  const decode = (value: string): DecodedSession => {
    const opened = sealer.open(value)
    if (typeof opened === 'string') throw new Error(`decode failed: ${opened}`)
    return opened.payload
  }
  // Field names the suite reserves are refused by session.set(), so never sealed.
  const fieldName = fc.string({ unit: 'binary', maxLength: 12 }).filter((k) => !['__ts', '__i', '__c'].includes(k))
  const data = fc.dictionary(fieldName, fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }), { maxKeys: 8 })
  const times = fc.tuple(fc.integer({ min: 0, max: 3600 }), fc.integer({ min: 0, max: 3600 }))
  const cache = createDecodedCache({ maxEntries: 50 })

  fc.assert(fc.property(data, times, (fields, [age, sinceIssue]) => {
    const now = nowSeconds()
    const value = seal(fields, now - age - sinceIssue, now - sinceIssue)
    const key = cache.key(value)
    // a miss: decode, then remember what was decoded
    const first = decode(value)
    t.equal(cache.set(key, first), true)
    const cached = cache.get(key) as DecodedSession
    const fresh = decode(value)
    t.strictSame(cached, fresh)
    // key order too (t.strictSame ignores it), and own "__proto__" fields
    if (JSON.stringify(cached.data) !== JSON.stringify(fresh.data)) t.fail('same fields in the same order')
    // a write to the request's copy reaches neither the cache nor the next request
    cached.data.written = ['by', 'one', 'request']
    t.strictSame(cache.get(key), fresh)
  }), { numRuns: 200 })

  // Written through on issue: what set() accepts from a session about to be
  // sealed is exactly what the cookie decodes to, whatever the data holds.
  const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(undefined, Number.NaN, -0, new Date(0), [1, undefined]))
  fc.assert(fc.property(fc.dictionary(fieldName, anyValue, { maxKeys: 6 }), (fields) => {
    const now = nowSeconds()
    const value = seal(fields, now, now)
    const key = cache.key(value)
    if (!cache.set(key, session(fields, now, now))) return
    t.strictSame(cache.get(key), decode(value))
  }), { numRuns: 200 })
})

t.test('the estimate follows how V8 lays the data out', async (t) => {
  const size = (data: Record<string, unknown>): number => entryBytes(data, 'v') as number
  t.equal(size({}), ENTRY_OVERHEAD + 24 + 56, 'an empty object: header and four in-object slots (and the value\'s string)')
  t.equal(entryBytes({}, 'v'.repeat(1700)), ENTRY_OVERHEAD + 16 + 1704 + 56, 'the cookie value is counted: one byte a character')
  t.equal(size({ s: 'é'.repeat(100) }), size({ s: 'x'.repeat(100) }), 'Latin-1 text: one byte a character')
  t.equal(size({ s: '€'.repeat(100) }) - size({ s: 'x'.repeat(100) }), 96, 'other text: two bytes a character')
  t.equal(size({ n: 1.5 }) - size({ n: 1 }), 16, 'a fraction is a heap number, a small integer is not')
  t.equal(size({ n: 2 ** 31 }) - size({ n: 2 ** 31 - 1 }), 16, 'nor is an integer past 31 bits')
  t.equal(size({ a: [true, null] }) - size({ a: [] }), 16, 'an array: a slot per element')
  const fields = (n: number): Record<string, unknown> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, i]))
  t.equal(size(fields(5)) - size(fields(4)), 16 + 8 * 4 + 24, 'a fifth field: a property array with room for three more')
  t.ok(size(fields(1100)) - size(fields(1000)) > 100 * 48, 'past 1020 fields: a hash table')
})

t.test('memory: the estimate per entry is at or above the heap it takes', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const n = 4000
  const cache = createDecodedCache({ maxEntries: n, maxBytes: 2 ** 32 })
  // the shapes V8 builds once for all sessions, outside the measurement
  // a 1.7 KB cookie value per entry, cut from a Cookie header as a request's is
  const cookie = (i: number): string => `a=1; session=${createHash('sha256').update(String(i)).digest('base64url').repeat(40)}; b=2`.slice(13, 13 + 1720)
  cache.set(cache.key(cookie(-1)), session(tokenSession(-1)))
  cache.flush()
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  // only the cache keeps anything: each session is parsed, stored and dropped
  for (let i = 0; i < n; i++) cache.set(cache.key(cookie(i)), session(tokenSession(i)))
  gc()
  gc()
  const measured = (process.memoryUsage().heapUsed - before) / n
  const estimated = cache.stats().bytes / n
  t.comment(`token-set session (about 1.2 KB of JSON, 1.7 KB cookie): ${measured.toFixed(0)} B per entry measured, ${estimated.toFixed(0)} B estimated, of which ${ENTRY_OVERHEAD} B bookkeeping`)
  t.equal(cache.stats().entries, n)
  t.ok(estimated >= measured, 'the estimate does not undercount a session of a shared shape')
  t.ok(estimated <= 1.5 * measured, 'nor overcount it by half')
})

t.test('a value the process sealed itself is kept as it is, counted as a copied one is', async (t) => {
  const value = randomBytes(300).toString('base64url') + '.' + randomBytes(24).toString('base64url')
  const owned = createDecodedCache()
  const copied = createDecodedCache()
  t.equal(owned.set(owned.key(value), session({ v: 1 }), true), true)
  t.equal(copied.set(copied.key(value), session({ v: 1 })), true)
  t.same(owned.get(owned.key(value))?.data, { v: 1 }, 'a hit')
  t.equal(owned.get(owned.key(value.slice(0, -1) + '.')), undefined, 'and still every character decides')
  t.equal(owned.stats().bytes, copied.stats().bytes, 'the same bytes counted')
  t.equal(owned.set(owned.key(value), session({ f: () => 1 } as never), true), false, 'and the same data refused')
})
