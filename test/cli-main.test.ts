// The CLI's logic in-process (coverage); test/cli.test.ts runs the real binary.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { main, USAGE } from '../lib/keyring/cli.ts'
import { encodeKey } from '../lib/keyring/format.ts'
import { fingerprint } from '../lib/digest.ts'
import { readKeyFile } from '../lib/keyring/key-file.ts'
import { secretForms, tempDir } from './helper.ts'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { env, stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  return { code, stdout, stderr }
}

/** Points the per-OS default key file (env-paths reads the process environment) at a temp dir for one test. */
async function configHome (t: Parameters<typeof tempDir>[0]): Promise<string> {
  const home = await tempDir(t)
  const before = process.env.XDG_CONFIG_HOME
  process.env.XDG_CONFIG_HOME = home
  t.teardown(() => {
    if (before === undefined) delete process.env.XDG_CONFIG_HOME
    else process.env.XDG_CONFIG_HOME = before
  })
  return home
}

t.test('keygen writes one fresh 32-byte base64url key to stdout and nothing to stderr', async (t) => {
  const [a, b] = [await run(['keygen']), await run(['keygen'])]
  t.equal(a.code, 0)
  t.match(a.stdout, /^[A-Za-z0-9_-]{43}\n$/)
  t.equal(Buffer.from(a.stdout.trim(), 'base64url').length, 32)
  t.equal(a.stderr, '')
  t.not(a.stdout, b.stdout)
})

t.test('rotate --file creates, rotates, reports dropped keys, and never prints a key', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  const r1 = await run(['rotate', '--file', file])
  t.same(r1, { code: 0, stdout: `created ${file}\nfingerprint: ${fingerprint((await readKeyFile(file))!.keys[0])}\nkeys: 1\nrestart the app to start sealing with the new key; old keys still open existing sessions\n`, stderr: '' })
  const r2 = await run(['rotate', '--file', file])
  t.match(r2.stdout, `rotated ${file}\n`)
  t.match(r2.stdout, /keys: 2\n/, 'nothing dropped: no "(dropped" note')
  await run(['rotate', '--file', file])
  const r4 = await run(['rotate', '--file', file, '--keep', '1'])
  t.equal(r4.code, 0)
  t.match(r4.stdout, /keys: 2 \(dropped 2 old\)\n/)
  const text = await readFile(file, 'utf8')
  for (const r of [r1, r2, r4]) t.notOk(text.split('\n').filter(Boolean).some((line) => r.stdout.includes(line)), 'rotate never prints a key')
})

t.test('a relative --file is resolved against the working directory', async (t) => {
  const dir = await tempDir(t)
  const rel = join(dir, 'sub', '..', 'secret.key')
  const r = await run(['rotate', '--file', rel])
  t.match(r.stdout, `created ${resolve(rel)}\n`)
})

t.test('--keep must be plain digits: empty, negative and words are problems, and the file stays', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await run(['rotate', '--file', file])
  const before = await readFile(file, 'utf8')
  for (const keep of ['', 'abc', '-1', '1.5']) {
    const r = await run(['rotate', '--file', file, `--keep=${keep}`])
    t.equal(r.code, 1, `--keep=${keep}`)
    t.match(r.stderr, /^problem: FSS_OPTIONS_INVALID: .*keep/)
    t.equal(r.stdout, '')
  }
  t.equal(await readFile(file, 'utf8'), before)
})

t.test('check --file prints source, fingerprint, permissions and ok; an unsafe file is a problem naming the fix', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await run(['rotate', '--file', file])
  const key = (await readKeyFile(file))!.keys[0]
  const ok = await run(['check', '--file', file], { SESSION_SECRET_KEY: encodeKey(randomBytes(32)) })
  t.same(ok, { code: 0, stdout: `source: file:${file}\nfingerprint: ${fingerprint(key)}\nkeys: 1\npermissions: 0600\ncandidate file:${file}: used\nok\n`, stderr: '' }, 'with --file the environment is not consulted')
  await chmod(file, 0o644)
  const bad = await run(['check', '--file', file])
  t.equal(bad.code, 1)
  t.equal(bad.stdout, '')
  t.match(bad.stderr, `problem: FSS_KEY_FILE_UNSAFE: Key file ${file} is unsafe`)
  t.match(bad.stderr, `chmod 600 ${file}`)
  t.notMatch(bad.stderr, encodeKey(key))
})

