// What a provider may answer, through the real OIDC server, at the callback
// and at refresh: the raw JSON is judged (null counts as absent, never as
// epoch 0), expiries are bounded, token values are printable RFC 6749
// characters within the size the session can store; anything else is a coded
// 502 that stores nothing (and, at refresh, clears the used-up tokens).
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp, type OAuthApp, type HttpBrowser } from './fixtures/oauth-app.ts'
import { fingerprint } from '../lib/digest.ts'

let oidc: OidcServer
let env: OAuthApp
t.before(async () => {
  oidc = await startOidcServer()
  // A generous call timeout: a loaded machine must not turn a refusal under test into a 504.
  env = await startOAuthApp(t, oidc, { timeout: 10_000 })
})
t.teardown(() => oidc.stop())

const YEAR = 31_622_400 // 366 days in seconds
const MAX_BYTES = 8192
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

type Patch = (body: Record<string, unknown>) => void
interface Meta { expiresIn: number, expired: boolean, expiresAssumed: boolean, scopes: string[], hasRefreshToken: boolean, hasIdToken: boolean }

/** Pads access_token so that the stored token's JSON is exactly `bytes` long (expires_at has 10 digits until 2286). */
function padTo (bytes: number): Patch {
  return (body) => {
    body.expires_in = 3600
    const rest = JSON.stringify({ access_token: '', token_type: 'Bearer', expires_at: 1_000_000_000, expires_in: 3600, refresh_token: body.refresh_token, scope: body.scope, id_token: body.id_token })
    body.access_token = 'a'.repeat(bytes - Buffer.byteLength(rest))
  }
}

// [what, patch, expected]: a Meta check for an accepted answer, or 'refused'.
const answers: Array<[string, Patch, ((t: Test, meta: Meta) => void) | 'refused']> = [
  ['expires_in: null counts as absent (assumed lifetime)', (b) => { b.expires_in = null }, (t, m) => {
    t.equal(m.expiresAssumed, true)
    t.ok(m.expiresIn > 3590 && m.expiresIn <= 3600, 'the assumed 3600 s')
  }],
  ['expires_at: null beside expires_in: 3600 is not epoch 0', (b) => { b.expires_at = null; b.expires_in = 3600 }, (t, m) => {
    t.equal(m.expired, false)
    t.ok(m.expiresIn > 3590 && m.expiresIn <= 3600)
    t.equal(m.expiresAssumed, false)
  }],
  ['both null: the assumed lifetime', (b) => { b.expires_at = null; b.expires_in = null }, (t, m) => { t.equal(m.expiresAssumed, true) }],
  ['expires_in: null beside a sane expires_at', (b) => { b.expires_in = null; b.expires_at = nowSeconds() + 600 }, (t, m) => {
    t.ok(m.expiresIn > 590 && m.expiresIn <= 600)
    t.equal(m.expiresAssumed, false)
  }],
  ['only expires_at (epoch seconds) is a stated lifetime, not an assumed one', (b) => { delete b.expires_in; b.expires_at = nowSeconds() + 900 }, (t, m) => {
    t.equal(m.expiresAssumed, false)
    t.ok(m.expiresIn > 890 && m.expiresIn <= 900)
  }],
  ['only expires_at (ISO 8601)', (b) => { delete b.expires_in; b.expires_at = new Date(Date.now() + 900_000).toISOString() }, (t, m) => {
    t.equal(m.expiresAssumed, false)
    t.ok(m.expiresIn > 890 && m.expiresIn <= 900)
  }],
  ['expires_in of exactly 366 days', (b) => { b.expires_in = YEAR }, (t, m) => { t.ok(m.expiresIn > YEAR - 10 && m.expiresIn <= YEAR) }],
  ['expires_in of 366 days + 1 s', (b) => { b.expires_in = YEAR + 1 }, 'refused'],
  ['expires_in 1e21 (parseInt reads 1)', (b) => { b.expires_in = 1e21 }, 'refused'],
  ['expires_in 1e308', (b) => { b.expires_in = 1e308 }, 'refused'],
  ['expires_in "1e+308"', (b) => { b.expires_in = '1e+308' }, 'refused'],
  ['expires_at in milliseconds', (b) => { delete b.expires_in; b.expires_at = Date.now() + 3600_000 }, 'refused'],
  ['expires_at 1e10 (year 2286)', (b) => { delete b.expires_in; b.expires_at = 1e10 }, 'refused'],
  ['a 1 MB access_token', (b) => { b.access_token = 'a'.repeat(1 << 20) }, 'refused'],
  ['a token of exactly 8192 bytes fits the cookie session', padTo(MAX_BYTES), (t, m) => { t.equal(m.expired, false) }],
  ['a token of 8193 bytes', padTo(MAX_BYTES + 1), 'refused'],
  ['CR LF in the access_token (header injection)', (b) => { b.access_token = 'abc\r\nX-Injected: 1' }, 'refused'],
  ['NUL in the access_token', (b) => { b.access_token = 'abc\u0000def' }, 'refused'],
  ['a tab in the access_token', (b) => { b.access_token = 'abc\tdef' }, 'refused'],
  ['DEL in the access_token', (b) => { b.access_token = 'abc\u007fdef' }, 'refused'],
  ['non-ASCII in the access_token', (b) => { b.access_token = 'abcé' }, 'refused'],
  ['LF in the refresh_token', (b) => { b.refresh_token = 'r\nx' }, 'refused'],
  ['NUL in the id_token', (b) => { b.id_token = `${String(b.id_token)}\u0000` }, 'refused'],
  ['a quote in a scope', (b) => { b.scope = 'openid "profile"' }, 'refused'],
  ['an empty refresh_token', (b) => { b.refresh_token = '' }, 'refused'],
  ['printable punctuation in the access_token (Salesforce-style)', (b) => { b.access_token = '00D5e000000!AQ4AQ.x~y+z/=' }, (t, m) => { t.equal(m.expired, false) }]
]

