// Encryption at rest for token records in Redis: AES-256-GCM from node:crypto
// (no dependency beyond Node). Each keyring key yields a store-only subkey via
// HKDF, so the key that seals the session cookie never touches Redis data and
// a leak of one cannot be replayed against the other. The Redis key name is
// the additional authenticated data: a record copied under another session's
// key fails to open.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { fingerprint } from '../digest.ts'

export interface StoreKey {
  /** 8 hex of SHA-256 of the subkey: names the key in a record, reveals nothing about it. */
  id: string
  key: Buffer
}

const INFO = 'fastify-session-suite/redis-token-store/v1'
const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16

/** Store subkeys, newest first, in the keyring's order. */
export function deriveStoreKeys (keyring: Buffer[]): StoreKey[] {
  return keyring.map((ikm) => {
    const key = Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), INFO, 32))
    return { id: fingerprint(key), key }
  })
}

/** `v1.<key id>.<base64url(iv | ciphertext | tag)>`, always with the newest key. */
export function seal (keys: StoreKey[], plaintext: string, aad: string): string {
  const { id, key } = keys[0]
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return `${VERSION}.${id}.${body.toString('base64url')}`
}

export interface Opened {
  plaintext: string
  /** Position of the key that opened it: 0 is the newest. */
  keyIndex: number
}

/** The plaintext, or null when the record is malformed, tampered, or sealed by a key no longer in the ring. */
export function open (keys: StoreKey[], sealed: string, aad: string): Opened | null {
  const [version, id, body, extra] = sealed.split('.')
  if (version !== VERSION || extra !== undefined || body === undefined) return null
  const keyIndex = keys.findIndex((k) => k.id === id)
  if (keyIndex === -1) return null
  const bytes = Buffer.from(body, 'base64url')
  if (bytes.length < IV_BYTES + TAG_BYTES) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys[keyIndex].key, bytes.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(aad))
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    const plain = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()])
    return { plaintext: plain.toString('utf8'), keyIndex }
  } catch {
    // GCM authentication failed: tampered, truncated, or bound to another Redis key.
    return null
  }
}
