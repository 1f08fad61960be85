// Redirect options go verbatim into a Location header: anything that cannot
// (or would not stay on this site) is refused at start-up, and anything
// accepted redirects.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { validateHeaderValue } from 'node:http'
import { join } from 'node:path'
import sessionSuite, { type SessionSuiteOptions } from '../index.ts'
import { OAuthOptionsSchema, LocalRedirectPath } from '../lib/oauth/options.ts'
import { OAuthRoutesOptionsSchema } from '../routes/oauth.ts'
import { validateOptions } from '../lib/options.ts'
import { build, tempDir } from './helper.ts'

async function suite (t: Test, oauth: Partial<NonNullable<SessionSuiteOptions['oauth']>>) {
  const app = await build(t)
  await app.register(sessionSuite, {
    secret: { keyFile: join(await tempDir(t), 'secret.key'), env: {} },
    // Explicit endpoints: nothing is contacted at start-up or logout.
    oauth: { provider: { authorizeUrl: 'https://idp.example/authorize', tokenUrl: 'https://idp.example/token' }, clientId: 'c', clientSecret: 's', callbackUri: 'https://app.example/callback', ...oauth }
  })
  await app.ready()
  return app
}

const NOT_IN_A_LOCATION = ['/bye/✓', '/Ünïcödé', '/a\u0100', '/tab\there', '/nul\u0000', '/line\nbreak', '/cr\r', '/space here', '/del\u007f', '/é']
const OFF_SITE = ['//evil.example', '/\\evil.example', 'https://evil.example', 'evil', '', '/\\/evil']

t.test('a redirectAfterLogout a Location header cannot carry is refused at start-up', async (t) => {
  for (const value of [...NOT_IN_A_LOCATION, ...OFF_SITE]) {
    await t.rejects(suite(t, { redirectAfterLogout: value }), { code: 'FSS_OPTIONS_INVALID', message: /oauth\.redirectAfterLogout/ }, JSON.stringify(value))
    await t.rejects(suite(t, { redirectAfterLogin: value }), { code: 'FSS_OPTIONS_INVALID', message: /oauth\.redirectAfterLogin/ }, JSON.stringify(value))
  }
})

t.test('an accepted redirectAfterLogout is where an HTML logout lands', async (t) => {
  for (const target of ['/', '/bye', '/bye?lang=%C3%BC&x=<y>', '/a/b#done', '/%E2%9C%93']) {
    const app = await suite(t, { redirectAfterLogout: target })
    const res = await app.inject({ method: 'POST', url: '/logout', headers: { accept: 'text/html' } })
    t.equal(res.statusCode, 303, target)
    t.equal(res.headers.location, target)
  }
})

t.test('property: a redirect option is accepted only if it is a header-safe local path (fast-check)', async (t) => {
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 20 }).map((s) => '/' + s),
    fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
    fc.string({ unit: fc.constantFrom('/', '\\', 'a', '.', '%', ':', '?', '#', ' ', '\t', 'é', '✓'), maxLength: 10 })
  )
  const base = 'https://app.example/'
  const accepts = (schema: Parameters<typeof validateOptions>[0], options: unknown): boolean => {
    try {
      validateOptions(schema, options, 'oauth')
      return true
    } catch (err) {
      if ((err as { code?: string }).code !== 'FSS_OPTIONS_INVALID') throw err
      return false
    }
  }
  fc.assert(fc.property(text, (value) => {
    const accepted = accepts(OAuthRoutesOptionsSchema, { redirectAfterLogout: value })
    const login = accepts(OAuthOptionsSchema, {
      provider: { authorizeUrl: 'https://i/a', tokenUrl: 'https://i/t' }, clientId: 'c', clientSecret: '', callbackUri: base, redirectAfterLogin: value
    })
    if (login !== accepted) return false
    if (!accepted) return true
    validateHeaderValue('location', value)
    return /^[\x21-\x7e]+$/.test(value) && new URL(value, base).origin === new URL(base).origin
  }), { numRuns: 2000 })
  t.equal(LocalRedirectPath('').maxLength, 2048)
})
