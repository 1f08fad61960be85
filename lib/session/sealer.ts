// The crypto, borrowed from @fastify/secure-session (libsodium secretbox, the
// newest key seals, every key opens). We register it inside a private child
// context that has no routes, so its eager onRequest/onSend hooks never run,
// and keep only its decode/encode functions for our lazy code.
import secureSession from '@fastify/secure-session'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { checkPayload, type Payload, type RejectReason } from './payload.ts'

export interface Sealer {
  /** secure-session's `cipher;nonce` → a checked payload, or why it is not one */
  open (sealed: string): { payload: Payload, rotated: boolean } | RejectReason
  seal (payload: Record<string, unknown>): string
}

// Names nobody reads: secure-session decorates the child's requests with this.
const UNUSED = '__fssSealerOnly'

// secure-session's own expiry check is switched off (100 years): checkPayload
// checks the idle timeout against our own `__i`, so every `null` from its
// decoder is a decryption-class failure and no reason is read from its texts.
const NO_EXPIRY = 100 * 365 * 24 * 3600

// decode() logs its failure at debug level (constant texts): not passed on.
const silent = {
  debug () {},
  /* c8 ignore next -- only called for an undefined cookie, which we never pass */
  trace () {}
} as unknown as FastifyBaseLogger

export async function createSealer (fastify: FastifyInstance, keys: Buffer[], idleTimeout: number, absoluteTimeout: number): Promise<Sealer> {
  let sealer: Sealer | undefined
  await fastify.register(async (child) => {
    await child.register(secureSession, { key: keys, expiry: NO_EXPIRY, cookieName: UNUSED, sessionName: UNUSED })
    const { decodeSecureSession: decode, encodeSecureSession: encode, createSecureSession: create } = child
    sealer = {
      open (sealed) {
        let session
        try {
          session = decode(sealed, silent)
        } catch {
          // JSON.parse of the plaintext failed, or it was null/a primitive
          // (secure-session reads `null.__ts` and throws: a 500 upstream).
          return 'payload'
        }
        // Malformed, too short, wrong nonce length, MAC failure or unknown key.
        if (session === null) return 'decrypt'
        // data() is typed `| undefined` but always returns a fresh object copy.
        const payload = checkPayload(session.data() as unknown as Record<string, unknown>, session.get('__ts'), idleTimeout, absoluteTimeout)
        // `changed` is set by secure-session when an older key opened it.
        return typeof payload === 'string' ? payload : { payload, rotated: session.changed }
      },
      seal (payload) {
        return encode(create(payload))
      }
    }
  })
  /* c8 ignore next -- register() awaited above always ran the function */
  if (sealer === undefined) throw new Error('sealer not initialised')
  return sealer
}
