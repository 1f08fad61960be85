// Cookies that merely start with the session cookie's name are someone else's
// (a script on the page, a sibling app): they are neither read nor expired,
// so they cannot make a write fail or make the answer grow with the request.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { build } from './helper.ts'
import { key, sess, setCookies, liveCookies } from './session-helper.ts'
import session from '../plugins/session.ts'
import { startOidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp } from './fixtures/oauth-app.ts'

const NAME = '__Host-session'
const OURS = [NAME, ...Array.from({ length: 8 }, (_, i) => `${NAME}.${i}`)]

async function app (t: Test) {
  const fastify = await build(t)
  await fastify.register(session, { key: [key()] })
  fastify.get('/set', async (req) => { sess(req).set('user', 'ada'); return {} })
  fastify.get('/big', async (req) => { sess(req).set('big', 'z'.repeat(7000)); return {} })
  fastify.get('/get', async (req) => ({ data: req.session.data() }))
  fastify.get('/delete', async (req) => { req.session.delete(); return {} })
  return fastify
}

const names = (lines: string[]): string[] => lines.map((l) => l.slice(0, l.indexOf('=')))

t.test('a stray cookie named like a chunk but with a space, tab or non-ASCII character does not break a write', async (t) => {
  const fastify = await app(t)
  const valid = liveCookies(setCookies(t, await fastify.inject('/set'))).get(NAME) as string
  for (const stray of [`${NAME}.a b`, `${NAME}.a\tb`, `${NAME}.é`, `${NAME}.x`, `${NAME}.8`, `${NAME}.99`, `${NAME}.01`]) {
    for (const url of ['/set', '/big', '/delete', '/get']) {
      const res = await fastify.inject({ url, headers: { cookie: `${stray}=1; ${NAME}=${valid}` } })
      t.equal(res.statusCode, 200, `${url} with ${JSON.stringify(stray)}`)
      t.notOk(names(setCookies(t, res, true)).includes(stray), 'the stray cookie is left alone')
    }
    const read = await fastify.inject({ url: '/get', headers: { cookie: `${stray}=1; ${NAME}=${valid}` } })
    t.same(read.json().data, { user: 'ada' }, `the session is still read beside ${JSON.stringify(stray)}`)
  }
})

t.test('600 chunk-like cookies in, at most our 9 names expired out', async (t) => {
  const fastify = await app(t)
  const cookie = Array.from({ length: 600 }, (_, i) => `${NAME}.${i}=x`).join('; ')
  for (const url of ['/set', '/big', '/delete', '/get']) {
    const res = await fastify.inject({ url, headers: { cookie } })
    t.equal(res.statusCode, 200, url)
    const lines = setCookies(t, res, true)
    t.ok(lines.length <= OURS.length, `${url}: ${lines.length} Set-Cookie lines`)
    t.ok(names(lines).every((n) => OURS.includes(n)), `${url}: only our names`)
    // Expiring lines are ~100 bytes; only /big's live chunks are long.
    const expiring = lines.filter((l) => /Max-Age=0/.test(l))
    t.ok(expiring.length <= OURS.length && expiring.every((l) => l.length < 200), `${url}: ${expiring.length} short expiring lines`)
  }
})

t.test('property: any cookie names under our prefix give a 2xx and Set-Cookie lines for our names only (fast-check)', async (t) => {
  const fastify = await app(t)
  const valid = liveCookies(setCookies(t, await fastify.inject('/set'))).get(NAME) as string
  // Visible ASCII, space, tab and Latin-1 (what a Cookie header can carry), or a number.
  const char = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(9), fc.integer({ min: 0xa0, max: 0xff }))
    .map((c) => String.fromCharCode(c)).filter((c) => c !== ';' && c !== '=')
  const suffix = fc.oneof(fc.nat({ max: 1000 }).map(String), fc.string({ unit: char, maxLength: 6 }))
  const url = fc.constantFrom('/set', '/big', '/delete', '/get')
  await fc.assert(fc.asyncProperty(fc.array(suffix, { maxLength: 30 }), fc.boolean(), url, async (suffixes, withSession, path) => {
    const pairs = suffixes.map((s) => `${NAME}.${s}=1`)
    if (withSession) pairs.push(`${NAME}=${valid}`)
    const res = await fastify.inject({ url: path, headers: { cookie: pairs.join('; ') } })
    const written = names(setCookies(t, res, true))
    return res.statusCode === 200 && written.length <= OURS.length && written.every((n) => OURS.includes(n))
  }), { numRuns: 500 })
})

t.test('the OAuth callback completes beside a stray chunk-like cookie', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  const env = await startOAuthApp(t, oidc)
  const b = env.browser()
  const { callbackUrl } = await b.startLogin()
  const jar = await b.jar.getCookieString(callbackUrl.href)
  const res = await b.request(callbackUrl.href, { headers: { cookie: `${jar}; ${NAME}.a b=1; ${NAME}.é=2` } })
  t.equal(res.status, 302, 'logged in')
  t.same((await b.request('/api/meta')).json().meta.fields.includes('access_token'), true, 'token stored')
})
