import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chmod, chown, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { rotateKeyFile } from '../lib/keyring/rotate.ts'
import { readKeyFile } from '../lib/keyring/key-file.ts'
import { encodeKey } from '../lib/keyring/format.ts'
import { fingerprint } from '../lib/digest.ts'
import { tempDir } from './helper.ts'

async function ring (dir: string, n: number): Promise<{ path: string, keys: Buffer[] }> {
  const keys = Array.from({ length: n }, () => randomBytes(32))
  const path = join(dir, 'secret.key')
  await writeFile(path, keys.map(encodeKey).join('\n') + '\n', { mode: 0o600 })
  return { path, keys }
}

t.test('rotation puts a new key in front and keeps the newest 2 old ones by default', async (t) => {
  const dir = await tempDir(t)
  const { path, keys } = await ring(dir, 3)
  const r = await rotateKeyFile(path)
  const after = await readKeyFile(path)
  t.equal(after?.keys.length, 3)
  t.same(after?.keys.slice(1), keys.slice(0, 2), 'old keys stay valid, newest first')
  t.equal(r.fingerprint, fingerprint(after!.keys[0]))
  t.not(r.fingerprint, fingerprint(keys[0]))
  t.same({ count: r.count, dropped: r.dropped, created: r.created, path: r.path }, { count: 3, dropped: 1, created: false, path })
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.same(await readdir(dir), ['secret.key'], 'no temp file left')
})

t.test('keep N keeps exactly N old keys; keep 0 keeps only the new one', async (t) => {
  const dir = await tempDir(t)
  const { path, keys } = await ring(dir, 2)
  const r5 = await rotateKeyFile(path, { keep: 5 })
  t.same({ count: r5.count, dropped: r5.dropped }, { count: 3, dropped: 0 })
  t.same((await readKeyFile(path))?.keys.slice(1), keys)
  const r0 = await rotateKeyFile(path, { keep: 0 })
  t.same({ count: r0.count, dropped: r0.dropped }, { count: 1, dropped: 3 })
  t.equal((await readFile(path, 'utf8')).split('\n').filter(Boolean).length, 1)
})

t.test('rotating a missing file creates it with one key', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'conf', 'secret.key')
  const r = await rotateKeyFile(path)
  t.same({ count: r.count, dropped: r.dropped, created: r.created }, { count: 1, dropped: 0, created: true })
  t.equal(fingerprint((await readKeyFile(path))!.keys[0]), r.fingerprint)
})

t.test('rotation refuses a file it would refuse to load, and leaves it alone', async (t) => {
  const dir = await tempDir(t)
  const { path } = await ring(dir, 1)
  await chmod(path, 0o644)
  const before = await readFile(path, 'utf8')
  await t.rejects(rotateKeyFile(path), { code: 'FSS_KEY_FILE_UNSAFE', message: new RegExp(`chmod 600 ${path}`) })
  t.equal(await readFile(path, 'utf8'), before)
})

t.test('keep must be a non-negative integer', async (t) => {
  const dir = await tempDir(t)
  const { path } = await ring(dir, 1)
  for (const keep of [-1, 1.5, Number.NaN]) {
    await t.rejects(rotateKeyFile(path, { keep }), { code: 'FSS_OPTIONS_INVALID', message: /keep/ })
  }
})

t.test('a temp file that cannot be written is FSS_KEY_FILE_IO; the keyring is untouched', async (t) => {
  const dir = await tempDir(t)
  // A 240-character name is a valid key file, but its temp sibling
  // (.NAME.PID.RANDOM.tmp) exceeds the 255-byte name limit: open() fails.
  const path = join(dir, 'k'.repeat(240))
  await writeFile(path, encodeKey(randomBytes(32)) + '\n', { mode: 0o600 })
  const before = await readFile(path, 'utf8')
  await t.rejects(rotateKeyFile(path), { code: 'FSS_KEY_FILE_IO', message: /ENAMETOOLONG$/ })
  t.equal(await readFile(path, 'utf8'), before)
  t.same(await readdir(dir), ['k'.repeat(240)], 'nothing left behind')
})

// `sudo npx fastify-session-suite rotate --file /etc/app/secret.key`: the app
// user must still own the file afterwards, or its next start fails.
t.test('rotation as root keeps the file owner and group', async (t) => {
  t.equal(process.getuid?.(), 0, 'this test runs as root, as CI does')
  const dir = await tempDir(t)
  const { path, keys } = await ring(dir, 1)
  await chown(path, 65534, 65534)
  const r = await rotateKeyFile(path)
  const st = await stat(path)
  t.same({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }, { uid: 65534, gid: 65534, mode: 0o600 })
  t.same((await readKeyFile(path))?.keys.slice(1), keys)
  t.equal(r.count, 2)
  t.same(await readdir(dir), ['secret.key'], 'no temp file left')
})

// A user who may not give the new file the old file's owner (here: the owner
// itself, but the file's group is one it is not in) must not silently change it.
t.test('rotation that cannot keep the owner is refused with FSS_KEY_FILE_IO; the keyring is untouched', async (t) => {
  const dir = await tempDir(t)
  const { path } = await ring(dir, 1)
  const gid = 54321
  t.notOk(process.getgroups?.().includes(gid), 'a group this process is not in')
  await chown(dir, 65534, 65534)
  await chown(path, 65534, gid)
  const before = await readFile(path, 'utf8')
  // Become `nobody` for this one call (seteuid applies to every thread, so to libuv's fs calls too).
  process.seteuid!(65534)
  let err: (Error & { code: string }) | undefined
  try {
    await rotateKeyFile(path)
  } catch (e) {
    err = e as Error & { code: string }
  } finally {
    process.seteuid!(0)
  }
  t.equal(err?.code, 'FSS_KEY_FILE_IO')
  t.match(err?.message, `Key file ${path} could not be used: EPERM`)
  t.match(err?.message, `owned by uid 65534 gid ${gid}`)
  t.equal(await readFile(path, 'utf8'), before)
  const st = await stat(path)
  t.same({ uid: st.uid, gid: st.gid }, { uid: 65534, gid })
  t.same(await readdir(dir), ['secret.key'], 'the temp file is removed')
})
