// Session ids: 128 random bits (OWASP's floor for a session identifier's
// entropy), base64url without padding. The id is a handle, not a credential:
// it is sealed inside the session cookie and shown to its owner in the list of
// their devices; holding an id without the cookie grants nothing.
import { randomBytes } from 'node:crypto'

const ID_BYTES = 16
// 16 bytes are 22 base64url characters; the last one carries 2 data bits and
// 4 zero bits, so only A, Q, g or w can end a canonical encoding.
const ID_SHAPE = /^[A-Za-z0-9_-]{21}[AQgw]$/

/** A new random session id: 22 base64url characters (128 bits). */
export function createSessionId (): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/** True only for the exact shape createSessionId() makes: any other value is refused before it reaches a store. */
export function isSessionId (value: unknown): value is string {
  return typeof value === 'string' && ID_SHAPE.test(value)
}
