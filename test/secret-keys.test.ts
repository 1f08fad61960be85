import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { randomBytes } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import secretKeys, { getSecretKeyBytes } from '../plugins/secret-keys.ts'
import sessionSuite from '../index.ts'
import { decodeSecret, encodeKey } from '../lib/keyring/format.ts'
import { fingerprint } from '../lib/digest.ts'
import { build, captureLogs, tempDir } from './helper.ts'

function logged (t: Test) {
  const cap = captureLogs()
  const app = Fastify({ logger: { level: 'trace', stream: cap.stream } })
  t.teardown(() => app.close())
  return { app, cap }
}

t.test('a generated key survives a restart: the second app reads the same file', async (t) => {
  const dir = await tempDir(t)
  const keyFile = join(dir, 'cfg', 'secret.key')
  const first = logged(t)
  await first.app.register(secretKeys, { keyFile, env: {} }).ready()
  t.equal(first.app.secretKeys.source, `generated:${keyFile}`)
  const second = logged(t)
  await second.app.register(secretKeys, { keyFile, env: {} }).ready()
  t.equal(second.app.secretKeys.source, `file:${keyFile}`)
  t.equal(second.app.secretKeys.fingerprint, first.app.secretKeys.fingerprint)
  t.same(getSecretKeyBytes(second.app), getSecretKeyBytes(first.app))
  const fileKey = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64url')
  for (const { cap } of [first, second]) cap.assertNoSecrets(t, [fileKey])
  t.ok(first.cap.lines.some((l) => l.includes(first.app.secretKeys.fingerprint) && l.includes('secret keyring loaded')), 'the log says source and fingerprint')
})

t.test('the decorator is display info only; key bytes come from getSecretKeyBytes', async (t) => {
  const [a, b] = [randomBytes(32), randomBytes(64)]
  const envText = b.toString('base64url')
  const { app, cap } = logged(t)
  await app.register(secretKeys, { env: { SESSION_SECRET_KEY: a.toString('base64'), SESSION_SECRET_KEY_PREVIOUS: envText } }).ready()
  const derived = decodeSecret(envText, 'x')
  t.same(getSecretKeyBytes(app), [a, derived])
  t.same(Object.keys(app.secretKeys).sort(), ['bits', 'candidates', 'count', 'fingerprint', 'source', 'warnings'])
  t.equal(app.secretKeys.bits, 256)
  t.equal(app.secretKeys.fingerprint, fingerprint(a))
  t.ok(Object.isFrozen(app.secretKeys) && Object.isFrozen(app.secretKeys.candidates))
  // The copies handed out cannot change the keyring.
  getSecretKeyBytes(app)![0].fill(0)
  t.same(getSecretKeyBytes(app)![0], a)
  const json = JSON.stringify(app.secretKeys)
  const probe = captureLogs()
  probe.lines.push(json, JSON.stringify(app.printPlugins()), String(Object.getOwnPropertyNames(app)))
  probe.assertNoSecrets(t, [a, derived, b, envText])
  cap.assertNoSecrets(t, [a, derived, b, envText])
})

t.test('warnings are logged with the source, without key material', async (t) => {
  const dir = await tempDir(t)
  const mount = join(dir, 'mounted')
  const key = randomBytes(32)
  await writeFile(mount, key.toString('hex'))
  await chmod(mount, 0o644)
  const { app, cap } = logged(t)
  await app.register(secretKeys, { env: { SESSION_SECRET_KEY_FILE: mount } }).ready()
  t.ok(cap.lines.some((l) => JSON.parse(l).level === 40 && l.includes('which others can read')))
  cap.assertNoSecrets(t, [key])
})

t.test('registration fails with FSS_* errors that name the file and the fix, never the key', async (t) => {
  const dir = await tempDir(t)
  const key = randomBytes(32)
  const keyFile = join(dir, 'secret.key')
  await writeFile(keyFile, encodeKey(key) + '\n', { mode: 0o644 })
  await chmod(keyFile, 0o644)
  const { app, cap } = logged(t)
  const err = await app.register(secretKeys, { keyFile, env: {} }).ready().then(() => undefined, (e: Error & { code: string }) => e)
  t.equal(err?.code, 'FSS_KEY_FILE_UNSAFE')
  t.match(err?.message, `chmod 600 ${keyFile}`)
  const probe = captureLogs()
  probe.lines.push(String(err?.message), String(err?.stack))
  probe.assertNoSecrets(t, [key])
  cap.assertNoSecrets(t, [key])
  t.equal(await readFile(keyFile, 'utf8'), encodeKey(key) + '\n', 'the file was not regenerated')
})

t.test('a key pasted into SESSION_SECRET_KEY_FILE stops registration without the key in the error or the logs', async (t) => {
  const key = randomBytes(32)
  for (const value of [key.toString('base64'), encodeKey(key), key.toString('hex')]) {
    const { app, cap } = logged(t)
    const err = await app.register(secretKeys, { env: { SESSION_SECRET_KEY_FILE: value } }).ready().then(() => undefined, (e: Error & { code: string }) => e)
    t.equal(err?.code, 'FSS_KEY_FILE_IO')
    t.match(err?.message, /SESSION_SECRET_KEY_FILE does not look like the absolute path of a file/)
    app.log.error({ err }, 'start-up failed') // what an app's start-up catch typically does
    t.ok(cap.lines.length > 0, 'the error was logged')
    const probe = captureLogs()
    probe.lines.push(String(err?.message), String(err?.stack))
    probe.assertNoSecrets(t, [key, value])
    cap.assertNoSecrets(t, [key, value])
  }
})

t.test('options are validated once at registration, naming the option', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ appName: '../escape' }, /secret\.appName/],
    [{ envVars: ['BAD-NAME'] }, /secret\.envVars\.0/],
    [{ keyFile: '' }, /secret\.keyFile/],
    [{ keyFle: '/x' }, /secret\.keyFle: Unexpected property/],
    [{ env: { A: 1 } }, /secret\.env/]
  ]
  for (const [opts, re] of cases) {
    const app = await build(t)
    await t.rejects(async () => await app.register(secretKeys, opts as never), { code: 'FSS_OPTIONS_INVALID', message: re })
  }
})

t.test('Fastify register options (prefix, logLevel) are accepted beside ours', async (t) => {
  const app = await build(t)
  const key = randomBytes(32)
  await app.register(secretKeys, { env: { SESSION_SECRET_KEY: key.toString('hex') }, prefix: '/x', logLevel: 'warn' } as never).ready()
  t.equal(app.secretKeys.fingerprint, fingerprint(key))
})

t.test('without the plugin there are no key bytes', async (t) => {
  const app = await build(t)
  await app.ready()
  t.equal(getSecretKeyBytes(app), undefined)
})

t.test('the root plugin registers the keyring with appName and secret options', async (t) => {
  const key = randomBytes(32)
  const { app, cap } = logged(t)
  await app.register(sessionSuite, { appName: 'fss-test', secret: { env: { APP_KEY: key.toString('base64url') }, envVars: ['APP_KEY'] } }).ready()
  t.equal(app.secretKeys.source, 'env:APP_KEY')
  t.same(getSecretKeyBytes(app), [key])
  cap.assertNoSecrets(t, [key])
})