async function meta (b: HttpBrowser): Promise<Meta | null> {
  return (await b.request('/api/meta')).json().meta
}

t.test('at the callback: the raw answer is judged, and a refused one is a coded 502 that stores nothing', async (t) => {
  for (const [what, patch, expected] of answers) {
    await t.test(what, async (t) => {
      const b = env.browser()
      const { callbackUrl } = await b.startLogin()
      oidc.substitute({ patch })
      const res = await b.request(callbackUrl.href)
      if (expected === 'refused') {
        t.equal(res.status, 502)
        t.equal(res.json().code, 'FSS_TOKEN_INVALID')
        t.equal(await meta(b), null, 'nothing stored')
      } else {
        t.equal(res.status, 302)
        const m = await meta(b) as Meta
        expected(t, m)
        t.equal((await b.request('/api/token')).status, 200, 'the stored token is usable')
      }
    })
  }
})

/** A session holding an expired token with a refresh token of our choosing. */
async function expiredSession (n: number): Promise<{ b: HttpBrowser, refresh: string }> {
  const b = env.browser()
  const refresh = `answers-refresh-${n}-${'r'.repeat(20)}`
  const res = await b.request('/api/store', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ access_token: `answers-access-${n}`, token_type: 'Bearer', expires_in: 0, refresh_token: refresh, scope: 'openid profile' })
  })
  if (res.status !== 200) throw new Error(`store answered ${res.status}`)
  return { b, refresh }
}

t.test('at refresh: the same rules; a refused answer clears the tokens and the old refresh token is never sent again', async (t) => {
  const sent: string[] = []
  const listener = (_r: unknown, req: { body: Record<string, string> }): void => {
    if (req.body.grant_type === 'refresh_token') sent.push(req.body.refresh_token)
  }
  oidc.service.on('beforeResponse', listener)
  t.teardown(() => { oidc.service.off('beforeResponse', listener) })
  let n = 0
  for (const [what, patch, expected] of answers) {
    await t.test(what, async (t) => {
      const { b, refresh } = await expiredSession(++n)
      const stale = await b.jar.getCookieString(b.origin + '/')
      oidc.substitute({ patch })
      const res = await b.request('/api/token')
      if (expected === 'refused') {
        t.equal(res.status, 502)
        t.equal(res.json().code, 'FSS_TOKEN_INVALID')
        t.equal(await meta(b), null, 'the used-up tokens are cleared')
        // Another tab still holding the old pair: the same error, its tokens cleared too, no second call.
        const other = env.browser()
        const again = await other.request('/api/token', { headers: { cookie: stale } })
        t.equal(again.status, 502)
        t.equal(again.json().code, 'FSS_TOKEN_INVALID')
        t.equal(await meta(other), null, 'the other tab dropped its copy')
        t.equal(sent.filter((s) => s === refresh).length, 1, 'the provider saw the refresh token once')
      } else {
        t.equal(res.status, 200)
        t.not(res.json().fp, fingerprint(`answers-access-${n}`), 'a new token')
        expected(t, await meta(b) as Meta)
      }
    })
  }
})

t.test('property: any access_token, refresh_token, id_token or scope value is stored as sent or refused with a coded 502, never a 5xx of another kind', async (t) => {
  // Printable ASCII mostly, with controls, DEL, non-ASCII and long values mixed in.
  const value = fc.oneof(
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 0, maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.integer({ min: 8000, max: 9000 }).map((len) => 'v'.repeat(len))
  )
  const field = fc.constantFrom('access_token', 'refresh_token', 'id_token', 'scope')
  let accepted = 0
  let refused = 0
  await fc.assert(fc.asyncProperty(field, value, async (name, v) => {
    const b = env.browser()
    const { callbackUrl } = await b.startLogin()
    oidc.substitute({ patch: (body) => { body[name] = v } })
    const res = await b.request(callbackUrl.href)
    if (res.status === 302) {
      accepted++
      // What was accepted is exactly what the provider sent, and within the rules.
      t.ok(name === 'scope' ? /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(v) : /^[\x20-\x7E]{1,8192}$/.test(v), `${name} accepted only when printable`)
      const used = await b.request('/api/token')
      return used.status === 200 && (name !== 'access_token' || used.json().fp === fingerprint(v))
    }
    refused++
    return res.status === 502 && res.json().code === 'FSS_TOKEN_INVALID' && await meta(b) === null
  }), { numRuns: 40 })
  t.ok(accepted > 0 && refused > 0, `both outcomes seen (${accepted} accepted, ${refused} refused)`)
  env.logs.assertNoSecrets(t, oidc.issued().filter((s) => s.length >= 12))
})
