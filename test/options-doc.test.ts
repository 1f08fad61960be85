// docs/options.md is generated from the options schemas; this fails while it
// is stale, and holds every schema to the rules the reference relies on: each
// option described, each duration naming its unit, each default the one the
// code applies.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { Kind } from '@sinclair/typebox'
import { build } from './helper.ts'
import { renderOptionsReference, optionRows, SECTIONS } from '../scripts/options-reference.ts'
import { SessionSuiteOptionsSchema, session, oauthTokens } from '../index.ts'
import { SessionOptionsSchema } from '../lib/session/policy.ts'
import { OAuthOptionsSchema } from '../lib/oauth/options.ts'

const DOC = new URL('../docs/options.md', import.meta.url)

t.test('docs/options.md is what the schemas say (else: npm run docs:options)', async (t) => {
  t.equal(await readFile(DOC, 'utf8'), renderOptionsReference(), 'docs/options.md is stale: run `npm run docs:options` and commit it')
})

t.test('every option is described, and every duration names its unit', async (t) => {
  const rows = [...optionRows('', [SessionSuiteOptionsSchema]), ...SECTIONS.flatMap((s) => optionRows(s.name, s.schemas))]
  t.ok(rows.length > 60, `${rows.length} options`)
  t.same(rows.filter((r) => typeof r.schema.description !== 'string' || r.schema.description.length < 10).map((r) => r.path), [], 'all described')
  // Every integer option is a duration, but for these counts: it says which unit it counts in.
  const counts = new Set(['sessions.maxSessions', 'sessions.viewSize'])
  const durations = rows.filter((r) => r.schema[Kind] === 'Integer' && !counts.has(r.path))
  t.ok(durations.length >= 15, `${durations.length} durations`)
  t.same(durations.filter((r) => !/^(Seconds|Milliseconds) /.test(r.schema.description as string)).map((r) => r.path), [], 'each says Seconds or Milliseconds')
})

t.test('the defaults the reference shows are the ones the plugins apply', async (t) => {
  const app = await build(t)
  await app.register(session, { key: randomBytes(32) })
  await app.register(oauthTokens, { provider: { authorizeUrl: 'http://127.0.0.1:9/a', tokenUrl: 'http://127.0.0.1:9/t' }, clientId: 'x', clientSecret: '', callbackUri: 'http://127.0.0.1:9/cb' })
  await app.ready()
  const applied = { ...app.sessionInfo.policy, ...app.oauthInfo.policy }
  for (const schema of [SessionOptionsSchema, OAuthOptionsSchema]) {
    for (const [name, property] of Object.entries(schema.properties)) {
      if ((property as { default?: unknown }).default === undefined || !(name in applied)) continue
      t.same(applied[name as keyof typeof applied], (property as { default?: unknown }).default, name)
    }
  }
  t.same(app.oauthFlow.paths, { login: OAuthOptionsSchema.properties.loginPath.default, callback: OAuthOptionsSchema.properties.callbackPath.default, logout: OAuthOptionsSchema.properties.logoutPath.default, afterLogin: OAuthOptionsSchema.properties.redirectAfterLogin.default })
})
