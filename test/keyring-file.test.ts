import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createKeyFile, readKeyFile, parseKeyFile, directoryWarnings, formatMode } from '../lib/keyring/key-file.ts'
import { encodeKey } from '../lib/keyring/format.ts'
import { tempDir } from './helper.ts'

type FssError = Error & { code: string }

async function rejects (t: Test, p: Promise<unknown>, code: string): Promise<FssError> {
  const err = await p.then(() => undefined, (e: FssError) => e)
  t.ok(err, `rejects with ${code}`)
  t.equal(err?.code, code)
  return err as FssError
}

async function keyFile (dir: string, text: string, mode = 0o600): Promise<string> {
  const path = join(dir, 'secret.key')
  await writeFile(path, text, { mode })
  await chmod(path, mode)
  return path
}

t.test('a new key file is 0600 in a 0700 directory, one base64url key line', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'nested', 'app', 'secret.key')
  const made = await createKeyFile(path)
  t.equal(made.created, true)
  t.equal(made.mode, '0600')
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'nested', 'app'))).mode & 0o777, 0o700)
  const text = await readFile(path, 'utf8')
  t.match(text, /^[A-Za-z0-9_-]{43}\n$/)
  t.same(made.keys, [Buffer.from(text.trim(), 'base64url')])
  t.same(await readdir(join(dir, 'nested', 'app')), ['secret.key'], 'the temp file is gone')
})

t.test('creating over an existing file reads it instead of replacing it', async (t) => {
  const dir = await tempDir(t)
  const key = randomBytes(32)
  const path = await keyFile(dir, encodeKey(key) + '\n')
  const made = await createKeyFile(path)
  t.equal(made.created, false)
  t.same(made.keys, [key])
  t.equal(await readFile(path, 'utf8'), encodeKey(key) + '\n', 'content untouched')
  t.same(await readdir(dir), ['secret.key'], 'the loser cleaned up its temp file')
})

t.test('a readable keyring loads newest first, accepting hex and CRLF lines', async (t) => {
  const dir = await tempDir(t)
  const a = randomBytes(32)
  const b = randomBytes(32)
  const path = await keyFile(dir, `${encodeKey(a)}\r\n${b.toString('hex')}`)
  const got = await readKeyFile(path)
  t.same(got, { keys: [a, b], mode: '0600', uid: process.getuid?.(), gid: process.getgid?.() })
  t.equal(await readKeyFile(join(dir, 'missing.key')), undefined, 'missing is undefined, for the caller to decide')
})

t.test('unsafe key files stop loading with the path and the fix', async (t) => {
  const dir = await tempDir(t)
  const good = encodeKey(randomBytes(32)) + '\n'

  const open = await keyFile(dir, good, 0o644)
  const e1 = await rejects(t, readKeyFile(open), 'FSS_KEY_FILE_UNSAFE')
  t.match(e1.message, `chmod 600 ${open}`)
  t.match(e1.message, /0644/)
  await chmod(open, 0o620)
  t.match((await rejects(t, readKeyFile(open), 'FSS_KEY_FILE_UNSAFE')).message, /0620 lets group or others/)
  t.equal(await readFile(open, 'utf8'), good, 'never regenerated over')

  const target = join(dir, 'target.key')
  await writeFile(target, good, { mode: 0o600 })
  const link = join(dir, 'link.key')
  await symlink(target, link)
  const e2 = await rejects(t, readKeyFile(link), 'FSS_KEY_FILE_UNSAFE')
  t.match(e2.message, link)
  t.match(e2.message, /symbolic link/)

  const sub = join(dir, 'adir')
  await mkdir(sub)
  t.match((await rejects(t, readKeyFile(sub), 'FSS_KEY_FILE_UNSAFE')).message, /not a regular file/)
  const fifo = join(dir, 'fifo.key')
  execFileSync('mkfifo', ['-m', '600', fifo])
  t.match((await rejects(t, readKeyFile(fifo), 'FSS_KEY_FILE_UNSAFE')).message, /not a regular file/)
})

t.test('empty, truncated, undecodable, wrong-length and huge files are FSS_KEY_FILE_CORRUPT', async (t) => {
  const key = encodeKey(randomBytes(32))
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /is empty/],
    ['blank lines', '\n\n  \n', /is empty/],
    ['truncated', key.slice(0, 40), /line 1: it decodes to 30 bytes/],
    ['truncated second line', `${key}\n${key.slice(0, 21)}`, /line 2: it is not hex/],
    ['undecodable', 'hello world\n', /line 1: it is not hex/],
    ['wrong length', randomBytes(48).toString('base64url') + '\n', /48 bytes, not 32/],
    ['huge', 'A'.repeat(70_000), /it is 70000 bytes, more than a keyring \(65536 at most\)/]
  ]
  for (const [name, text, re] of cases) {
    const dir = await tempDir(t)
    const path = await keyFile(dir, text)
    const err = await rejects(t, readKeyFile(path), 'FSS_KEY_FILE_CORRUPT')
    t.match(err.message, re, name)
    t.match(err.message, path)
    t.match(err.message, /restore it from a backup/)
    t.notMatch(err.message, key.slice(0, 20), 'no key content in the message')
    t.equal(await readFile(path, 'utf8'), text, `${name}: left as it was`)
  }
  t.throws(() => parseKeyFile('/p', '\n'), { code: 'FSS_KEY_FILE_CORRUPT' })
})

