// Session control with several login providers: a subject is unique only at
// its own provider, so two providers that know two different people by the
// same `sub` must not share a session list. Two real OpenID Connect providers
// (oauth2-mock-server) on loopback, the suite registered with its root plugin.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { listeningApp, HttpBrowser } from './fixtures/oauth-app.ts'
import { captureLogs } from './helper.ts'
import sessionSuite from '../index.ts'

const SAME_SUB = 'user-42'
let main: OidcServer
let api: OidcServer
t.before(async () => {
  [main, api] = await Promise.all([startOidcServer(), startOidcServer()])
  for (const server of [main, api]) server.service.on('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => { token.payload.sub = SAME_SUB })
})
t.teardown(async () => { await Promise.all([main.stop(), api.stop()]) })

t.test("a login at another provider with the same sub neither lists nor ends the default provider's user's sessions", async (t) => {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    secret: { env: { SESSION_SECRET_KEY: randomBytes(32).toString('hex') } },
    oauth: {
      providers: {
        main: { provider: { issuer: main.issuer }, clientId: 'suite-client', clientSecret: 'main-secret', scope: ['openid'] },
        api: { provider: { issuer: api.issuer }, clientId: 'api-client', clientSecret: 'api-secret', scope: ['openid'] }
      },
      callbackUri: `${origin}/callback`,
      timeout: 2000
    },
    sessions: { store: 'memory' }
  })
  await app.ready()
  const alice = new HttpBrowser(origin)
  await alice.login('/login')
  const mallory = new HttpBrowser(origin)
  await mallory.login('/login/api')

  const own = (await alice.request('/api/sessions')).json().sessions as Array<{ id: string, current: boolean }>
  t.equal(own.length, 1, "the default provider's user lists one session")
  const theirs = (await mallory.request('/api/sessions')).json().sessions as Array<{ id: string, current: boolean }>
  t.equal(theirs.length, 1, "the other provider's user with the same sub lists only their own")
  t.not(theirs[0]?.id, own[0]?.id)

  const probe = await mallory.request(`/api/sessions/${own[0]?.id as string}`, { method: 'DELETE' })
  t.equal(probe.status, 404, "and cannot end the other user's session")
  t.equal((await mallory.request('/api/sessions/revoke-others', { method: 'POST' })).json().revoked, 0, 'revoke-others ends nobody else')
  t.equal((await alice.request('/api/sessions')).json().sessions.length, 1, "the default provider's user is still logged in")
  t.same(await app.sessions.list(SAME_SUB).then((r) => r.map((s) => s.provider)), ['main'])
  t.same(await app.sessions.list(`api:${SAME_SUB}`).then((r) => r.map((s) => s.provider)), ['api'])
})
