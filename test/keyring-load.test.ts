import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadKeyring, defaultKeyFile } from '../lib/keyring/load.ts'
import { decodeSecret, encodeKey } from '../lib/keyring/format.ts'
import { fingerprint } from '../lib/digest.ts'
import { secretForms, tempDir } from './helper.ts'

const b64 = (k: Buffer): string => k.toString('base64')

t.test('SESSION_SECRET_KEY wins and X_PREVIOUS keys follow it, newest first', async (t) => {
  const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)]
  const dir = await tempDir(t)
  const ring = await loadKeyring({ keyFile: join(dir, 'never.key'), env: { SESSION_SECRET_KEY: b64(a), SESSION_SECRET_KEY_PREVIOUS: ` ${b.toString('hex')} ,${encodeKey(c)},` } })
  t.same(ring.keys, [a, b, c])
  t.same(ring.info, {
    source: 'env:SESSION_SECRET_KEY',
    count: 3,
    fingerprint: fingerprint(a),
    bits: 256,
    warnings: [],
    candidates: [
      { source: 'env:SESSION_SECRET_KEY', status: 'used' },
      { source: 'env-file:SESSION_SECRET_KEY_FILE', status: 'unset' },
      { source: 'env:SESSION_SECRET_KEY_PREVIOUS', status: 'used: 2 older key(s)' }
    ]
  })
  t.notOk('file' in ring.info, 'no file consulted when the environment yields')
})

t.test('variables are tried in the configured order; a user puts their own in front', async (t) => {
  const [mine, framework] = [randomBytes(32), randomBytes(32)]
  const env = { MY_APP_KEY: '', SESSION_SECRET_KEY: b64(framework) }
  const ring = await loadKeyring({ envVars: ['MY_APP_KEY', 'SESSION_SECRET_KEY'], env })
  t.equal(ring.info.source, 'env:SESSION_SECRET_KEY')
  t.same(ring.info.candidates.slice(0, 2), [{ source: 'env:MY_APP_KEY', status: 'empty' }, { source: 'env-file:MY_APP_KEY_FILE', status: 'unset' }])
  const first = await loadKeyring({ envVars: ['MY_APP_KEY', 'SESSION_SECRET_KEY'], env: { ...env, MY_APP_KEY: b64(mine) } })
  t.same(first.keys, [mine])
  t.equal(first.info.candidates.length, 2, 'later variables are not consulted')
})

t.test('X_FILE (Docker/Kubernetes secret) is honoured, may hold a keyring, and a readable mount is a warning', async (t) => {
  const dir = await tempDir(t)
  const [a, b] = [randomBytes(32), randomBytes(64)]
  const path = join(dir, 'mounted')
  await writeFile(path, `${a.toString('hex')}\n\n${encodeKey(b)}\n`)
  await chmod(path, 0o444)
  const ring = await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: path } })
  t.equal(ring.info.source, 'env-file:SESSION_SECRET_KEY_FILE')
  t.same(ring.keys, [a, decodeSecret(encodeKey(b), 'x')])
  t.match(ring.info.warnings[0], /SESSION_SECRET_KEY_FILE points to .*mounted, which others can read \(mode 0444\)/)
  await chmod(path, 0o400)
  t.same((await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: path } })).info.warnings, [])
})

t.test('when both X and X_FILE are set, X wins with a warning', async (t) => {
  const a = randomBytes(32)
  const ring = await loadKeyring({ env: { SESSION_SECRET_KEY: b64(a), SESSION_SECRET_KEY_FILE: '/does/not/matter' } })
  t.same(ring.keys, [a])
  t.same(ring.info.candidates[1], { source: 'env-file:SESSION_SECRET_KEY_FILE', status: 'ignored: env:SESSION_SECRET_KEY is set' })
  t.match(ring.info.warnings, [/both SESSION_SECRET_KEY and SESSION_SECRET_KEY_FILE are set/])
})

