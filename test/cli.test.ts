import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chmod, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint } from '../lib/digest.ts'
import { readKeyFile } from '../lib/keyring/key-file.ts'
import { runTsx, tempDir, type ChildResult } from './helper.ts'

const cli = fileURLToPath(new URL('../bin/cli.ts', import.meta.url))

async function run (args: string[], env: Record<string, string> = {}): Promise<ChildResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_SECRET_KEY')))
  return await runTsx(cli, args, { ...base, ...env })
}

t.test('keygen prints a fresh 32-byte base64url key, different every time', async (t) => {
  const [a, b] = await Promise.all([run(['keygen']), run(['keygen'])])
  t.equal(a.code, 0)
  t.match(a.stdout, /^[A-Za-z0-9_-]{43}\n$/)
  t.equal(Buffer.from(a.stdout.trim(), 'base64url').length, 32)
  t.not(a.stdout, b.stdout)
})

t.test('rotate creates, then rotates, keeping --keep old keys', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  const r1 = await run(['rotate', '--file', file])
  t.equal(r1.code, 0, r1.stderr)
  t.match(r1.stdout, `created ${file}`)
  const k1 = (await readKeyFile(file))!.keys
  const r2 = await run(['rotate', '--file', file])
  t.match(r2.stdout, `rotated ${file}`)
  t.match(r2.stdout, /keys: 2\n/)
  await run(['rotate', '--file', file])
  const r4 = await run(['rotate', '--file', file, '--keep', '1'])
  t.match(r4.stdout, /keys: 2 \(dropped 2 old\)/)
  const ring = (await readKeyFile(file))!.keys
  t.equal(ring.length, 2)
  t.match(r4.stdout, `fingerprint: ${fingerprint(ring[0])}`)
  t.notOk(ring.some((k) => k.equals(k1[0])), 'the first key fell off')
  const text = await readFile(file, 'utf8')
  for (const r of [r1, r2, r4]) t.notOk(text.split('\n').filter(Boolean).some((line) => r.stdout.includes(line)), 'rotate never prints a key')
})

t.test('check prints source, fingerprint and permissions of a healthy file', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await run(['rotate', '--file', file])
  const r = await run(['check', '--file', file])
  t.equal(r.code, 0, r.stderr)
  const key = (await readKeyFile(file))!.keys[0]
  t.match(r.stdout, `source: file:${file}\nfingerprint: ${fingerprint(key)}\nkeys: 1\npermissions: 0600\n`)
  t.match(r.stdout, /\nok\n$/)
  t.notMatch(r.stdout, key.toString('base64url'))
})

t.test('check on a 0644 key file exits non-zero and names the fix', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await run(['rotate', '--file', file])
  await chmod(file, 0o644)
  const r = await run(['check', '--file', file])
  t.equal(r.code, 1)
  t.match(r.stderr, /problem: FSS_KEY_FILE_UNSAFE/)
  t.match(r.stderr, `chmod 600 ${file}`)
  const key = (await readFileRaw(file)).trim()
  t.notMatch(r.stderr + r.stdout, key)
})

async function readFileRaw (file: string): Promise<string> {
  await chmod(file, 0o600)
  return readFile(file, 'utf8')
}

t.test('check without --file resolves like the plugin: environment first, then the per-OS default file', async (t) => {
  const home = await tempDir(t)
  const env = { XDG_CONFIG_HOME: home }
  const missing = await run(['check', '--app', 'cli-app'], env)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /FSS_KEY_FILE_IO.*does not exist/)
  t.equal((await run(['rotate', '--app', 'cli-app'], env)).code, 0)
  const ok = await run(['check', '--app', 'cli-app'], env)
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, `source: file:${join(home, 'cli-app', 'secret.key')}`)
  t.match(ok.stdout, 'candidate env:SESSION_SECRET_KEY: unset')
  const key = randomBytes(32).toString('base64')
  const fromEnv = await run(['check', '--env', 'MY_KEY,SESSION_SECRET_KEY', '--app', 'cli-app'], { ...env, SESSION_SECRET_KEY: key })
  t.match(fromEnv.stdout, `source: env:SESSION_SECRET_KEY\nfingerprint: ${fingerprint(Buffer.from(key, 'base64'))}`)
  t.match(fromEnv.stdout, 'candidate env:MY_KEY: unset')
  t.notMatch(fromEnv.stdout, key.slice(0, 20))
  const warned = await run(['check'], { ...env, SESSION_SECRET_KEY: key, SESSION_SECRET_KEY_FILE: '/x' })
  t.match(warned.stdout, /warning: both SESSION_SECRET_KEY and SESSION_SECRET_KEY_FILE are set/)
})

t.test('usage errors exit 2; --help exits 0; a bad --keep is a problem', async (t) => {
  const [none, unknown, bogus, help, keep] = await Promise.all([
    run([]), run(['frobnicate']), run(['check', '--bogus']), run(['--help']), run(['rotate', '--keep', 'abc', '--file', '/nonexistent/x'])
  ])
  t.equal(none.code, 2)
  t.match(none.stderr, /missing command[\s\S]*Usage:/)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command: frobnicate/)
  t.equal(bogus.code, 2)
  t.match(bogus.stderr, /bogus[\s\S]*Usage:/)
  t.notMatch(bogus.stderr, /^\s+at /m, 'no stack trace')
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: fastify-session-suite[\s\S]*keygen[\s\S]*rotate[\s\S]*check/)
  t.equal(keep.code, 1)
  t.match(keep.stderr, /FSS_OPTIONS_INVALID.*keep/)
})