t.test('without --file, rotate and check use the per-OS default file of --app', async (t) => {
  const home = await configHome(t)
  const file = join(home, 'cli-app', 'secret.key')
  const missing = await run(['check', '--app', 'cli-app'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, `problem: FSS_KEY_FILE_IO: Key file ${file} could not be used`)
  const made = await run(['rotate', '--app', 'cli-app'])
  t.match(made.stdout, `created ${file}\n`)
  const ok = await run(['check', '--app', 'cli-app'])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, `source: file:${file}\n`)
  t.match(ok.stdout, 'candidate env:SESSION_SECRET_KEY: unset\n')
})

t.test('check reads the variables of --env, in order, before the file; values never printed', async (t) => {
  const home = await configHome(t)
  const key = randomBytes(32).toString('base64')
  const r = await run(['check', '--env', 'MY_KEY,,SESSION_SECRET_KEY'], { MY_KEY: ' ', SESSION_SECRET_KEY: key })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `source: env:SESSION_SECRET_KEY\nfingerprint: ${fingerprint(Buffer.from(key, 'base64'))}\nkeys: 1\ncandidate env:MY_KEY: empty\n`)
  t.notMatch(r.stdout, 'permissions:', 'no file involved')
  t.notMatch(r.stdout, key.slice(0, 20))
  const warned = await run(['check'], { SESSION_SECRET_KEY: key, SESSION_SECRET_KEY_FILE: join(home, 'x') })
  t.match(warned.stdout, /warning: both SESSION_SECRET_KEY and SESSION_SECRET_KEY_FILE are set; SESSION_SECRET_KEY wins\nok\n$/)
  const weak = randomBytes(8).toString('hex')
  const bad = await run(['check'], { SESSION_SECRET_KEY: weak })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^problem: FSS_SECRET_WEAK: .*SESSION_SECRET_KEY/)
  t.notMatch(bad.stderr + bad.stdout, weak)
})

t.test('check with a key pasted into X_FILE reports the mistake without printing the key', async (t) => {
  await configHome(t)
  const key = randomBytes(32)
  key[0] = 0xff // base64 starts with '/': it looks like an absolute path
  for (const value of [key.toString('base64'), encodeKey(key)]) {
    const r = await run(['check'], { SESSION_SECRET_KEY_FILE: value })
    t.equal(r.code, 1)
    t.match(r.stderr, /^problem: FSS_KEY_FILE_IO: .*SESSION_SECRET_KEY_FILE does not look like the absolute path of a file/)
    for (const form of [...secretForms(value), ...secretForms(key)]) {
      t.notOk((r.stdout + r.stderr).includes(form), `the key (${form.length} chars) is not printed`)
    }
  }
})

t.test('usage errors exit 2 with the usage; --help and -h exit 0 whatever else is given', async (t) => {
  const none = await run([])
  t.same(none, { code: 2, stdout: '', stderr: `missing command\n${USAGE}\n` })
  const unknown = await run(['frobnicate'])
  t.same(unknown, { code: 2, stdout: '', stderr: `unknown command: frobnicate\n${USAGE}\n` })
  const bogus = await run(['check', '--bogus'])
  t.equal(bogus.code, 2)
  t.match(bogus.stderr, /Unknown option '--bogus'[\s\S]*Usage:/)
  t.same(await run(['--help']), { code: 0, stdout: USAGE + '\n', stderr: '' })
  t.same(await run(['rotate', '-h', '--file', '/nonexistent/x']), { code: 0, stdout: USAGE + '\n', stderr: '' }, 'help does not run the command')
})

t.test('an --app that is not a plain folder name is an option error, and no file is written', async (t) => {
  for (const app of ['..', '../elsewhere', 'a/b']) {
    const r = await run(['rotate', '--app', app])
    t.equal(r.code, 1, app)
    t.match(r.stderr, /^problem: FSS_OPTIONS_INVALID: Invalid option appName: must be a plain folder name/)
  }
})

t.test('rotate refuses a key file it could not load and leaves it as it was', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await writeFile(file, 'not a key\n', { mode: 0o600 })
  const r = await run(['rotate', '--file', file])
  t.equal(r.code, 1)
  t.match(r.stderr, /^problem: FSS_KEY_FILE_CORRUPT: .*line 1/)
  t.equal(await readFile(file, 'utf8'), 'not a key\n')
})
