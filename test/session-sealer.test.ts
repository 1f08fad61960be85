// The sealer on its own: libsodium secretbox through sodium-native, in
// secure-session's layout, written as our base64url cookie value.
import t from 'tap'
import Fastify from 'fastify'
import secureSession from '@fastify/secure-session'
import { randomBytes } from 'node:crypto'
import { createSealer } from '../lib/session/sealer.ts'
import { splitSealed, toCookieValue } from '../lib/session/codec.ts'
import { buildPayload, nowSeconds } from '../lib/session/payload.ts'

const IDLE = 7 * 24 * 3600
const ABSOLUTE = 30 * 24 * 3600

t.test('every seal draws a fresh nonce, across refills of the nonce pool', async (t) => {
  const sealer = createSealer([randomBytes(32)], IDLE, ABSOLUTE)
  const now = nowSeconds()
  const nonces = new Set<string>()
  const n = 1000 // about four refills of the pool
  for (let i = 0; i < n; i++) {
    const value = sealer.seal(buildPayload({ i }, now, now))
    const [, nonce] = splitSealed(value) as [string, string]
    t.equal(Buffer.from(nonce, 'base64url').length, 24, 'a 24-byte nonce')
    nonces.add(nonce)
    const opened = sealer.open(value)
    if (typeof opened === 'string' || opened.payload.data.i !== i) t.fail(`seal ${i} did not open to its own data`)
  }
  t.equal(nonces.size, n, 'no nonce twice')
})

t.test('what raw secure-session seals with the same key opens, and what we seal opens there', async (t) => {
  const k = randomBytes(32)
  const raw = Fastify()
  t.teardown(() => raw.close())
  await raw.register(secureSession, { key: k })
  await raw.ready()
  const sealer = createSealer([k], IDLE, ABSOLUTE)
  const now = nowSeconds()
  const theirs = raw.encodeSecureSession(raw.createSecureSession(buildPayload({ user: 'ada' }, now - 10, now)))
  const opened = sealer.open(toCookieValue(theirs))
  t.same(typeof opened === 'string' ? opened : opened.payload, { data: { user: 'ada' }, createdAt: now - 10, issuedAt: now })
  const ours = splitSealed(sealer.seal(buildPayload({ user: 'bob' }, now, now))) as [string, string]
  const back = raw.decodeSecureSession(Buffer.from(ours[0], 'base64url').toString('base64') + ';' + Buffer.from(ours[1], 'base64url').toString('base64'))
  t.equal(back?.get('user' as never), 'bob')
})

t.test('an older key opens and says so; the newest seals', async (t) => {
  const [newer, older] = [randomBytes(32), randomBytes(32)]
  const now = nowSeconds()
  const before = createSealer([older], IDLE, ABSOLUTE).seal(buildPayload({ v: 1 }, now, now))
  const sealer = createSealer([newer, older], IDLE, ABSOLUTE)
  t.match(sealer.open(before), { rotated: true, payload: { data: { v: 1 } } })
  t.match(createSealer([newer], IDLE, ABSOLUTE).open(sealer.seal(buildPayload({ v: 2 }, now, now))), { rotated: false, payload: { data: { v: 2 } } })
  t.equal(createSealer([older], IDLE, ABSOLUTE).open(sealer.seal(buildPayload({ v: 2 }, now, now))), 'decrypt')
})
