import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { redisApp } from './fixtures/redis-app.ts'
import { secretForms } from './helper.ts'
import { deriveStoreKeys, open } from '../lib/redis/seal.ts'
import { recordKey } from '../lib/redis/store.ts'
import { deriveKey } from '../lib/keyring/format.ts'
import { DEFAULT_APP_NAME } from '../lib/keyring/load.ts'

let redis: RedisServer
let raw: Redis
t.before(async () => {
  redis = await startRedis(t)
  raw = new Redis(redis.url)
  t.teardown(() => raw.quit())
})

const K1 = randomBytes(32)
const K2 = randomBytes(32)
/** The store keys the plugin seals with: this application's derived keys (the fixture app keeps the default appName). */
const storeKeys = (k: Buffer) => deriveStoreKeys([deriveKey(k, DEFAULT_APP_NAME, 'redis-token-store')])
const token = (): Record<string, unknown> => ({
  access_token: 'at-' + randomBytes(24).toString('base64url'),
  refresh_token: 'rt-' + randomBytes(24).toString('base64url'),
  token_type: 'Bearer',
  expires_at: Math.floor(Date.now() / 1000) + 3600
})

function cookieOf (res: LightMyRequestResponse): Record<string, string> {
  const c = res.cookies.find((c) => c.name === 'session')
  if (c === undefined) throw new Error('no session cookie')
  return { session: c.value }
}

async function store (app: FastifyInstance, tok: unknown, cookies: Record<string, string> = {}): Promise<Record<string, string>> {
  const res = await app.inject({ method: 'POST', url: '/token', payload: tok as object, cookies })
  if (res.statusCode !== 200) throw new Error(`store answered ${res.statusCode}: ${res.body}`)
  return res.cookies.length > 0 ? cookieOf(res) : cookies
}

function logs (t: Test, apps: Array<{ logs: { assertNoSecrets: (t: Test, s: string[]) => void } }>, toks: Array<Record<string, unknown>>): void {
  const secrets = toks.flatMap((k) => [k.access_token, k.refresh_token] as string[])
  for (const a of apps) a.logs.assertNoSecrets(t, secrets)
}

async function onlyKey (prefix: string): Promise<string> {
  const keys = await raw.keys(`${prefix}*`)
  if (keys.length !== 1) throw new Error(`expected one key under ${prefix}, found ${keys.length}`)
  return keys[0]
}

t.test('a stored token round-trips, and Redis holds only ciphertext under a hashed reference', async (t) => {
  const prefix = 'rt1:'
  const { app, logs } = await redisApp(t, [K1], { url: redis.url, keyPrefix: prefix })
  const tok = token()
  const cookies = await store(app, tok)
  t.same((await app.inject({ url: '/token', cookies })).json(), { token: tok })

  const ref = (await app.inject({ url: '/ref', cookies })).json().ref as string
  t.equal(Buffer.from(ref, 'base64url').length, 32, 'the reference is 256 random bits')
  const key = recordKey(prefix, ref)
  t.equal(await raw.exists(key), 1)
  t.notOk(key.includes(ref), 'the Redis key does not contain the cookie reference')
  const value = await raw.get(key) as string
  t.match(value, /^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$/)
  for (const secret of [tok.access_token, tok.refresh_token] as string[]) {
    t.notOk(secretForms(secret).some((form) => value.includes(form)), 'no token in the raw Redis value')
  }
  t.notOk(cookies.session.includes(tok.access_token as string), 'no token in the cookie')

  // A record copied under another session's key does not open there (the key name is authenticated).
  const other = await store(app, token())
  const otherRef = (await app.inject({ url: '/ref', cookies: other })).json().ref as string
  await raw.set(recordKey(prefix, otherRef), value, 'KEEPTTL')
  t.same((await app.inject({ url: '/token', cookies: other })).json(), { token: null })
  logs.assertNoSecrets(t, [tok.access_token as string, tok.refresh_token as string, cookies.session, ref, K1])
})

