// Where a login lands afterwards: the `returnTo` a page sends with GET /login.
// It ends up in a Location header, so anything a browser could read as
// another origin is an open redirect (RFC 9700 §4.11): only a local path is
// kept. Browsers treat `\` as `/`, drop tabs and newlines inside URLs, and
// some servers and proxies decode a path more than once, so each decoded
// form is held to the same rule as the value itself.

/** Longest returnTo kept (characters); a longer one falls back to the default page. */
export const MAX_RETURN_TO_LENGTH = 2048

/** How many times a value is percent-decoded to look for a hidden `//`, `\` or control character. */
const MAX_DECODE_ROUNDS = 4

/** Why a returnTo was refused: a fixed word, logged instead of the value. */
export type ReturnToRefusal =
  | 'too-long'
  | 'not-a-local-path'
  | 'other-host'
  | 'backslash'
  | 'control-character'
  | 'not-visible-ascii'
  | 'malformed-encoding'

export type ReturnToCheck = { ok: true, path: string } | { ok: false, reason: ReturnToRefusal }

// A relative reference resolved against this base must stay on it.
const BASE = 'https://return-to.invalid'

/** The rule one decoded layer is held to: a single leading `/`, no `\`, no control character. */
function layerRefusal (layer: string): ReturnToRefusal | null {
  // C0 controls, DEL and the C1 range: CR/LF split headers; tab and newline are dropped by URL parsers.
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0000-\u001F\u007F-\u009F]/.test(layer)) return 'control-character'
  if (layer.includes('\\')) return 'backslash'
  if (!layer.startsWith('/')) return 'not-a-local-path'
  // Dot segments can make a path the URL parser reads as `//host` (`/.//evil`).
  if (layer.startsWith('//') || new URL(layer, BASE).pathname.startsWith('//')) return 'other-host'
  return null
}

/**
 * Checks a returnTo: the value itself when it is a local path in visible ASCII whose every
 * decoded form is one too and which resolves to the same origin; otherwise a reason.
 */
export function checkReturnTo (value: string): ReturnToCheck {
  if (value.length > MAX_RETURN_TO_LENGTH) return { ok: false, reason: 'too-long' }
  let layer = value
  for (let round = 1; ; round++) {
    const refusal = layerRefusal(layer)
    if (refusal !== null) return { ok: false, reason: refusal }
    let decoded: string
    try {
      decoded = decodeURIComponent(layer)
    } catch {
      return { ok: false, reason: 'malformed-encoding' }
    }
    if (decoded === layer) break
    // More layers than any honest page sends.
    if (round === MAX_DECODE_ROUNDS) return { ok: false, reason: 'malformed-encoding' }
    layer = decoded
  }
  // After the decoded forms, so that a value hiding a control character is refused for that.
  if (!/^[\x21-\x7E]+$/.test(value)) return { ok: false, reason: 'not-visible-ascii' }
  return { ok: true, path: value }
}
