// The keyring's bounds: what an X_FILE may point at (the key file's size and
// file-type rules), how many keys a keyring may hold, and errors that always
// name a cause (never `undefined`).
import t from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import { loadKeyring } from '../lib/keyring/load.ts'
import { readKeyFile, readKeyText, errorCode, ioError, MAX_FILE_BYTES } from '../lib/keyring/key-file.ts'
import { rotateKeyFile } from '../lib/keyring/rotate.ts'
import { main } from '../lib/keyring/cli.ts'
import { MAX_KEYS, encodeKey } from '../lib/keyring/format.ts'
import session from '../plugins/session.ts'
import { tempDir } from './helper.ts'

type FssError = Error & { code: string }
const failure = async (p: Promise<unknown>): Promise<FssError> => await p.then(() => { throw new Error('resolved') }, (e: FssError) => e)
const keys = (n: number): Buffer[] => Array.from({ length: n }, () => randomBytes(32))
const lines = (ks: Buffer[]): string => ks.map(encodeKey).join('\n') + '\n'

t.test('the bounds are 8 keys and 64 KiB', async (t) => {
  t.equal(MAX_KEYS, 8)
  t.equal(MAX_FILE_BYTES, 65536)
})

t.test('X_FILE pointing at a device, FIFO, directory or oversized file is refused at once, naming the cause', async (t) => {
  const dir = await tempDir(t)
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const big = join(dir, 'big')
  await writeFile(big, 'A'.repeat(MAX_FILE_BYTES + 1))
  const zeroLink = join(dir, 'zero-link')
  await symlink('/dev/zero', zeroLink)
  const loop = join(dir, 'loop')
  await symlink(loop, loop)
  const cases: Array<[string, string, RegExp]> = [
    ['/dev/zero', 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    ['/dev/urandom', 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    ['/dev/null', 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    [fifo, 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    [dir, 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    [zeroLink, 'FSS_KEY_FILE_UNSAFE', /not a regular file/],
    [big, 'FSS_KEY_FILE_CORRUPT', /65537 bytes, more than a keyring \(65536 at most\)/],
    [loop, 'FSS_KEY_FILE_IO', /ELOOP/],
    [join(dir, 'missing'), 'FSS_KEY_FILE_IO', /ENOENT/]
  ]
  for (const [path, code, reason] of cases) {
    const err = await failure(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: path } }))
    t.equal(err.code, code, path)
    t.match(err.message, reason)
    // '/dev/urandom' is also valid base64 (a key pasted by mistake could look so): named by its variable only.
    t.match(err.message, path === '/dev/urandom' ? 'named by SESSION_SECRET_KEY_FILE' : path, 'names the file')
    t.match(err.message, 'SESSION_SECRET_KEY_FILE', 'and the variable')
    t.notMatch(err.message, /undefined/)
  }
})

t.test('an X_FILE of exactly 64 KiB is read; one byte more is not', async (t) => {
  const dir = await tempDir(t)
  const [k] = keys(1)
  const line = encodeKey(k)
  const path = join(dir, 'padded')
  // Surrounding blanks are trimmed: a valid key padded to the exact bound.
  await writeFile(path, line + ' '.repeat(MAX_FILE_BYTES - line.length - 1) + '\n')
  t.same((await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: path } })).keys, [k])
  await writeFile(path, line + ' '.repeat(MAX_FILE_BYTES - line.length) + '\n')
  t.equal((await failure(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: path } }))).code, 'FSS_KEY_FILE_CORRUPT')
  // The same bound for the key file itself.
  const file = join(dir, 'secret.key')
  await writeFile(file, line + ' '.repeat(MAX_FILE_BYTES - line.length - 1) + '\n', { mode: 0o600 })
  t.same((await readKeyFile(file))?.keys, [k])
  await writeFile(file, line + ' '.repeat(MAX_FILE_BYTES - line.length) + '\n')
  t.equal((await failure(readKeyFile(file))).code, 'FSS_KEY_FILE_CORRUPT')
})

t.test('a file whose size lies (procfs reports 0) is still read no further than the bound', async (t) => {
  // /proc/<pid>/environ of a child with a 70 KB variable: a regular file, size 0, 70 KB to read.
  const child = spawn('sleep', ['60'], { env: { BIG: 'x'.repeat(70_000) }, stdio: 'ignore' })
  t.teardown(() => child.kill())
  await once(child, 'spawn')
  const environ = `/proc/${child.pid}/environ`
  const err = await failure(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: environ } }))
  t.equal(err.code, 'FSS_KEY_FILE_CORRUPT')
  t.match(err.message, /65537 bytes, more than a keyring/)
})

t.test('readKeyText follows a symlink only when asked, and leaves no descriptor open', async (t) => {
  const dir = await tempDir(t)
  const target = join(dir, 'target')
  await writeFile(target, 'abc\n')
  const link = join(dir, 'link')
  await symlink(target, link)
  t.equal((await readKeyText(link, 'shown', true, 'fix')).text, 'abc\n', 'followed')
  t.equal((await failure(readKeyText(link, 'shown', false, 'fix'))).code, 'ELOOP', 'not followed: the raw fs error for the caller to name')
  const fds = async () => (await readdir('/proc/self/fd')).length
  const before = await fds()
  for (let i = 0; i < 20; i++) {
    await readKeyText(target, 'shown', false, 'fix')
    await failure(readKeyText('/dev/null', 'shown', true, 'fix'))
  }
  t.equal(await fds(), before, 'every descriptor closed, read or refused')
})

