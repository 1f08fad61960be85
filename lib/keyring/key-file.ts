// The key file: one key per line, newest first, mode 0600 in a 0700 directory.
// Reading refuses what OpenSSH refuses for a private key; creation is a
// link() race that exactly one process wins; nothing ever overwrites a key
// file on load, because a new key logs every user out.
import { constants, type Stats } from 'node:fs'
import { lstat, mkdir, open, link, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { errors } from '../errors.ts'
import { KEY_BYTES, MAX_KEYS, decodeFileKey, encodeKey } from './format.ts'

/** Far above any sane keyring (a key line is 44 bytes); stops us reading a wrong, huge file. */
export const MAX_FILE_BYTES = 64 * 1024

export interface KeyFileContents {
  keys: Buffer[]
  /** octal permission bits, e.g. '0600' */
  mode: string
  /** the file's owner and group, which rotation keeps */
  uid: number
  gid: number
}

export function formatMode (mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0')
}

const RESTORE = 'restore it from a backup, or delete it to generate a new key (this logs every user out)'

/**
 * What to call a failure: the errno code (ENOENT, EIO...) that fs errors carry
 * (libuv's, or Node's ERR_*), else the error's class name. Never the message,
 * which would only repeat the path, and never `undefined`.
 */
export function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null | undefined)?.code
  if (typeof code === 'string' && code !== '') return code
  return err instanceof Error ? err.name : 'an unknown error'
}

/** FSS_KEY_FILE_IO naming the errno code. */
export function ioError (path: string, err: unknown): Error {
  return new errors.FSS_KEY_FILE_IO(path, errorCode(err))
}

/** Whether readKeyText refused what it found (as opposed to an I/O failure, which the caller names). */
export function isRefusal (err: unknown): boolean {
  return err instanceof errors.FSS_KEY_FILE_UNSAFE || err instanceof errors.FSS_KEY_FILE_CORRUPT
}

export interface KeyText {
  text: string
  /** of the file read (fstat of the open descriptor) */
  stats: Stats
}

/**
 * Reads a file that holds keys, bounded in every way: opened non-blocking (a
 * FIFO is refused, not waited on), and read only when the descriptor is a
 * regular file of at most MAX_FILE_BYTES, never more than that many bytes
 * even if it grows meanwhile. `/dev/zero` or a 650 MB file costs one fstat.
 * `follow`: whether a symlink is followed (secret mounts) or fails with ELOOP.
 * Rejects with the fs error on an I/O failure (the caller names the file its
 * own way), else with FSS_KEY_FILE_UNSAFE/CORRUPT naming `shown` and `fix`.
 */
export async function readKeyText (path: string, shown: string, follow: boolean, fix: string): Promise<KeyText> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW))
  try {
    const stats = await fh.stat()
    if (!stats.isFile()) throw new errors.FSS_KEY_FILE_UNSAFE(shown, 'it is not a regular file', fix)
    const tooLarge = (size: number) => new errors.FSS_KEY_FILE_CORRUPT(shown, `it is ${size} bytes, more than a keyring (${MAX_FILE_BYTES} at most)`, fix)
    if (stats.size > MAX_FILE_BYTES) throw tooLarge(stats.size)
    // One byte more than the bound tells a file that grew after fstat from one that fits.
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1)
    let length = 0
    for (let n = -1; n !== 0 && length < buf.length;) {
      n = (await fh.read(buf, length, buf.length - length, length)).bytesRead
      length += n
    }
    if (length > MAX_FILE_BYTES) throw tooLarge(length)
    return { text: buf.toString('utf8', 0, length), stats }
  } finally {
    await fh.close()
  }
}

function checkStats (path: string, st: Stats): void {
  if (st.isSymbolicLink()) {
    throw new errors.FSS_KEY_FILE_UNSAFE(path, 'it is a symbolic link', 'replace it with the regular file it points to, or set the keyFile option to that file (mode 0600)')
  }
  if (!st.isFile()) {
    throw new errors.FSS_KEY_FILE_UNSAFE(path, 'it is not a regular file', 'remove it, or set the keyFile option to a regular file with mode 0600')
  }
  if ((st.mode & 0o077) !== 0) {
    throw new errors.FSS_KEY_FILE_UNSAFE(path, `mode ${formatMode(st.mode)} lets group or others read or write it`, `chmod 600 ${path}`)
  }
}

