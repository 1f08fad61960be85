// The provider's signing keys: jose's remote JWKS (cache, single in-flight
// fetch, and a cooldown after each fetch during which an unknown key id
// fetches nothing, so a key rotation is picked up by one re-fetch and a flood
// of made-up key ids is not). Around it: every fetch goes through jose's
// `customFetch` hook to a bounded GET, is counted, and is checked to be a
// JWKS before jose sees it; after a failed fetch, no new one is tried for
// `failureBackoff` ms (a provider that is down is not hammered by every
// login), while keys that are still fresh keep verifying.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors as jose, type JWTVerifyGetKey } from 'jose'
import { FetchFailure, displayUrl, getJson } from './http.ts'
import { isCoded, refuse, type FetchReason } from './reasons.ts'

export interface JwksOptions {
  /** milliseconds per fetch */
  timeout: number
  /** milliseconds after a fetch during which an unknown key id fetches nothing */
  cooldown: number
  /** milliseconds a fetched set is used before it is fetched again */
  cacheMaxAge: number
  /** milliseconds after a failed fetch during which no fetch is tried */
  failureBackoff: number
}

/** What /health may show: counts and times, never a key or a key id. */
export interface JwksState {
  /** the JWKS URL without userinfo or query */
  uri: string
  /** fetches tried since start-up */
  fetches: number
  /** fetches (and key imports) that failed since start-up */
  failures: number
  /** epoch ms of the last successful fetch */
  lastFetchAt: number | null
  /** keys in the set in use */
  keyCount: number
  /** the last failure, cleared by the next successful fetch */
  lastFailure: { at: number, code: 'FSS_JWKS_UNAVAILABLE', reason: FetchReason } | null
}

export interface Jwks {
  /** the key resolver for jose's jwtVerify; throws FSS_JWKS_UNAVAILABLE when the set cannot be fetched */
  getKey: JWTVerifyGetKey
  state: () => JwksState
}

/** A JWKS is a few keys; a provider's answer past this is refused unread. */
export const MAX_JWKS_BYTES = 512 * 1024

// JWK members that hold private or symmetric key material (RFC 7518 §6.2.2,
// §6.3.2, §6.4.1, RFC 8037 §2). A set that publishes any is a leak or a
// misconfiguration: it is refused whole, and the set in use is kept.
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

// RFC 7517 §5: an object whose `keys` is an array of public JWK objects. jose
// checks each key when it is used; this keeps a garbage answer from replacing
// a good set.
function isPublicKeySet (value: unknown): boolean {
  const keys = (value as { keys?: unknown } | null)?.keys
  return Array.isArray(keys) && keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k) &&
    SECRET_MEMBERS.every((member) => !Object.hasOwn(k, member)))
}

export function createJwks (uri: string, opts: JwksOptions): Jwks {
  const state: JwksState = { uri: displayUrl(uri), fetches: 0, failures: 0, lastFetchAt: null, keyCount: 0, lastFailure: null }

  const fail = (reason: FetchReason): Error => {
    state.failures++
    state.lastFailure = { at: Date.now(), code: 'FSS_JWKS_UNAVAILABLE', reason }
    return refuse.jwks(reason)
  }

  const fetchKeySet = async (url: string, init: { signal: AbortSignal, headers: Headers }): Promise<Response> => {
    state.fetches++
    try {
      const json = await getJson(url, { signal: init.signal, maxBytes: MAX_JWKS_BYTES, headers: Object.fromEntries(init.headers) })
      if (!isPublicKeySet(json)) throw new FetchFailure('invalid')
      state.lastFetchAt = Date.now()
      state.keyCount = (json as { keys: unknown[] }).keys.length
      state.lastFailure = null
      return Response.json(json)
    } catch (err) {
      throw fail((err as FetchFailure).reason)
    }
  }

  const remote = createRemoteJWKSet(new URL(uri), {
    timeoutDuration: opts.timeout,
    cooldownDuration: opts.cooldown,
    cacheMaxAge: opts.cacheMaxAge,
    [customFetch]: fetchKeySet
  })

  const inBackoff = (): boolean => state.lastFailure !== null && Date.now() - state.lastFailure.at < opts.failureBackoff

  const getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      if (inBackoff()) {
        // Keys still fresh keep verifying; an unknown key id fetches nothing.
        const set = remote.fresh ? remote.jwks() : undefined
        if (set === undefined) throw refuse.jwks('backoff')
        return await createLocalJWKSet(set)(header, token)
      }
      return await remote(header, token)
    } catch (err) {
      // No matching key concerns the token (the verifier says so); a failed
      // fetch is already coded; anything else is a key jose cannot import
      // (a malformed one), which /health must show too.
      if (err instanceof jose.JWKSNoMatchingKey || err instanceof jose.JWKSMultipleMatchingKeys || isCoded(err)) throw err
      throw fail('invalid')
    }
  }

  return { getKey, state: () => ({ ...state, lastFailure: state.lastFailure === null ? null : { ...state.lastFailure } }) }
}
