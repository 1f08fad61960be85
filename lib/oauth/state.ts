// OAuth `state` (RFC 6749 §10.12) and its one-time use: 256 bits, kept with
// its flow (lib/oauth/flow-state.ts), and a state that already reached the
// callback (or whose flow was dropped) is refused even if a client re-sends
// the cleared cookie (replay).
import { randomBytes } from 'node:crypto'
import { errors } from '../errors.ts'
import { sha256Base64url } from '../digest.ts'
import { ExpiringMap } from '../expiring-map.ts'

/** 32 random bytes, base64url: 256 bits, twice the 128 bits RFC 6749 §10.10 asks of a guessable value. */
export function generateState (): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Remembers states that reached the callback (as sha256, for `ttlMs`, which is
 * the state cookie's lifetime, after which the cookie cannot match anyway).
 * Bounded: past `max` entries the oldest are dropped, and replay defence falls
 * back to the cleared cookie and the provider's single-use code.
 */
export class UsedStates {
  readonly #seen: ExpiringMap<true>
  readonly #ttlMs: number

  constructor (ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs
    this.#seen = new ExpiringMap(max)
  }

  /** Marks the state used; throws FSS_OAUTH_STATE_INVALID if it already was. */
  consume (state: string): void {
    const key = sha256Base64url(state)
    if (this.#seen.get(key) === true) throw new errors.FSS_OAUTH_STATE_INVALID('this state was already used (replayed callback)')
    this.#seen.set(key, true, Date.now() + this.#ttlMs)
  }

  /** Marks a state that can no longer complete (its flow was dropped for newer ones) as used. */
  retire (state: string): void {
    this.#seen.set(sha256Base64url(state), true, Date.now() + this.#ttlMs)
  }
}