/** Parses key-file text; every problem names the line and the fix, never the line's content. */
export function parseKeyFile (path: string, text: string): Buffer[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''))
  if (lines.at(-1) === '') lines.pop()
  if (lines.length === 0 || lines.every((l) => l.trim() === '')) {
    throw new errors.FSS_KEY_FILE_CORRUPT(path, 'it is empty', RESTORE)
  }
  if (lines.length > MAX_KEYS) throw new errors.FSS_KEYRING_TOO_LARGE(`key file ${path}`, lines.length, MAX_KEYS)
  return lines.map((line, i) => {
    const key = decodeFileKey(line, `key file ${path} line ${i + 1}`)
    if (typeof key === 'string') throw new errors.FSS_KEY_FILE_CORRUPT(path, `line ${i + 1}: ${key} (truncated or edited?)`, RESTORE)
    return key
  })
}

/**
 * Reads an existing key file after the safety checks. Returns undefined when
 * the file does not exist (the caller decides whether to create one).
 */
export async function readKeyFile (path: string): Promise<KeyFileContents | undefined> {
  let st: Stats
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError(path, err)
  }
  checkStats(path, st)
  let text: string
  try {
    // Not following: if the file was swapped for a symlink after lstat(), fail instead of following it.
    text = (await readKeyText(path, path, false, RESTORE)).text
  } catch (err) {
    if (isRefusal(err)) throw err
    // A regular 0600 file can still fail to read: an I/O error, or a swap for a symlink after lstat().
    throw ioError(path, err)
  }
  return { keys: parseKeyFile(path, text), mode: formatMode(st.mode), uid: st.uid, gid: st.gid }
}

/**
 * Writes `text` to a fresh 0600 temp file next to `path`, fsynced; returns the
 * temp path. With `owner`, the file gets that uid/gid first (a failure removes
 * it and rejects with the chown error).
 */
export async function writeTempFile (path: string, text: string, owner?: { uid: number, gid: number }): Promise<string> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', 0o600)
  try {
    try {
      // Before any key byte is written, so a refused chown has nothing to leak.
      if (owner !== undefined) await fh.chown(owner.uid, owner.gid)
      await fh.writeFile(text)
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch (err) {
    await unlink(tmp).catch(/* c8 ignore next -- already gone: nothing to clean up */ () => {})
    throw err
  }
  return tmp
}

/** Makes a new directory entry durable; directories cannot be fsynced on every platform. */
export async function syncDir (dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    try { await fh.sync() } finally { await fh.close() }
  /* c8 ignore next -- Windows and some network file systems refuse to fsync a directory */
  } catch {}
}

/** Warnings about the directory holding the key (others could swap the file). */
export async function directoryWarnings (path: string): Promise<string[]> {
  const dir = dirname(path)
  const st = await lstat(dir)
  // Sticky directories (0o1000, e.g. /tmp) stop others from replacing our file.
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    return [`directory ${dir} is writable by group or others (mode ${formatMode(st.mode)}); chmod 700 ${dir}`]
  }
  return []
}

export interface CreatedKeyFile extends KeyFileContents {
  /** true when this process wrote the file; false when another process won the race */
  created: boolean
}

/**
 * Creates the key file with one fresh key, or reads the one another process
 * created first. The temp file is complete and fsynced before link() gives it
 * the final name, and link() fails with EEXIST instead of replacing: when 20
 * processes start at once, one links, the others read the winner's key.
 */
export async function createKeyFile (path: string): Promise<CreatedKeyFile> {
  const dir = dirname(path)
  let tmp: string
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    tmp = await writeTempFile(path, encodeKey(randomBytes(KEY_BYTES)) + '\n')
  } catch (err) {
    throw ioError(path, err)
  }
  let created = true
  try {
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      await unlink(tmp).catch(() => {})
      throw ioError(path, err)
    }
    created = false
  }
  await unlink(tmp).catch(/* c8 ignore next -- already gone: nothing to clean up */ () => {})
  if (created) await syncDir(dir)
  const contents = await readKeyFile(path)
  /* c8 ignore next -- the file was just linked; only an outside rm between link() and read lands here */
  if (contents === undefined) throw new errors.FSS_KEY_FILE_IO(path, 'it disappeared right after creation')
  return { ...contents, created }
}
