// Every malformed, tampered or foreign cookie is an empty session with a 2xx,
// logged at debug level with a reason and never the value.
import t, { type Test } from 'tap'
import secureSession from '@fastify/secure-session'
import fc from 'fast-check'
import { createRequire } from 'node:module'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build, captureLogs } from './helper.ts'
import { key, sess, liveCookies, setCookies } from './session-helper.ts'
import session from '../plugins/session.ts'
import { toCookieValue } from '../lib/session/codec.ts'

const require = createRequire(import.meta.url)
const sodium = require('sodium-native') as {
  crypto_secretbox_easy: (c: Buffer, m: Buffer, n: Buffer, k: Buffer) => void
  randombytes_buf: (b: Buffer) => void
}

/** Seals any plaintext the way secure-session does; returns [ours, raw secure-session form]. */
function seal (plaintext: string, k: Buffer): [string, string] {
  const nonce = Buffer.alloc(24)
  sodium.randombytes_buf(nonce)
  const m = Buffer.from(plaintext)
  const c = Buffer.alloc(m.length + 16)
  sodium.crypto_secretbox_easy(c, m, nonce, k)
  return [c.toString('base64url') + '.' + nonce.toString('base64url'), encodeURIComponent(c.toString('base64') + ';' + nonce.toString('base64'))]
}
const now = (): number => Math.floor(Date.now() / 1000)
const NAME = '__Host-session'

async function app (t: Test, keys: Buffer[]) {
  const cap = captureLogs()
  const fastify = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await fastify.register(session, { key: keys })
  fastify.get('/get', async (req) => ({ data: req.session.data() }))
  fastify.get('/set', async (req) => { sess(req).set('user', 'ada'); return {} })
  fastify.get('/big', async (req) => { sess(req).set('big', 'z'.repeat(7000)); return {} })
  const reasons = () => cap.lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.startsWith('session cookie rejected')).map((l) => [l.level, l.reason])
  return { fastify, cap, reasons }
}

async function validCookie (fastify: Awaited<ReturnType<typeof app>>['fastify'], t: Test): Promise<string> {
  return liveCookies(setCookies(t, await fastify.inject('/set'))).get(NAME) as string
}

t.test('each bad cookie is an empty session with a 200 and a debug line naming the reason', async (t) => {
  const k = key()
  const { fastify, cap, reasons } = await app(t, [k])
  const valid = await validCookie(fastify, t)
  const [cipher, nonce] = valid.split('.')
  const flip = (s: string) => s.slice(0, -2) + (s.endsWith('AA') ? 'BB' : 'AA')
  const cases: Array<[string, string, string]> = [
    ['empty value', '', 'format'],
    ['no separator', cipher, 'format'],
    ['ciphertext shorter than the MAC', 'AAAAAAAA.' + nonce, 'decrypt'],
    ['nonce of the wrong length', cipher + '.' + nonce.slice(0, 20), 'decrypt'],
    ['flipped last characters', flip(valid), 'decrypt'],
    ['flipped characters of the ciphertext', flip(cipher.slice(0, 20)) + cipher.slice(20) + '.' + nonce, 'decrypt'],
    ['invalid base64', '!!!!.@@@@', 'format'],
    ['invalid percent-escape', '%E0%A4%A.%ZZ', 'format'],
    ['valid percent-escape of the old form', encodeURIComponent(cipher + ';' + nonce), 'format'],
    ['sealed with an unknown key', seal(JSON.stringify({ user: 'x', __ts: now(), __c: now() }), key())[0], 'decrypt'],
    ['a payload without a timestamp', seal('{"user":"mallory"}', k)[0], 'timestamp'],
    ['a creation time after the issue time', seal(JSON.stringify({ __ts: now() - 10, __c: now() }), k)[0], 'timestamp'],
    ['a non-integer timestamp', seal(JSON.stringify({ __ts: now() + 0.5, __c: now() }), k)[0], 'timestamp'],
    ['a timestamp in the future', seal(JSON.stringify({ user: 'x', __ts: now() + 3600, __c: now() }), k)[0], 'future'],
    ['a creation time in the future', seal(JSON.stringify({ user: 'x', __ts: now(), __c: now() + 3600 }), k)[0], 'future'],
    ['a null payload', seal('null', k)[0], 'payload'],
    ['a number payload', seal('5', k)[0], 'payload'],
    ['an array payload', seal('[1,2]', k)[0], 'timestamp'],
    ['plaintext that is not JSON', seal('not json', k)[0], 'payload']
  ]
  for (const [label, value, reason] of cases) {
    const before = reasons().length
    const res = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${value}` } })
    t.equal(res.statusCode, 200, label)
    t.same(res.json().data, {}, `${label}: empty session`)
    t.same(reasons().slice(before), [[20, reason]], `${label}: one debug line, reason ${reason}`)
    t.same(setCookies(t, res, true).map((l) => l.split(';')[0]), [`${NAME}=`], `${label}: the unusable cookie is expired`)
  }
  t.equal(Object.values(fastify.sessionInfo.counters.rejected).reduce((a, b) => a + b, 0), cases.length)
  cap.assertNoSecrets(t, [k, valid, cipher, nonce, ...cases.map((c) => c[1]).filter((v) => v.length >= 8)])
})

t.test('a timestamp within the tolerated clock skew is accepted', async (t) => {
  const k = key()
  const { fastify } = await app(t, [k])
  const res = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${seal(JSON.stringify({ user: 'x', __ts: now() + 30, __c: now() + 30 }), k)[0]}` } })
  t.same(res.json().data, { user: 'x' })
})

