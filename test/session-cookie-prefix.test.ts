// The cookie-name prefixes are matched without case (RFC 6265bis §4.1.3): a
// browser holds `__host-s` and `__SECURE-s` to the prefix rules, and silently
// drops a cookie that breaks them, so every login would be lost. Start-up
// refuses such a name with the same rules, whatever its case.
import t from 'tap'
import fc from 'fast-check'
import { resolvePolicy } from '../lib/session/policy.ts'

/** `word` with each letter's case chosen by the bits of `mask`. */
function mixCase (word: string, mask: number): string {
  return [...word].map((c, i) => ((mask >> i) & 1) === 1 ? c.toUpperCase() : c.toLowerCase()).join('')
}

function refusal (opts: Record<string, unknown>): string | undefined {
  try {
    resolvePolicy({ key: Buffer.alloc(32, 1), ...opts })
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

t.test('a prefix in any case gets the prefix rules (table)', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
    ['__host- without Secure', { cookieName: '__host-s', secure: false }, 'FSS_OPTIONS_INVALID'],
    ['__HOST- with a Domain', { cookieName: '__HOST-s', domain: 'example.com' }, 'FSS_OPTIONS_INVALID'],
    ['__Host- (other case) with a path', { cookieName: '__hOsT-s', path: '/app' }, 'FSS_OPTIONS_INVALID'],
    ['__secure- without Secure', { cookieName: '__secure-s', secure: false }, 'FSS_OPTIONS_INVALID'],
    ['__SECURE- without Secure', { cookieName: '__SECURE-s', secure: false }, 'FSS_OPTIONS_INVALID'],
    ['__host- that keeps the rules', { cookieName: '__host-s' }, undefined],
    ['__secure- with Secure and a Domain', { cookieName: '__secure-s', domain: 'example.com' }, undefined],
    ['no prefix (host without underscores)', { cookieName: 'host-s', secure: false }, undefined]
  ]
  for (const [name, opts, code] of cases) t.equal(refusal(opts), code, name)
})

t.test('property: every case variant of __Host- and __Secure- without Secure is refused (fast-check)', async (t) => {
  fc.assert(fc.property(
    fc.constantFrom('__host-', '__secure-'),
    fc.integer({ min: 0, max: 511 }),
    fc.stringMatching(/^[a-z0-9]{1,8}$/),
    (prefix, mask, rest) => refusal({ cookieName: mixCase(prefix, mask) + rest, secure: false }) === 'FSS_OPTIONS_INVALID'
  ), { numRuns: 300 })
  t.pass('300 case variants refused')
})
