// Key formats: turns operator-supplied text into a 32-byte libsodium secretbox
// key. Errors name where the text came from (a variable or a file), never the text.
import { hkdfSync } from 'node:crypto'
import { errors } from '../errors.ts'

export const KEY_BYTES = 32

// HKDF parameters are part of the on-disk/on-wire contract: changing any of
// them changes every key derived from long material and logs everyone out.
export const HKDF_INFO = 'fastify-session-suite/v1 session key'
const HKDF_SALT = Buffer.alloc(0)

const HEX = /^[0-9a-fA-F]+$/
// One alphabet per string: standard (+/) or URL-safe (-_), optional padding.
const BASE64 = /^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)(={0,2})$/

/**
 * Decodes hex (64+ characters, even length), base64 or base64url strictly.
 * Returns undefined for anything else, including non-canonical base64 whose
 * trailing bits Buffer.from() would silently drop.
 */
export function decodeMaterial (text: string): Buffer | undefined {
  if (text.length >= 64 && text.length % 2 === 0 && HEX.test(text)) return Buffer.from(text, 'hex')
  const m = BASE64.exec(text)
  if (m === null) return undefined
  const body = text.slice(0, text.length - m[1].length)
  if (m[1].length > 0 && text.length % 4 !== 0) return undefined
  if (body.length % 4 === 1) return undefined
  const buf = Buffer.from(body, 'base64url')
  const urlBody = body.replace(/\+/g, '-').replace(/\//g, '_')
  return buf.toString('base64url') === urlBody ? buf : undefined
}

// Hex is what `openssl rand -hex N` and Python secrets.token_hex(N) print.
// Under 64 digits it holds under 32 bytes, however else the same text could
// decode: 44 hex digits are also valid base64 of 33 bytes.
const SHORT_HEX = 63

/** Why decoded material is too weak to be a key, or undefined; `text` is the trimmed input. */
function weakness (text: string, material: Buffer | undefined): string | undefined {
  if (text.length <= SHORT_HEX && HEX.test(text)) return `${text.length} hex characters`
  // All zeros, 43 'A's...: the length of a key with the entropy of one byte.
  if (material !== undefined && material.every((b) => b === material[0])) return 'one byte repeated'
  return undefined
}

/**
 * Env-style secrets: exactly 32 bytes are used as is (so an existing
 * @fastify/secure-session key keeps decrypting its cookies); longer material
 * is reduced with HKDF-SHA256 (empty salt, HKDF_INFO, 32 bytes), which is
 * deterministic, so the same text gives the same key on every start.
 */
export function decodeSecret (text: string, source: string): Buffer {
  const trimmed = text.trim()
  const material = decodeMaterial(trimmed)
  const weak = weakness(trimmed, material)
  if (weak !== undefined) throw new errors.FSS_SECRET_WEAK(`${source} (${weak})`)
  if (material === undefined) throw new errors.FSS_SECRET_MALFORMED(source, 'expected 64+ hex characters, base64 or base64url')
  if (material.length < KEY_BYTES) throw new errors.FSS_SECRET_WEAK(source)
  if (material.length === KEY_BYTES) return material
  return Buffer.from(hkdfSync('sha256', material, HKDF_SALT, HKDF_INFO, KEY_BYTES))
}

/**
 * Key-file lines must be exactly 32 bytes: the file is ours, so anything else
 * means damage (returned as the reason). A weak key (short hex, one repeated
 * byte) throws FSS_SECRET_WEAK naming `source`.
 */
export function decodeFileKey (line: string, source: string): Buffer | string {
  const trimmed = line.trim()
  const material = decodeMaterial(trimmed)
  const weak = weakness(trimmed, material)
  if (weak !== undefined) throw new errors.FSS_SECRET_WEAK(`${source} (${weak})`)
  if (material === undefined) return 'it is not hex, base64 or base64url'
  if (material.length !== KEY_BYTES) return `it decodes to ${material.length} bytes, not ${KEY_BYTES}`
  return material
}

/** The text form written to key files and printed by `keygen`. */
export function encodeKey (key: Buffer): string {
  return key.toString('base64url')
}