t.test('raw secure-session: a payload without __ts never expires and null answers 500; ours: empty sessions', async (t) => {
  const k = key()
  const raw = await build(t)
  await raw.register(secureSession, { key: k })
  raw.get('/get', async (req) => ({ data: req.session.data() }))
  const ours = await app(t, [k])
  const [noTs, noTsRaw] = seal('{"user":"mallory"}', k)
  const [nul, nulRaw] = seal('null', k)
  t.same((await raw.inject({ url: '/get', headers: { cookie: `session=${noTsRaw}` } })).json().data, { user: 'mallory' }, 'raw accepts it')
  t.equal((await raw.inject({ url: '/get', headers: { cookie: `session=${nulRaw}` } })).statusCode, 500, 'raw answers 500')
  t.same((await ours.fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${noTs}` } })).json().data, {})
  t.equal((await ours.fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${nul}` } })).statusCode, 200)
})

t.test('the issue time is our own __i, never a __ts secure-session filled in; idle is our own check', async (t) => {
  const k = key()
  const { fastify, reasons } = await app(t, [k])
  const D = 24 * 3600
  const cases: Array<[string, Record<string, unknown>, string]> = [
    // secure-session fills a missing __ts with "now", which used to pass every idle check: __i governs.
    ['no __ts, an __i past the idle timeout', { user: 'mallory', __i: now() - 8 * 24 * 3600, __c: now() - 8 * 24 * 3600 }, 'idle'],
    // __ts fresh, __i 8 days old: secure-session's own check would pass it; ours measures from __i.
    ['a fresh __ts but an __i past the idle timeout', { user: 'x', __ts: now(), __i: now() - 8 * D, __c: now() - 8 * D }, 'idle'],
    ['a non-integer __i', { user: 'x', __ts: now(), __i: 'soon', __c: now() }, 'timestamp'],
    // The exact limit: idle at issuedAt + 7 days, as secure-session counted.
    ['__i exactly 7 days ago', { user: 'x', __ts: now() - 7 * D, __i: now() - 7 * D, __c: now() - 7 * D }, 'idle'],
    ['a previous-release cookie (no __i) past the idle timeout', { user: 'x', __ts: now() - 7 * D, __c: now() - 8 * D }, 'idle']
  ]
  for (const [label, payload, reason] of cases) {
    const before = reasons().length
    const res = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${seal(JSON.stringify(payload), k)[0]}` } })
    t.same(res.json().data, {}, `${label}: empty session`)
    t.same(reasons().slice(before), [[20, reason]], `${label}: reason ${reason}`)
  }
  const ok = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${seal(JSON.stringify({ user: 'x', __ts: now() - 7 * D + 1, __i: now() - 7 * D + 1, __c: now() - 7 * D + 1 }), k)[0]}` } })
  t.same(ok.json().data, { user: 'x' }, '1 s before the limit: valid, and no internal field in data()')
})

