// CSRF tokens must not fail after a restart. They are checked against a
// secret inside the encrypted session, so they live as long as the session
// does: through a restart on the same key file, and through a rotation that
// keeps the old key behind the new one.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, captureLogs, tempDir, type LogCapture } from './helper.ts'
import session from '../plugins/session.ts'
import secretKeys, { getSecretKeyBytes } from '../plugins/secret-keys.ts'
import csrf from '../plugins/csrf.ts'
import { rotateKeyFile } from '../lib/keyring/rotate.ts'

class Jar {
  readonly values = new Map<string, string>()
  absorb (res: LightMyRequestResponse): void {
    for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
      if (c.maxAge === 0 || c.value === '') this.values.delete(c.name)
      else this.values.set(c.name, c.value)
    }
  }

  get cookies (): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

type KeySource = { keyFile: string } | { key: Buffer | Buffer[] }

/** One "process" of the service: its own Fastify instance, keys read at start. */
async function start (t: Test, cap: LogCapture, keys: KeySource): Promise<FastifyInstance> {
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  if ('keyFile' in keys) await app.register(secretKeys, { keyFile: keys.keyFile, env: {} })
  await app.register(session, 'key' in keys ? { key: keys.key, secure: false } : { secure: false })
  await app.register(csrf)
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  await app.ready()
  return app
}

/** Renders the form: the session (with its CSRF secret) goes into the jar, the token comes back. */
async function issueToken (app: FastifyInstance, jar: Jar): Promise<string> {
  const page = await app.inject({ url: '/form' })
  jar.absorb(page)
  return page.json().token
}

async function post (app: FastifyInstance, jar: Jar, token: string): Promise<LightMyRequestResponse> {
  const res = await app.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } })
  jar.absorb(res)
  return res
}

t.test('a token issued before a restart on the same key file is accepted after it', async (t) => {
  const keyFile = join(await tempDir(t), 'secret.key')
  const cap = captureLogs()
  const jar = new Jar()

  const before = await start(t, cap, { keyFile })
  const token = await issueToken(before, jar)
  const keys = getSecretKeyBytes(before)
  await before.close()

  const after = await start(t, cap, { keyFile })
  t.equal(after.secretKeys.fingerprint, before.secretKeys.fingerprint, 'the second process read the same key')
  const res = await post(after, jar, token)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { done: true })

  // Control: a process on another key cannot open the session, so the same token fails.
  const elsewhere = await start(t, cap, { key: randomBytes(32) })
  const other = await elsewhere.inject({ method: 'POST', url: '/transfer', cookies: jar.cookies, headers: { 'x-csrf-token': token } })
  t.equal(other.statusCode, 403)
  t.equal(other.json().code, 'FSS_CSRF_INVALID')

  cap.assertNoSecrets(t, [token, ...jar.values.values(), ...(keys ?? [])])
})

t.test('a token issued before a restart with the same key option is accepted after it', async (t) => {
  const key = randomBytes(32)
  const cap = captureLogs()
  const jar = new Jar()
  const before = await start(t, cap, { key })
  const token = await issueToken(before, jar)
  await before.close()

  const after = await start(t, cap, { key: Buffer.from(key) })
  t.equal((await post(after, jar, token)).statusCode, 200)
  cap.assertNoSecrets(t, [token, ...jar.values.values(), key])
})

t.test('a token issued before a key rotation is accepted after it, and after the old key is dropped', async (t) => {
  const keyFile = join(await tempDir(t), 'secret.key')
  const cap = captureLogs()
  const jar = new Jar()

  const before = await start(t, cap, { keyFile })
  const token = await issueToken(before, jar)
  const sealedWithOld = { ...jar.cookies }
  await before.close()

  const rotation = await rotateKeyFile(keyFile)
  t.equal(rotation.count, 2, 'new key in front, old key kept')
  t.not(rotation.fingerprint, before.secretKeys.fingerprint)

  const after = await start(t, cap, { keyFile })
  t.equal(after.secretKeys.fingerprint, rotation.fingerprint, 'the restarted process signs with the new key')
  const res = await post(after, jar, token)
  t.equal(res.statusCode, 200, 'the old-key session still opens, and its secret checks the token')
  t.notSame(jar.cookies, sealedWithOld, 'the session was re-sealed with the new key')

  // Once every cookie was re-sealed, the old key can go: the same token still passes.
  const [newest] = getSecretKeyBytes(after) ?? []
  const keys = getSecretKeyBytes(after) ?? []
  const pruned = await start(t, cap, { key: [newest] })
  t.equal((await post(pruned, jar, token)).statusCode, 200)
  // …whereas a cookie still sealed with the dropped key is a session without a secret.
  const stale = await pruned.inject({ method: 'POST', url: '/transfer', cookies: sealedWithOld, headers: { 'x-csrf-token': token } })
  t.equal(stale.statusCode, 403)
  t.equal(stale.json().code, 'FSS_CSRF_INVALID')

  cap.assertNoSecrets(t, [token, ...jar.values.values(), ...Object.values(sealedWithOld), ...keys])
})

t.test('a token issued before a rotation through the key option (new key prepended) is accepted after it', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const cap = captureLogs()
  const jar = new Jar()
  const before = await start(t, cap, { key: oldKey })
  const token = await issueToken(before, jar)
  await before.close()

  const after = await start(t, cap, { key: [newKey, oldKey] })
  t.equal((await post(after, jar, token)).statusCode, 200)
  cap.assertNoSecrets(t, [token, ...jar.values.values(), oldKey, newKey])
})
