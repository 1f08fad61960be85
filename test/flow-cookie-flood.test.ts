// Stray and planted flow cookies at GET /login: a name the suite could not
// have written (a space, a non-ASCII character) is ignored rather than a 500,
// and hundreds of flow-shaped cookies get at most MAX_DROPPED_FLOWS expiring
// lines back, never a response-header flood. Real provider (oauth2-mock-server).
import t from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp } from './fixtures/oauth-app.ts'
import { MAX_DROPPED_FLOWS } from '../lib/oauth/flow-state.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

const P = '__Host-fss-flow.'
const many = (n: number, name: (i: number) => string, value = 'x'): string => Array.from({ length: n }, (_, i) => `${name(i)}=${value}`).join('; ')

t.test('GET /login with hostile flow cookies: 302, bounded Set-Cookie lines (table + fast-check)', async (t) => {
  const env = await startOAuthApp(t, oidc)
  const cases: Array<[string, string]> = [
    ['a space in a flow cookie name', `${P}a b=1`],
    ['a tab', `${P}a\tb=1`],
    ['latin-1', `${P}\u00e9=1`],
    ['300 flow-shaped names', many(300, (i) => P + String(i).padStart(22, 'A'))],
    ['300 odd names with the prefix', many(300, (i) => `${P}x${i}`)],
    ['50 names with spaces', many(50, (i) => `${P}a b${i}`)]
  ]
  for (const [name, cookie] of cases) {
    const res = await env.app.inject({ url: '/login', headers: { cookie } })
    const lines = [res.headers['set-cookie'] ?? []].flat()
    t.equal(res.statusCode, 302, `${name}: 302`)
    t.ok(lines.length <= MAX_DROPPED_FLOWS + 1, `${name}: ${lines.length} Set-Cookie lines`)
  }
  await fc.assert(fc.asyncProperty(
    fc.array(fc.tuple(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{22}$/), fc.stringMatching(/^[\x21-\x3a\x3c\x3e-\x7e \u00e9\t]{0,24}$/)), fc.stringMatching(/^[A-Za-z0-9_.-]{0,30}$/)), { maxLength: 200 }),
    async (pairs) => {
      const cookie = pairs.map(([n, v]) => `${P}${n}=${v}`).join('; ')
      const res = await env.app.inject({ url: '/login', headers: cookie === '' ? {} : { cookie } })
      return res.statusCode === 302 && [res.headers['set-cookie'] ?? []].flat().length <= MAX_DROPPED_FLOWS + 1
    }
  ), { numRuns: 60 })
})
