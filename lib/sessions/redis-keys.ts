// Where the Redis session registry keeps what. Everything one user owns sits
// under one Cluster hash tag, a bucket of the user's hash, so that revoking a
// session (delete the record, drop it from the user's index, announce it) is
// one script on one slot. The bucket, rather than the whole hash, is the tag so
// that on a Cluster each bucket has a channel in the same slot
// (`<prefix>sess:{<bucket>}:revoked`): SPUBLISH (Redis 7 sharded pub/sub)
// inside that script stays atomic with the delete, and every instance
// SSUBSCRIBEs to the 4096 bucket channels on the primaries that own them.
// One server uses one channel and PUBLISH.
import { createHash, hkdfSync } from 'node:crypto'
import type { StoreKey } from '../redis/seal.ts'

// 3 hex digits: 4096 buckets, spread over 4096 of Cluster's 16384 slots.
const BUCKET_HEX = 3
export const BUCKET_SHAPE = /^[0-9a-f]{3}$/

export interface UserKeys {
  bucket: string
  /** Sorted set of the user's session ids, scored by expiresAt (ms). */
  index: string
}

export interface RegistryKeys {
  user: (sub: string) => UserKeys
  /** The sealed record: `<prefix>sess:{<bucket>}:r:<id>`. */
  record: (bucket: string, id: string) => string
  /** The id's bucket, so a lookup by id alone finds its record: `<prefix>sess:id:<id>`. */
  locator: (id: string) => string
  /** Set of the session ids logged in through one provider session (back-channel logout). */
  sid: (provider: string, sid: string) => string
  /** Where revocations are announced on one server: message = space-separated ids. */
  channel: string
  /** Where a bucket's revocations are announced on a Cluster (SPUBLISH): in the bucket's slot. */
  bucketChannel: (bucket: string) => string
}

/** Every bucket, in order: the channels a Cluster subscriber listens to. */
export function allBuckets (): string[] {
  return Array.from({ length: 16 ** BUCKET_HEX }, (_, n) => n.toString(16).padStart(BUCKET_HEX, '0'))
}

function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * Key names for `prefix`. The user's `sub` and the provider's `sid` appear only
 * hashed; session ids appear as they are (a handle, not a credential: see id.ts).
 */
export function registryKeys (prefix: string): RegistryKeys {
  return {
    user (sub) {
      const hash = sha256(sub)
      const bucket = hash.toString('hex').slice(0, BUCKET_HEX)
      return { bucket, index: `${prefix}sess:{${bucket}}:u:${hash.toString('base64url')}` }
    },
    record: (bucket, id) => `${prefix}sess:{${bucket}}:r:${id}`,
    locator: (id) => `${prefix}sess:id:${id}`,
    sid: (provider, sid) => `${prefix}sess:sid:${sha256(`${provider}\n${sid}`).toString('base64url')}`,
    channel: `${prefix}sess:revoked`,
    bucketChannel: (bucket) => `${prefix}sess:{${bucket}}:revoked`
  }
}

const INFO = 'fastify-session-suite/session-registry/v1'

/**
 * Registry subkeys, newest first, one per keyring key: HKDF with the
 * registry's own info string, so neither the cookie key nor the token store's
 * subkey ever seals a registry record.
 */
export function deriveRegistryKeys (keyring: Buffer[]): StoreKey[] {
  return keyring.map((ikm) => {
    const key = Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), INFO, 32))
    return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key }
  })
}