t.test('file-system failures are FSS_KEY_FILE_IO naming the path', async (t) => {
  const dir = await tempDir(t)
  const blocker = await keyFile(dir, 'x')
  // A regular file where a directory should be: lstat and mkdir fail with ENOTDIR.
  const under = join(blocker, 'secret.key')
  t.match((await rejects(t, readKeyFile(under), 'FSS_KEY_FILE_IO')).message, /ENOTDIR/)
  t.match((await rejects(t, createKeyFile(under), 'FSS_KEY_FILE_IO')).message, under)
  // A trailing slash: the temp file is written, then link() fails with something other than EEXIST.
  const slashed = join(dir, 'new') + '/'
  const err = await rejects(t, createKeyFile(slashed), 'FSS_KEY_FILE_IO')
  t.match(err.message, /ENOENT|ENOTDIR|EISDIR/)
  t.same((await readdir(dir)).sort(), ['secret.key'], 'the temp file was removed')
})

t.test('a 0600 regular file that fails to read is FSS_KEY_FILE_IO with the errno, not a crash', async (t) => {
  // /proc/self/mem passes every check (regular, 0600, size 0) but reading
  // offset 0 fails with EIO: a real read error without root tricks (Linux).
  const err = await rejects(t, readKeyFile('/proc/self/mem'), 'FSS_KEY_FILE_IO')
  t.equal(err.message, 'Key file /proc/self/mem could not be used: EIO')
})

t.test('a group- or world-writable directory without the sticky bit is a warning', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'secret.key')
  t.same(await directoryWarnings(path), [])
  await chmod(dir, 0o777)
  const [w] = await directoryWarnings(path)
  t.match(w, `chmod 700 ${dir}`)
  await chmod(dir, 0o1777)
  t.same(await directoryWarnings(path), [], 'sticky like /tmp: others cannot replace our file')
  t.equal(formatMode(0o100600), '0600')
})

t.test('a key file line of one repeated byte or of short hex is FSS_SECRET_WEAK naming the file and line', async (t) => {
  const dir = await tempDir(t)
  const good = encodeKey(randomBytes(32))
  for (const [weak, why] of [['A'.repeat(43), '43 hex characters'], [Buffer.alloc(32, 0xff).toString('base64url'), 'one byte repeated'],
    [randomBytes(31).toString('hex'), '62 hex characters']]) {
    const path = await keyFile(dir, `${good}\n${weak}\n`)
    const err = await rejects(t, readKeyFile(path), 'FSS_SECRET_WEAK')
    t.match(err.message, `key file ${path} line 2 (${why})`)
    t.notMatch(err.message, weak)
    await rejects(t, createKeyFile(path), 'FSS_SECRET_WEAK')
    t.equal(await readFile(path, 'utf8'), `${good}\n${weak}\n`, 'never replaced')
  }
})

t.test('formatMode prints the permission bits as four octal digits, whatever the file type bits', async (t) => {
  const cases: Array<[number, string]> = [[0, '0000'], [0o7, '0007'], [0o44, '0044'], [0o600, '0600'], [0o777, '0777'], [0o100644, '0644'], [0o40700, '0700'], [0o104755, '0755']]
  for (const [mode, shown] of cases) t.equal(formatMode(mode), shown, mode.toString(8))
})

t.test('a symlink or a non-file stops loading with the whole fix in the message', async (t) => {
  const dir = await tempDir(t)
  const target = await keyFile(dir, encodeKey(randomBytes(32)) + '\n')
  const link = join(dir, 'link.key')
  await symlink(target, link)
  t.equal((await rejects(t, readKeyFile(link), 'FSS_KEY_FILE_UNSAFE')).message,
    `Key file ${link} is unsafe: it is a symbolic link. Fix: replace it with the regular file it points to, or set the keyFile option to that file (mode 0600)`)
  const sub = join(dir, 'adir')
  await mkdir(sub)
  t.equal((await rejects(t, readKeyFile(sub), 'FSS_KEY_FILE_UNSAFE')).message,
    `Key file ${sub} is unsafe: it is not a regular file. Fix: remove it, or set the keyFile option to a regular file with mode 0600`)
})

t.test('only one CR right before a line end is a line end; a CR inside a line, or a blank line beside keys, is damage', async (t) => {
  const key = encodeKey(randomBytes(32))
  const other = randomBytes(32)
  t.same(parseKeyFile('/p', `${key}\r\n${encodeKey(other)}\r\n`), [Buffer.from(key, 'base64url'), other])
  const cases: Array<[string, RegExp]> = [
    [`${key.slice(0, 20)}\r${key.slice(20)}\n`, /line 1: it is not hex/],
    [`${key}\n${key.slice(0, 1)}\r${key.slice(1)}\r\n`, /line 2: it is not hex/],
    [`${key}\n\n`, /line 2: it is not hex/],
    [`\n${key}\n`, /line 1: it is not hex/],
    [`${key}\n \n${key}\n`, /line 2: it is not hex/]
  ]
  for (const [text, re] of cases) {
    const err = (() => { try { parseKeyFile('/p', text) } catch (e) { return e as FssError } })()
    t.equal(err?.code, 'FSS_KEY_FILE_CORRUPT', JSON.stringify(text.replace(key, 'KEY')))
    t.match(err?.message, re)
    t.notMatch(err?.message, /is empty/)
  }
})

t.test('creating and reading key files leaves no descriptor open', async (t) => {
  const dir = await tempDir(t)
  const fds = async () => (await readdir('/proc/self/fd')).length
  const before = await fds()
  for (let i = 0; i < 10; i++) {
    const made = await createKeyFile(join(dir, `k${i}`, 'secret.key'))
    t.equal(made.created, true)
    t.equal((await createKeyFile(join(dir, `k${i}`, 'secret.key'))).created, false)
  }
  t.equal(await fds(), before)
})
