// A query string a client adds to any of the suite's own routes never reaches
// the log: a form built like some frameworks build them puts the CSRF token in
// the action URL (`/logout?_csrf=…`), and a confused client may put a token or
// a code anywhere. The token is refused there, but the request line is logged
// for every request, refused or not. Table over every state-changing route and
// the OAuth GET routes, with the real provider and the memory registry.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import sessionSuite from '../index.ts'
import { captureLogs } from './helper.ts'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { HttpBrowser, listeningApp } from './fixtures/oauth-app.ts'
import { CLIENT_ID } from './oidc-helper.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

t.test('the suite\'s routes log their path without the query string (table)', async (t) => {
  const logs = captureLogs()
  const { app, origin } = await listeningApp(t, logs)
  await app.register(sessionSuite, {
    session: { key: randomBytes(32) },
    csrf: true,
    oauth: {
      providers: { main: { provider: { issuer: oidc.issuer }, clientId: CLIENT_ID, clientSecret: 'main-secret' } },
      scope: ['openid'],
      callbackUri: `${origin}/callback`,
      timeout: 2000
    },
    sessions: { store: 'memory' }
  })
  app.get('/test/csrf', async (_request, reply) => ({ token: reply.generateCsrf() }))
  await app.ready()
  const browser = new HttpBrowser(origin)
  const { callback } = await browser.login('/login/main')
  t.equal(callback.status, 302, 'logged in')
  const token = (await browser.request('/test/csrf')).json().token as string
  const { sessions } = (await browser.request('/api/sessions')).json()
  const id = sessions[0].id as string

  const routes: Array<[string, string]> = [
    ['POST', '/logout'],
    ['POST', '/disconnect/main'],
    ['POST', '/disconnect/unknown'],
    ['DELETE', `/api/sessions/${id.slice(0, -1)}A`],
    ['POST', '/api/sessions/revoke-others'],
    ['GET', '/api/sessions'],
    ['POST', '/backchannel-logout'],
    ['GET', '/login/main'],
    ['GET', '/callback/main'],
    ['GET', '/callback/unknown']
  ]
  for (const [method, path] of routes) {
    // A marker of its own per route, so a hit names the route that logged it.
    const marker = `q${randomBytes(12).toString('hex')}`
    const res = await browser.request(`${path}?_csrf=${token}&x=${marker}`, { method })
    t.ok(res.status < 500, `${method} ${path} answered ${res.status}`)
    t.notOk(logs.lines.some((l) => l.includes(marker)), `${method} ${path}: the query is not logged`)
  }
  t.notOk(logs.lines.some((l) => l.includes(token)), 'the CSRF token is in no log line')
  t.ok(logs.lines.some((l) => l.includes('"url":"/logout"')), 'the path itself is logged')
})