t.test('a key file swapped for a FIFO is refused, not waited on', async (t) => {
  const dir = await tempDir(t)
  await mkdir(join(dir, 'd'), { mode: 0o700 })
  const fifo = join(dir, 'd', 'secret.key')
  execFileSync('mkfifo', ['-m', '600', fifo])
  t.equal((await failure(readKeyFile(fifo))).code, 'FSS_KEY_FILE_UNSAFE')
})

t.test('a keyring holds at most 8 keys, from every source', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await writeFile(file, lines(keys(MAX_KEYS)), { mode: 0o600 })
  t.equal((await loadKeyring({ keyFile: file, env: {} })).keys.length, 8, 'a key file of 8 lines loads')
  await writeFile(file, lines(keys(MAX_KEYS + 1)))
  const err = await failure(loadKeyring({ keyFile: file, env: {} }))
  t.equal(err.code, 'FSS_KEYRING_TOO_LARGE')
  t.match(err.message, /holds 9 keys, more than 8/)
  t.match(err.message, file)

  const mounted = join(dir, 'mounted')
  await writeFile(mounted, lines(keys(MAX_KEYS)))
  t.equal((await loadKeyring({ env: { SESSION_SECRET_KEY_FILE: mounted } })).keys.length, 8)
  await writeFile(mounted, lines(keys(MAX_KEYS + 1)))
  t.equal((await failure(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: mounted } }))).code, 'FSS_KEYRING_TOO_LARGE', 'X_FILE of 9 lines')
  await writeFile(mounted, lines(keys(MAX_KEYS)))
  t.equal((await failure(loadKeyring({ env: { SESSION_SECRET_KEY_FILE: mounted, SESSION_SECRET_KEY_PREVIOUS: encodeKey(randomBytes(32)) } }))).code,
    'FSS_KEYRING_TOO_LARGE', 'X_FILE of 8 lines and one X_PREVIOUS')

  const [now] = keys(1)
  const previous = (n: number) => keys(n).map(encodeKey).join(',')
  t.equal((await loadKeyring({ env: { SESSION_SECRET_KEY: encodeKey(now), SESSION_SECRET_KEY_PREVIOUS: previous(7) } })).keys.length, 8)
  const env = await failure(loadKeyring({ env: { SESSION_SECRET_KEY: encodeKey(now), SESSION_SECRET_KEY_PREVIOUS: previous(8) } }))
  t.equal(env.code, 'FSS_KEYRING_TOO_LARGE', 'X and 8 X_PREVIOUS')
  t.match(env.message, /env:SESSION_SECRET_KEY and env:SESSION_SECRET_KEY_PREVIOUS holds 9 keys/)
  t.notMatch(env.message, encodeKey(now))
})

t.test('session.key takes 1 to 8 keys', async (t) => {
  for (const [n, ok] of [[1, true], [8, true], [9, false], [0, false]] as Array<[number, boolean]>) {
    const app = Fastify()
    t.teardown(() => app.close())
    const ready = Promise.resolve(app.register(session, { key: keys(n) }).ready())
    if (ok) await t.resolves(ready, `${n} keys`)
    else await t.rejects(ready, { code: 'FSS_OPTIONS_INVALID' }, `${n} keys`)
  }
})

t.test('rotation keeps at most 7 old keys, so the rotated file always loads', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'secret.key')
  await writeFile(file, lines(keys(MAX_KEYS)), { mode: 0o600 })
  t.equal((await rotateKeyFile(file, { keep: 7 })).count, 8)
  t.equal((await loadKeyring({ keyFile: file, env: {} })).keys.length, 8)
  await t.rejects(rotateKeyFile(file, { keep: 8 }), { code: 'FSS_OPTIONS_INVALID', message: /from 0 to 7/ })
  const out: string[] = []
  const io = { env: {}, stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } }
  t.equal(await main(['rotate', '--file', file, '--keep', '8'], io), 1)
  t.match(out.join(''), /FSS_OPTIONS_INVALID/)
  await chmod(file, 0o600)
})

t.test('an error without an errno code is named by its class, never `undefined` (fast-check)', async (t) => {
  const table: Array<[unknown, string]> = [
    [Object.assign(new Error('x'), { code: 'EIO' }), 'EIO'],
    [new RangeError('too long'), 'RangeError'],
    [Object.assign(new TypeError('x'), { code: '' }), 'TypeError'],
    [Object.assign(new Error('x'), { code: 42 }), 'Error'],
    [undefined, 'an unknown error'],
    [null, 'an unknown error'],
    ['a string', 'an unknown error'],
    [{ code: 'ENOENT' }, 'ENOENT']
  ]
  for (const [err, name] of table) t.equal(errorCode(err), name)
  t.match(ioError('/k', new RangeError('x')).message, 'Key file /k could not be used: RangeError')
  fc.assert(fc.property(fc.anything(), (thrown) => {
    const name = errorCode(thrown)
    return typeof name === 'string' && name !== '' && name !== 'undefined' && !ioError('/k', thrown).message.includes('undefined')
  }), { numRuns: 500 })
})