t.test('bad environment values stop start-up naming the variable or file, never the value', async (t) => {
  const dir = await tempDir(t)
  const weak = randomBytes(16).toString('hex')
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY: weak } }), { code: 'FSS_SECRET_WEAK', message: /SESSION_SECRET_KEY/ })
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY: 'p@ssw0rd-p@ssw0rd' } }), { code: 'FSS_SECRET_MALFORMED', message: /^(?!.*p@ssw0rd).*SESSION_SECRET_KEY/ })
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY: b64(randomBytes(32)), SESSION_SECRET_KEY_PREVIOUS: 'zzz' } }), { code: 'FSS_SECRET_MALFORMED', message: /SESSION_SECRET_KEY_PREVIOUS\[0\]/ })
  const missing = join(dir, 'nope')
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: missing } }), { code: 'FSS_KEY_FILE_IO', message: new RegExp(`${missing} \\(from SESSION_SECRET_KEY_FILE\\).*ENOENT`) })
  const empty = join(dir, 'empty')
  await writeFile(empty, '\n')
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: empty } }), { code: 'FSS_SECRET_WEAK', message: /SESSION_SECRET_KEY_FILE/ })
  const two = join(dir, 'two')
  await writeFile(two, `${b64(randomBytes(32))}\n${weak}\n`)
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: two } }), { code: 'FSS_SECRET_WEAK', message: /line 2/ })
})

t.test('X_PREVIOUS without X is recorded as ignored; the key file is used', async (t) => {
  const dir = await tempDir(t)
  const keyFile = join(dir, 'k', 'secret.key')
  const first = await loadKeyring({ keyFile, env: { SESSION_SECRET_KEY_PREVIOUS: b64(randomBytes(32)) } })
  t.equal(first.info.source, `generated:${keyFile}`)
  t.same(first.info.file, { path: keyFile, mode: '0600' })
  t.match(first.info.candidates, [{}, {}, { source: 'env:SESSION_SECRET_KEY_PREVIOUS', status: /ignored: neither/ }, { source: `file:${keyFile}`, status: 'missing: generated' }])
  const again = await loadKeyring({ keyFile, env: {} })
  t.equal(again.info.source, `file:${keyFile}`, 'a restart reads the same file')
  t.same(again.keys, first.keys)
  t.equal(again.info.candidates.at(-1)?.status, 'used')
})

t.test('create: false reports a missing key instead of generating one', async (t) => {
  const dir = await tempDir(t)
  await t.rejects(loadKeyring({ keyFile: join(dir, 'secret.key'), env: {}, create: false }), { code: 'FSS_KEY_FILE_IO', message: /does not exist/ })
})

t.test('the default key file sits in the per-OS config folder of the app', async (t) => {
  t.match(defaultKeyFile(), /fastify-session-suite[/\\]secret\.key$/)
  t.match(defaultKeyFile('my-app'), /my-app[/\\]secret\.key$/)
  t.notMatch(defaultKeyFile('my-app'), /nodejs/, 'no env-paths suffix')
})

t.test('an empty X_FILE is recorded as empty, like an empty X', async (t) => {
  const dir = await tempDir(t)
  const ring = await loadKeyring({ keyFile: join(dir, 'secret.key'), env: { SESSION_SECRET_KEY_FILE: '  ' } })
  t.same(ring.info.candidates.slice(0, 2), [
    { source: 'env:SESSION_SECRET_KEY', status: 'unset' },
    { source: 'env-file:SESSION_SECRET_KEY_FILE', status: 'empty' }
  ])
  t.equal(ring.info.source, `generated:${join(dir, 'secret.key')}`)
})

t.test('without options it reads process.env, then the default key file of the app', async (t) => {
  const home = await tempDir(t)
  const name = `FSS_LOAD_TEST_${randomBytes(4).toString('hex').toUpperCase()}`
  const before = process.env.XDG_CONFIG_HOME
  process.env.XDG_CONFIG_HOME = home
  t.teardown(() => {
    delete process.env[name]
    if (before === undefined) delete process.env.XDG_CONFIG_HOME
    else process.env.XDG_CONFIG_HOME = before
  })
  const fromFile = await loadKeyring({ appName: 'load-app', envVars: [name] })
  const file = join(home, 'load-app', 'secret.key')
  t.equal(fromFile.info.source, `generated:${file}`)
  t.equal(defaultKeyFile('load-app'), file)
  const key = randomBytes(32)
  process.env[name] = b64(key)
  const fromEnv = await loadKeyring({ appName: 'load-app', envVars: [name] })
  t.same(fromEnv.keys, [key])
  t.equal(fromEnv.info.source, `env:${name}`)
})

