// The crypto: libsodium's secretbox (XSalsa20-Poly1305) through sodium-native,
// the binding @fastify/secure-session seals with, in the same layout: a random
// 24-byte nonce, `ciphertext ‖ MAC` of the JSON payload, the newest key seals
// and every key opens. Cookies of the previous release (sealed through
// secure-session) open unchanged. Called directly, the cookie value is encoded
// once, as base64url (see codec.ts), instead of secure-session's base64 turned
// into base64url on every write and back on every read.
import { createRequire } from 'node:module'
import { splitSealed } from './codec.ts'
import { checkPayload, ISSUED, type Payload, type RejectReason } from './payload.ts'

export interface Sealer {
  /** our cookie value (`cipher.nonce`, base64url) → a checked payload, or why it is not one */
  open (value: string): { payload: Payload, rotated: boolean } | RejectReason
  /** a payload → our cookie value */
  seal (payload: Record<string, unknown>): string
}

interface Sodium {
  crypto_secretbox_MACBYTES: number
  crypto_secretbox_NONCEBYTES: number
  crypto_secretbox_easy: (cipher: Buffer, message: Buffer, nonce: Buffer, key: Buffer) => void
  crypto_secretbox_open_easy: (message: Buffer, cipher: Buffer, nonce: Buffer, key: Buffer) => boolean
  randombytes_buf: (buffer: Buffer) => void
}
// sodium-native is CommonJS and ships no types: the five calls used, typed here.
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium
const MAC = sodium.crypto_secretbox_MACBYTES
const NONCE = sodium.crypto_secretbox_NONCEBYTES

// Nonces are drawn from libsodium's CSPRNG 256 at a time: one call into the
// binding per 256 seals instead of one each. Every nonce is used once (the
// pool is refilled only when spent), and a random 192-bit nonce is what
// secretbox is designed for.
const POOL_NONCES = 256

/** `keys`: 32-byte secretbox keys, newest first (the plugin checks them). */
export function createSealer (keys: Buffer[], idleTimeout: number, absoluteTimeout: number): Sealer {
  const pool = Buffer.allocUnsafe(POOL_NONCES * NONCE)
  let used = POOL_NONCES

  function nextNonce (): Buffer {
    if (used === POOL_NONCES) {
      sodium.randombytes_buf(pool)
      used = 0
    }
    return pool.subarray(NONCE * used, NONCE * ++used)
  }

  return {
    open (value) {
      const parts = splitSealed(value)
      if (parts === null) return 'format'
      const cipher = Buffer.from(parts[0], 'base64url')
      const nonce = Buffer.from(parts[1], 'base64url')
      // Too short to hold a MAC, or not a nonce.
      if (cipher.length < MAC || nonce.length !== NONCE) return 'decrypt'
      const message = Buffer.allocUnsafe(cipher.length - MAC)
      let index = 0
      while (index < keys.length && !sodium.crypto_secretbox_open_easy(message, cipher, nonce, keys[index])) index++
      // A MAC failure under every key: tampered, or sealed with a key we do not hold.
      if (index === keys.length) return 'decrypt'
      let parsed: unknown
      try {
        parsed = JSON.parse(message.toString('utf8'))
      } catch {
        return 'payload'
      }
      if (typeof parsed !== 'object' || parsed === null) return 'payload'
      const data = parsed as Record<string, unknown>
      // `__ts` is only read for a cookie without our own `__i` (payload.ts).
      const legacyIssuedAt = data[ISSUED]
      delete data[ISSUED]
      const payload = checkPayload(data, legacyIssuedAt, idleTimeout, absoluteTimeout)
      return typeof payload === 'string' ? payload : { payload, rotated: index > 0 }
    },
    seal (payload) {
      const message = Buffer.from(JSON.stringify(payload))
      const cipher = Buffer.allocUnsafe(message.length + MAC)
      const nonce = nextNonce()
      sodium.crypto_secretbox_easy(cipher, message, nonce, keys[0])
      return cipher.toString('base64url') + '.' + nonce.toString('base64url')
    }
  }
}
