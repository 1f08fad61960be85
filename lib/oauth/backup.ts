// Dev-only token backup: opt-in, refused in production, and metadata only.
// Every token value is replaced by its fingerprint, so the file tells "which
// token, until when" and is useless to whoever reads it.
import { rename, writeFile, chmod } from 'node:fs/promises'
import type { FastifyBaseLogger } from 'fastify'
import { errors } from '../errors.ts'
import { fingerprint } from '../digest.ts'
import { tokenMetadata, type StoredToken } from './token.ts'
import type { TokenStore } from './store.ts'

const VALUE_FIELDS = ['access_token', 'refresh_token', 'id_token'] as const

/** Throws FSS_TOKEN_BACKUP_IN_PRODUCTION when NODE_ENV=production (checked at registration). */
export function assertBackupAllowed (env: Record<string, string | undefined> = process.env): void {
  if (env.NODE_ENV === 'production') throw new errors.FSS_TOKEN_BACKUP_IN_PRODUCTION()
}

/** The backup document for a token (or for "cleared" when null). */
export function backupDocument (token: StoredToken | null, nowMs = Date.now()): Record<string, unknown> {
  if (token === null) return { savedAt: new Date(nowMs).toISOString(), token: null }
  const fingerprints: Record<string, string> = {}
  for (const field of VALUE_FIELDS) {
    const value = token[field]
    if (value !== undefined) fingerprints[field] = fingerprint(value)
  }
  return { savedAt: new Date(nowMs).toISOString(), token: { ...tokenMetadata(token, nowMs), fingerprints } }
}

/**
 * Wrap a store so every set/delete also rewrites the backup file (0600,
 * written to a temp file then renamed, so a reader never sees half a file).
 * A failed write is logged with the file name and errno code and does not fail
 * the request: the backup is a debugging aid, not storage.
 */
export function withTokenBackup (store: TokenStore, file: string, log: FastifyBaseLogger): TokenStore {
  // Writes are chained so that two requests cannot interleave temp files.
  let queue: Promise<void> = Promise.resolve()
  const save = (token: StoredToken | null): Promise<void> => {
    const body = JSON.stringify(backupDocument(token), null, 2) + '\n'
    queue = queue.then(async () => {
      const tmp = `${file}.${process.pid}.tmp`
      try {
        await writeFile(tmp, body, { mode: 0o600 })
        await chmod(tmp, 0o600) // the mode above only applies when the file is created
        await rename(tmp, file)
      } catch (err) {
        log.warn({ file, errno: (err as NodeJS.ErrnoException).code }, 'token backup not written')
      }
    })
    return queue
  }
  return {
    get: (request) => store.get(request),
    async set (request, token) {
      await store.set(request, token)
      await save(token)
    },
    async delete (request) {
      await store.delete(request)
      await save(null)
    }
  }
}