t.test('cookies of the previous release (no __i) keep working and are re-issued with __i; old instances read ours', async (t) => {
  const k = key()
  const { fastify } = await app(t, [k])
  const legacy = seal(JSON.stringify({ user: 'ada', __ts: now() - 60, __c: now() - 120 }), k)[0]
  const read = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${legacy}` } })
  t.same(read.json().data, { user: 'ada' }, 'read on its __ts')
  // The previous release: plain secure-session with expiry = idle timeout, same key.
  const old = await build(t)
  await old.register(secureSession, { key: k, expiry: 7 * 24 * 3600 })
  old.get('/ts', async (req) => ({ ts: req.session.get('__ts' as never), data: req.session.data() }))
  const ours = liveCookies(setCookies(t, await fastify.inject({ url: '/set' }))).get(NAME) as string
  const [c, n] = ours.split('.')
  const oldView = (await old.inject({ url: '/ts', headers: { cookie: `session=${encodeURIComponent(Buffer.from(c, 'base64url').toString('base64') + ';' + Buffer.from(n, 'base64url').toString('base64'))}` } })).json()
  t.equal(oldView.ts, now(), 'the previous release still finds __ts')
  t.same(oldView.data, { user: 'ada', __i: now(), __c: now() }, 'and the same issue time under __i')
})

t.test('a cookie sealed with the previous key is accepted and re-issued under the newest', async (t) => {
  const oldKey = key()
  const newKey = key()
  const before = await app(t, [oldKey])
  const cookie = await validCookie(before.fastify, t)
  const rotated = await app(t, [newKey, oldKey])
  const res = await rotated.fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${cookie}` } })
  t.same(res.json().data, { user: 'ada' })
  const reissued = liveCookies(setCookies(t, res)).get(NAME) as string
  t.ok(reissued !== undefined && reissued !== cookie, 're-issued')
  t.equal(rotated.fastify.sessionInfo.counters.rotated, 1)
  const onlyNew = await app(t, [newKey])
  t.same((await onlyNew.fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${reissued}` } })).json().data, { user: 'ada' }, 'sealed with the newest key')
  const onlyOld = await app(t, [oldKey])
  t.same((await onlyOld.fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${reissued}` } })).json().data, {}, 'not with the old one')
})

