// SHA-256 in the three forms the suite uses. A secret (a key, a token, a
// session reference) is never a map key, a Redis key name or a log field: its
// digest stands in for it, and tells nothing about it.
import { createHash } from 'node:crypto'

/** The 32 raw bytes: equal length for any input, so timingSafeEqual can compare two of them. */
export function sha256 (value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest()
}

/** base64url of SHA-256: the name a secret goes by in a map or in Redis. */
export function sha256Base64url (value: string | Buffer): string {
  return createHash('sha256').update(value).digest('base64url')
}

/** First 8 hex characters of SHA-256: enough to tell keys or tokens apart in a log, a file or a test; useless to recover one. */
export function fingerprint (value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8)
}
