// Session data is plain data: no read returns an Object.prototype member, and
// no write reaches a prototype (`__proto__`, `constructor`, `prototype` are
// refused), whatever the field name.
import t from 'tap'
import fc from 'fast-check'
import { createRequire } from 'node:module'
import { build } from './helper.ts'
import { key, setCookies } from './session-helper.ts'
import session from '../plugins/session.ts'
import { createSession, FORBIDDEN_KEYS } from '../lib/session/session-object.ts'

const require = createRequire(import.meta.url)
const sodium = require('sodium-native') as {
  crypto_secretbox_easy: (c: Buffer, m: Buffer, n: Buffer, k: Buffer) => void
  randombytes_buf: (b: Buffer) => void
}

function seal (plaintext: string, k: Buffer): string {
  const nonce = Buffer.alloc(24)
  sodium.randombytes_buf(nonce)
  const m = Buffer.from(plaintext)
  const c = Buffer.alloc(m.length + 16)
  sodium.crypto_secretbox_easy(c, m, nonce, k)
  return c.toString('base64url') + '.' + nonce.toString('base64url')
}

const NAME = '__Host-session'
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype)

t.test('the refused names are exactly __proto__, constructor and prototype', async (t) => {
  t.same([...FORBIDDEN_KEYS].sort(), ['__proto__', 'constructor', 'prototype'])
})

t.test('no Object.prototype member is readable as a session field, new or from a cookie', async (t) => {
  const k = key()
  const fastify = await build(t)
  await fastify.register(session, { key: [k] })
  fastify.get('/read', async (req) => {
    const s = req.session
    const found = PROTOTYPE_NAMES.filter((n) => s.get(n as never) !== undefined)
    return { found, data: s.data() }
  })
  const fresh = await fastify.inject('/read')
  t.same(fresh.json().found, [], 'a new session')
  const now = Math.floor(Date.now() / 1000)
  const cookie = seal(JSON.stringify({ user: 'ada', __i: now, __ts: now, __c: now }), k)
  const read = await fastify.inject({ url: '/read', headers: { cookie: `${NAME}=${cookie}` } })
  t.same(read.json(), { found: [], data: { user: 'ada' } }, 'a session read from a cookie')
})

t.test('__proto__, constructor and prototype cannot be set, by set() or by assignment, and nothing is inherited', async (t) => {
  const fastify = await build(t)
  await fastify.register(session, { key: [key()] })
  fastify.get('/attempt/:how/:name', async (req) => {
    const { how, name } = req.params as { how: string, name: string }
    const s = req.session as unknown as Record<string, unknown> & { set: (k: string, v: unknown) => void, get: (k: string) => unknown }
    let code: string | undefined
    try {
      if (how === 'set') s.set(name, { isAdmin: true })
      else s[name] = { isAdmin: true }
    } catch (err) {
      code = (err as { code?: string }).code
    }
    return { code, isAdmin: s.get('isAdmin') ?? null, changed: s.changed }
  })
  for (const name of FORBIDDEN_KEYS) {
    for (const how of ['set', 'assign']) {
      const res = await fastify.inject(`/attempt/${how}/${name}`)
      t.same(res.json(), { code: 'FSS_SESSION_KEY_RESERVED', isAdmin: null, changed: false }, `${how} ${name}`)
      t.same(setCookies(t, res, true), [], 'nothing written')
    }
  }
})

t.test('a cookie whose JSON carries __proto__ gives plain data, never a prototype', async (t) => {
  const k = key()
  const fastify = await build(t)
  await fastify.register(session, { key: [k] })
  fastify.get('/read', async (req) => ({ isAdmin: req.session.get('isAdmin' as never) ?? null, keys: Object.keys(req.session.data() ?? {}) }))
  const now = Math.floor(Date.now() / 1000)
  const cookie = seal(`{"__proto__":{"isAdmin":true},"user":"x","__i":${now},"__ts":${now},"__c":${now}}`, k)
  t.same((await fastify.inject({ url: '/read', headers: { cookie: `${NAME}=${cookie}` } })).json(), { isAdmin: null, keys: ['__proto__', 'user'] })
})

t.test('property: any field name reads back exactly what was set, or is refused; unset names read undefined (fast-check)', async (t) => {
  const name = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...PROTOTYPE_NAMES, '__proto__', 'prototype', '__ts', '__i', '__c'))
  fc.assert(fc.property(fc.uniqueArray(fc.tuple(name, fc.jsonValue()), { selector: ([k]) => k, maxLength: 12 }), name, (entries, probe) => {
    const { target } = createSession()
    const stored = new Map<string, unknown>()
    for (const [k, v] of entries) {
      if (FORBIDDEN_KEYS.has(k) || ['__ts', '__i', '__c'].includes(k)) {
        t.throws(() => target.set(k, v), { code: 'FSS_SESSION_KEY_RESERVED' })
      } else {
        target.set(k, v)
        stored.set(k, v)
      }
    }
    for (const [k, v] of stored) if (target.get(k) !== v) return false
    if (!stored.has(probe) && target.get(probe) !== undefined) return false
    return Object.keys(target.data()).sort().join('\0') === [...stored.keys()].sort().join('\0')
  }), { numRuns: 500 })
})

t.test('regenerate() keeps listed fields in prototype-less storage', async (t) => {
  const { target } = createSession()
  target.set('keep', 1)
  target.set('drop', 2)
  target.regenerate(['keep', 'toString', 'missing'])
  t.same(target.data(), { keep: 1 })
  t.equal(target.get('toString'), undefined)
})