t.test('duplicate cookie names and missing chunks are empty sessions', async (t) => {
  const k = key()
  const { fastify, reasons } = await app(t, [k])
  const valid = await validCookie(fastify, t)
  const dup = await fastify.inject({ url: '/get', headers: { cookie: `${NAME}=${valid}; other=1; ${NAME}=${valid}` } })
  t.same([dup.statusCode, dup.json().data], [200, {}])
  t.same(setCookies(t, dup).map((l) => l.split(';')[0]), [`${NAME}=`])

  const chunks = liveCookies(setCookies(t, await fastify.inject('/big')))
  t.same([...chunks.keys()], [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`], 'three chunks')
  const header = (names: string[]) => names.map((n) => `${n}=${chunks.get(n)}`).join('; ')
  const full = await fastify.inject({ url: '/get', headers: { cookie: header([`${NAME}.2`, `${NAME}.0`, `${NAME}.1`]) } })
  t.equal(full.json().data.big.length, 7000, 'chunks joined by index, whatever their order')
  for (const [label, names, reason] of [
    ['chunk 1 of 3 missing', [`${NAME}.0`, `${NAME}.2`], 'chunks'],
    // the nonce and its separator travel at the end of the value
    ['last chunk missing', [`${NAME}.0`, `${NAME}.1`], 'format'],
    ['chunk 0 missing', [`${NAME}.1`, `${NAME}.2`], 'chunks'],
    ['a gap inside the bound', [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`, `${NAME}.7`], 'chunks']
  ] as Array<[string, string[], string]>) {
    const before = reasons().length
    const cookie = header(names.filter((n) => chunks.has(n))) + (names.includes(`${NAME}.7`) ? `; ${NAME}.7=x` : '')
    const res = await fastify.inject({ url: '/get', headers: { cookie } })
    t.same([res.statusCode, res.json().data], [200, {}], label)
    t.same(reasons().slice(before), [[20, reason]], `${label}: ${reason}`)
    t.same(setCookies(t, res).map((l) => l.split('=')[0]).sort(), names.sort(), `${label}: every received chunk expired`)
  }
  const beyond = await fastify.inject({ url: '/get', headers: { cookie: header([`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]) + `; ${NAME}.8=x; ${NAME}.9=x` } })
  t.equal(beyond.json().data.big.length, 7000, 'names beyond the bound are not ours: ignored, the session reads')
  t.same(setCookies(t, beyond), [], 'and not expired')
  t.equal(reasons().filter((r) => r[1] === 'duplicate').length, 1)
})

t.test('a request header over 16 KB is refused with 431 on a real socket; the server keeps serving', async (t) => {
  const { fastify } = await app(t, [key()])
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fastify.server.address() as AddressInfo
  const get = (cookie: string) => new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/get', agent: false, headers: { cookie } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode as number)) })
    req.on('error', reject)
    req.end()
  })
  t.equal(await get(`${NAME}.0=${'A'.repeat(17 * 1024)}`), 431)
  t.equal(await get(`${NAME}=junk`), 200, 'next request served')
})

t.test('properties: no cookie bytes produce a 5xx (fast-check, 1000 runs each)', async (t) => {
  const k = key()
  const { fastify, cap } = await app(t, [k])
  // Bytes a header value may carry (HTAB, visible ASCII, obs-text); the rest is refused by the HTTP parser with 400.
  const headerByte = fc.oneof(fc.constant(9), fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }))
  const headerText = fc.array(headerByte, { maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'))
  const valid = await validCookie(fastify, t)
  let statuses = new Set<number>()
  const check = async (cookie: string) => {
    const res = await fastify.inject({ url: '/get', headers: { cookie } })
    statuses.add(res.statusCode)
    setCookies(t, res, true)
    return res
  }
  await fc.assert(fc.asyncProperty(headerText, async (v) => (await check(`${NAME}=${v}`)).statusCode < 500), { numRuns: 1000 })
  await fc.assert(fc.asyncProperty(headerText, async (v) => (await check(v)).statusCode < 500), { numRuns: 1000 })
  const idx = fc.integer({ min: 0, max: valid.length - 1 })
  const b64 = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.%'.split(''))
  await fc.assert(fc.asyncProperty(idx, b64, fc.nat({ max: 3 }), async (i, c, chunkNo) => {
    const mutated = valid.slice(0, i) + c + valid.slice(i + 1)
    const split = chunkNo === 0 ? `${NAME}=${mutated}` : `${NAME}.0=${mutated.slice(0, i)}; ${NAME}.${chunkNo}=${mutated.slice(i)}`
    const res = await check(split)
    const data = res.json().data
    // Either exactly the original session (a no-op mutation, or a split that rejoins) or empty: never other data.
    return res.statusCode === 200 && (Object.keys(data).length === 0 || data.user === 'ada')
  }), { numRuns: 1000 })
  t.same([...statuses].filter((s) => s >= 500), [], `statuses seen: ${[...statuses].join(', ')}`)
  statuses = new Set()
  cap.assertNoSecrets(t, [k, valid])
})

t.test('the codec needs no percent-escaping: base64url cookies are smaller than secure-session\'s escaped base64', async (t) => {
  const k = key()
  const raw = await build(t)
  await raw.register(secureSession, { key: k })
  const sizes: string[] = []
  for (const bytes of [100, 1000, 3000]) {
    // The same sealed session in both encodings: secure-session's as @fastify/cookie escapes it, and ours.
    const sealed = raw.encodeSecureSession(raw.createSecureSession({ user: 'x'.repeat(bytes) }))
    const escaped = encodeURIComponent(sealed)
    const ours = toCookieValue(sealed)
    t.match(escaped, /%/)
    t.notMatch(ours, /%/)
    t.ok(ours.length < escaped.length, `${bytes}-byte field: ours ${ours.length} < escaped ${escaped.length}`)
    sizes.push(`${bytes}: ${escaped.length} → ${ours.length} (${(100 * (1 - ours.length / escaped.length)).toFixed(1)} % smaller)`)
  }
  t.comment(`cookie value bytes, escaped base64 → base64url: ${sizes.join('; ')}`)
})
