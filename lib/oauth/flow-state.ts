// One login flow's state in one cookie of its own, so that flows started in
// several tabs (or for several providers) at once each complete: the state,
// the PKCE verifier (RFC 7636), the OpenID Connect nonce, the provider the
// flow is bound to (the mix-up defence: a state is answered only at its own
// provider's callback) and the page to return to. The cookie's name is
// derived from the state, so the callback finds its flow without reading any
// other; the browser keeps it HttpOnly, Secure, `__Host-` (no sibling
// subdomain can plant one) and short-lived. Bounded: a login that would make
// more than MAX_FLOWS drops the oldest.
import { timingSafeEqual } from 'node:crypto'
import { sha256, sha256Base64url } from '../digest.ts'
import { checkReturnTo } from './return-to.ts'

/** Flows kept at once per browser; a new one past this drops the oldest. */
export const MAX_FLOWS = 5

/** A cookie a browser must keep: name, value and attributes within 4096 bytes (RFC 6265 §6.1). */
export const MAX_FLOW_COOKIE_BYTES = 4096

/**
 * All flow cookies together (names and values): every request carries them in its Cookie
 * header, beside the session's chunks, and Node refuses request headers over 16 KiB (431).
 * Five flows with short returnTo paths fit; long ones leave room for fewer.
 */
export const MAX_FLOW_BYTES = 6144

export interface FlowState {
  /** the provider name the flow was started for */
  provider: string
  state: string
  verifier: string
  /** OpenID Connect only */
  nonce: string | null
  /** a checked local path, or null for the default page */
  returnTo: string | null
  /** epoch ms */
  startedAt: number
}

/** The flow cookies' common name prefix. */
export function flowCookiePrefix (hostPrefixed: boolean): string {
  return `${hostPrefixed ? '__Host-' : ''}fss-flow.`
}

/** The cookie that holds the flow of `state`: 128 bits of its hash, so the name reveals nothing of it. */
export function flowCookieName (prefix: string, state: string): string {
  return prefix + sha256Base64url(state).slice(0, 22)
}

// Fields joined by `.` (none of the first five can hold one; returnTo, last, may), then base64url:
// a cookie value needs no quoting, and its size is 4/3 of the fields, whatever returnTo holds.
const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
const B64 = /^[A-Za-z0-9_-]{16,128}$/

export function encodeFlow (flow: FlowState): string {
  return Buffer.from([flow.provider, flow.state, flow.verifier, flow.nonce ?? '', String(flow.startedAt), flow.returnTo ?? ''].join('.')).toString('base64url')
}

/** The flow in a cookie value, or null for anything this module did not write. */
export function decodeFlow (value: string): FlowState | null {
  const fields = Buffer.from(value, 'base64url').toString('latin1').split('.')
  if (fields.length < 6) return null
  const [provider, state, verifier, nonce, startedAt] = fields as [string, string, string, string, string]
  const returnTo = fields.slice(5).join('.')
  if (!NAME.test(provider) || !B64.test(state) || !B64.test(verifier) || (nonce !== '' && !B64.test(nonce)) || !/^\d{1,15}$/.test(startedAt)) return null
  // The cookie is the browser's, not ours: the returnTo it carries back passes the same rule as
  // the one GET /login accepted, or the flow is refused (a planted cookie never redirects off-origin).
  if (returnTo !== '' && !checkReturnTo(returnTo).ok) return null
  return { provider, state, verifier, nonce: nonce === '' ? null : nonce, returnTo: returnTo === '' ? null : returnTo, startedAt: Number(startedAt) }
}

/** True when `flow` belongs to `state` (constant time: both are hashed to equal lengths). */
export function flowMatches (flow: FlowState, state: string): boolean {
  return timingSafeEqual(sha256(flow.state), sha256(state))
}

export interface HeldFlow { name: string, flow: FlowState | null }

/** The part of a flow cookie's name after the prefix: 22 base64url characters (flowCookieName). */
const FLOW_NAME_TAIL = /^[A-Za-z0-9_-]{22}$/

/** Flow cookies one login response expires at most. */
export const MAX_DROPPED_FLOWS = 2 * MAX_FLOWS

/**
 * The flow cookies a browser sent that a new flow of `newBytes` (name and value) pushes out:
 * the oldest (an unreadable one counts as oldest) until at most `max` flows and `maxBytes`
 * remain, the new one included.
 */
export function flowsToDrop (cookies: Record<string, string | undefined>, prefix: string, newBytes: number, max = MAX_FLOWS, maxBytes = MAX_FLOW_BYTES): HeldFlow[] {
  const held: Array<HeldFlow & { bytes: number }> = []
  for (const [name, value] of Object.entries(cookies)) {
    // Only a name flowCookieName() could have made is ours to expire: any other (a space or a
    // non-ASCII character in it, say) cannot even be serialized in a Set-Cookie line.
    if (name.startsWith(prefix) && FLOW_NAME_TAIL.test(name.slice(prefix.length)) && value !== undefined) {
      held.push({ name, flow: decodeFlow(value), bytes: name.length + value.length })
    }
  }
  // Newest first: kept while they fit beside the new flow.
  held.sort((a, b) => (b.flow?.startedAt ?? -1) - (a.flow?.startedAt ?? -1))
  let count = 1
  let bytes = newBytes
  const dropped: HeldFlow[] = []
  for (const { name, flow, bytes: size } of held) {
    if (count < max && bytes + size <= maxBytes) {
      count++
      bytes += size
    } else {
      dropped.push({ name, flow })
    }
  }
  // Each login keeps at most `max` flows, so a browser holds a few more at most (logins started
  // at once in several tabs): more is planted, and expiring it all would answer hundreds of
  // Set-Cookie lines. The oldest (unreadable ones first) go; the rest are left as they are.
  return dropped.slice(0, MAX_DROPPED_FLOWS)
}