t.test('no session reference reads as no token; a tampered record reads as none, with a warning', async (t) => {
  const prefix = 'rt2:'
  const { app, logs } = await redisApp(t, [K1], { url: redis.url, keyPrefix: prefix })
  t.same((await app.inject({ url: '/token' })).json(), { token: null })
  const cookies = await store(app, token())
  const key = await onlyKey(prefix)
  const value = await raw.get(key) as string
  for (const bad of [value.slice(0, -4) + 'AAAA', 'v0' + value.slice(2), value + '.x', 'v1.' + value.split('.')[1] + '.AAAA', 'v1.00000000.' + value.split('.')[2]]) {
    await raw.set(key, bad, 'KEEPTTL')
    t.same((await app.inject({ url: '/token', cookies })).json(), { token: null })
  }
  t.ok(logs.lines.some((l) => l.includes('token-record-unreadable')))
})

t.test('the record expires with the absolute timeout, counted from its first write', async (t) => {
  const prefix = 'ttl:'
  const { app } = await redisApp(t, [K1], { url: redis.url, keyPrefix: prefix, ttl: 3600 })
  const cookies = await store(app, token())
  const key = await onlyKey(prefix)
  const first = await raw.pttl(key)
  t.ok(first > 0 && first <= 3_600_000, 'a TTL is set, at most the absolute timeout')
  await raw.pexpire(key, 1_000_000) // stands in for time passing
  await store(app, token(), cookies)
  const after = await raw.pttl(key)
  t.ok(after > 0 && after <= 1_000_000, 'an update keeps the remaining lifetime instead of extending it')
  // A record gone from Redis (expired, evicted) starts a full lifetime on the next write.
  await raw.del(key)
  await store(app, token(), cookies)
  t.ok(await raw.pttl(key) > 1_000_000)
})

t.test('key rotation: records sealed by an older key stay readable and are re-sealed on the next write', async (t) => {
  const prefix = 'rot:'
  const [k1, k2] = [storeKeys(K1)[0].id, storeKeys(K2)[0].id]
  const before = await redisApp(t, [K1], { url: redis.url, keyPrefix: prefix })
  const tok = token()
  const cookies = await store(before.app, tok)
  const key = await onlyKey(prefix)
  t.equal((await raw.get(key) as string).split('.')[1], k1)

  // Step 1 of the runbook: the new key arrives as a previous key. Step 2: promoted.
  const staged = await redisApp(t, [K1, K2], { url: redis.url, keyPrefix: prefix })
  t.same((await staged.app.inject({ url: '/token', cookies })).json(), { token: tok })
  const promoted = await redisApp(t, [K2, K1], { url: redis.url, keyPrefix: prefix })
  t.same((await promoted.app.inject({ url: '/token', cookies })).json(), { token: tok }, 'old-key record readable after promotion')
  t.equal((await raw.get(key) as string).split('.')[1], k1, 'reading does not rewrite')
  const next = token()
  await store(promoted.app, next, cookies)
  t.equal((await raw.get(key) as string).split('.')[1], k2, 're-sealed with the new key on write')

  // Step 3: once the old key is retired, the re-sealed record still opens; one never re-written would not.
  const sealed = await raw.get(key) as string
  t.same(JSON.parse(open(storeKeys(K2), sealed, key)?.plaintext ?? 'null'), next)
  t.equal(open(storeKeys(K1), sealed, key), null)
  logs(t, [before, staged, promoted], [tok, next])
})

t.test('logout deletes the record; logging out twice is harmless', async (t) => {
  const prefix = 'out:'
  const { app } = await redisApp(t, [K1], { url: redis.url, keyPrefix: prefix })
  let cookies = await store(app, token())
  const key = await onlyKey(prefix)
  const res = await app.inject({ method: 'POST', url: '/logout', cookies })
  t.equal(res.statusCode, 200)
  t.equal(await raw.exists(key), 0, 'record deleted from Redis')
  cookies = res.cookies.length > 0 ? cookieOf(res) : cookies
  t.same((await app.inject({ url: '/token', cookies })).json(), { token: null })
  t.equal((await app.inject({ method: 'POST', url: '/logout', cookies })).statusCode, 200)
})
