// Rotation: a new key goes in front, the newest `keep` old keys stay behind it
// so cookies sealed with them still open (the session plugin re-seals them
// with the newest key). A running app picks the new key up at its next start.
import { randomBytes } from 'node:crypto'
import { rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { errors } from '../errors.ts'
import { fingerprint } from '../digest.ts'
import { KEY_BYTES, encodeKey } from './format.ts'
import { createKeyFile, ioError, readKeyFile, syncDir, writeTempFile } from './key-file.ts'

export interface RotateOptions {
  /** how many old keys to keep behind the new one (default 2); 0 logs everyone out at the next start */
  keep?: number
}

export interface RotateResult {
  path: string
  /** fingerprint of the new newest key */
  fingerprint: string
  count: number
  /** how many old keys fell off the end */
  dropped: number
  /** true when there was no file and rotation created it */
  created: boolean
}

export async function rotateKeyFile (path: string, opts: RotateOptions = {}): Promise<RotateResult> {
  const keep = opts.keep ?? 2
  if (!Number.isSafeInteger(keep) || keep < 0) throw new errors.FSS_OPTIONS_INVALID('keep', 'expected an integer >= 0')
  // readKeyFile applies every safety check: we never rotate a file we would refuse to load.
  const current = await readKeyFile(path)
  if (current === undefined) {
    const made = await createKeyFile(path)
    return { path, fingerprint: fingerprint(made.keys[0]), count: made.keys.length, dropped: 0, created: made.created }
  }
  const fresh = randomBytes(KEY_BYTES)
  const keys = [fresh, ...current.keys.slice(0, keep)]
  // Unlike creation, rotation means to replace the file, and rename() replaces
  // atomically: a starting app reads either the old keyring or the new one,
  // never half of one. Creation uses link() because there two writers must not
  // both win; two concurrent rotations keep the last one (rotate from one place).
  // The new file keeps the old one's owner and group: `sudo ... rotate` must
  // not leave a root-owned file the app's own user can no longer read.
  const owner = { uid: current.uid, gid: current.gid }
  let tmp: string
  try {
    tmp = await writeTempFile(path, keys.map(encodeKey).join('\n') + '\n', owner)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') {
      throw new errors.FSS_KEY_FILE_IO(path, `EPERM: it is owned by uid ${owner.uid} gid ${owner.gid} and this user cannot give the rotated file that owner; ` +
        'rotate as the owner (in that group) or as root')
    }
    throw ioError(path, err)
  }
  try {
    await rename(tmp, path)
  /* c8 ignore start -- rename() within one directory over the regular file just read fails only if the file or directory changes in between */
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw ioError(path, err)
  }
  /* c8 ignore stop */
  await syncDir(dirname(path))
  return { path, fingerprint: fingerprint(fresh), count: keys.length, dropped: current.keys.length - (keys.length - 1), created: false }
}