t.test('processes starting together agree on one generated key; the losers report the file', async (t) => {
  const dir = await tempDir(t)
  const keyFile = join(dir, 'k', 'secret.key')
  // All start before any has created the file (envVars: [] goes straight to the file), as in a cluster start.
  const rings = await Promise.all(Array.from({ length: 8 }, () => loadKeyring({ keyFile, envVars: [] })))
  t.equal(new Set(rings.map((r) => r.info.fingerprint)).size, 1, 'one key for all')
  t.equal(rings.filter((r) => r.info.source === `generated:${keyFile}`).length, 1, 'exactly one generated it')
  const losers = rings.filter((r) => r.info.source === `file:${keyFile}`)
  t.equal(losers.length, 7)
  t.ok(losers.some((r) => r.info.candidates.at(-1)?.status === 'created by another process'), 'a loser of the link() race says so')
  for (const r of losers) t.match(r.info.candidates.at(-1)?.status, /^(used|created by another process)$/)
  t.same(rings[0].info.file, { path: keyFile, mode: '0600' })
})

// Operators paste the key itself into X_FILE by mistake. The error must not
// repeat it: it lands in start-up logs, `check` output and CI transcripts.
t.test('a key put into X_FILE instead of a path never appears in the error', async (t) => {
  const key = randomBytes(32)
  key[0] = 0xfc // base64 then starts with '/', so the value also looks like an absolute path
  const values = [b64(key), ` ${encodeKey(key)}\n`, key.toString('hex'), randomBytes(64).toString('base64url'), 'relative/dir/key.txt']
  t.equal(b64(key)[0], '/')
  for (const value of values) {
    const err = await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: value } }).then(() => undefined, (e: Error & { code: string }) => e)
    t.equal(err?.code, 'FSS_KEY_FILE_IO', `${value.length} chars refused`)
    t.match(err?.message, /^Key file named by SESSION_SECRET_KEY_FILE could not be used: ENOENT; SESSION_SECRET_KEY_FILE does not look like the absolute path of a file/)
    t.match(err?.message, /put the key itself in SESSION_SECRET_KEY/)
    const text = `${err?.message}\n${err?.stack}\n${JSON.stringify(err)}`
    for (const form of [...secretForms(value), ...secretForms(value.trim()), ...secretForms(key)]) {
      t.notOk(text.includes(form), `the value (${form.length} chars) is not in the error`)
    }
  }
  // A plain absolute path is still named: that is what the operator needs to fix it.
  const dir = await tempDir(t)
  const missing = join(dir, 'run', 'secrets', 'session.key')
  await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: missing } }), { code: 'FSS_KEY_FILE_IO', message: new RegExp(`${missing} \\(from SESSION_SECRET_KEY_FILE\\).*ENOENT`) })
})

t.test('short hex and one-repeated-byte keys are FSS_SECRET_WEAK from X, X_FILE and X_PREVIOUS', async (t) => {
  const dir = await tempDir(t)
  const shortHex = randomBytes(22).toString('hex') // Python secrets.token_hex(22): 44 characters
  const zeros = 'A'.repeat(43)
  const ones = Buffer.alloc(32, 1).toString('base64url')
  for (const weak of [shortHex, zeros, ones]) {
    await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY: weak } }), { code: 'FSS_SECRET_WEAK', message: /^Secret from SESSION_SECRET_KEY \(/ })
    await t.rejects(loadKeyring({ env: { SESSION_SECRET_KEY: b64(randomBytes(32)), SESSION_SECRET_KEY_PREVIOUS: weak } }), { code: 'FSS_SECRET_WEAK', message: /SESSION_SECRET_KEY_PREVIOUS\[0\]/ })
    const file = join(dir, `k${weak.length}-${weak[1]}`)
    await writeFile(file, weak + '\n')
    const err = await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: file } }).then(() => undefined, (e: Error & { code: string }) => e)
    t.equal(err?.code, 'FSS_SECRET_WEAK')
    t.match(err?.message, `SESSION_SECRET_KEY_FILE (${file})`)
    for (const form of secretForms(weak)) t.notOk(err?.message.includes(form), 'the weak value is not echoed')
  }
})
