// returnTo is untrusted input that ends in a Location header: every hostile
// form is refused with its reason, every accepted value is a local path that
// a browser resolves to this origin, and no decoded form of it is anything else.
import t from 'tap'
import fc from 'fast-check'
import { checkReturnTo, MAX_RETURN_TO_LENGTH } from '../lib/oauth/return-to.ts'
import { HOSTILE_RETURN_TO } from './fixtures/return-to-forms.ts'

t.test('every hostile form is refused with its reason', async (t) => {
  for (const [value, reason] of HOSTILE_RETURN_TO) {
    t.same(checkReturnTo(value), { ok: false, reason }, JSON.stringify(value.slice(0, 40)))
  }
})

t.test('local paths with a query, a fragment and encoded characters are kept as given', async (t) => {
  for (const value of ['/', '/some/path?x=1', '/a?next=//evil.example', '/a#frag', '/caf%C3%A9', '/a%20b', '/%2E%2E/x', '/' + 'a'.repeat(MAX_RETURN_TO_LENGTH - 1)]) {
    t.same(checkReturnTo(value), { ok: true, path: value }, value.slice(0, 40))
  }
})

const BASE = 'https://app.example'

/** What a browser and a server that decodes up to four times could make of an accepted value. */
function staysHome (value: string): boolean {
  let layer = value
  for (let round = 0; round < 5; round++) {
    // eslint-disable-next-line no-control-regex -- finding control characters is the point
    if (/[\\\u0000-\u001F\u007F-\u009F]/.test(layer) || !layer.startsWith('/') || layer.startsWith('//')) return false
    const url = new URL(layer, BASE)
    if (url.origin !== BASE || url.pathname.startsWith('//')) return false
    let next: string
    try { next = decodeURIComponent(layer) } catch { return false }
    if (next === layer) return true
    layer = next
  }
  return false
}

t.test('property: an accepted returnTo stays on this origin in every decoded form; a refused one has a reason', async (t) => {
  // Strings built from the characters that matter here, and fully arbitrary ones.
  const pieces = fc.constantFrom('/', '\\', '%', '2F', '2f', '5C', '25', '0A', '0D', '09', '.', ':', '?', '#', 'evil', 'javascript', '//', '%2F', '%5C', '%25', ' ', '\t', '\n', 'é', 'a')
  const crafted = fc.array(pieces, { maxLength: 12 }).map((p) => p.join(''))
  let accepted = 0
  fc.assert(fc.property(fc.oneof(crafted, fc.string({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 32 })), (value) => {
    const checked = checkReturnTo(value)
    if (!checked.ok) return typeof checked.reason === 'string'
    accepted++
    return checked.path === value && staysHome(value)
  }), { numRuns: 3000 })
  t.ok(accepted > 0, `some values were accepted (${accepted})`)
})
