// With a real token in the session (a real login against a real provider),
// no route of the suite answers with the token, the key or the cookie value,
// and no log line carries them.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance, HTTPMethods, LightMyRequestResponse } from 'fastify'
import sessionSuite, { getSecretKeyBytes } from '../index.ts'
import { build, captureLogs, secretForms, tempDir } from './helper.ts'
import { startOidcServer } from './fixtures/oidc-server.ts'

type Jar = Map<string, string>

function keep (jar: Jar, res: LightMyRequestResponse): void {
  for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
    if (c.value === '' || c.maxAge === 0) jar.delete(c.name)
    else jar.set(c.name, c.value)
  }
}

/** The authorization-code walk a browser does, with the provider reached over real HTTP. */
async function login (app: FastifyInstance, jar: Jar): Promise<void> {
  const start = await app.inject('/login')
  keep(jar, start)
  const back = await fetch(start.headers.location as string, { redirect: 'manual' })
  const callback = new URL(back.headers.get('location') as string)
  const done = await app.inject({ url: callback.pathname + callback.search, cookies: Object.fromEntries(jar) })
  if (done.statusCode !== 302) throw new Error(`callback answered ${done.statusCode}: ${done.body}`)
  keep(jar, done)
}

t.test('no response of any route contains the token, the key or the cookie value', async (t) => {
  const oidc = await startOidcServer()
  t.teardown(() => oidc.stop())
  const tokens: string[] = []
  oidc.service.on('beforeResponse', (response: { body: unknown }) => {
    const body = response.body as Record<string, unknown>
    for (const f of ['access_token', 'refresh_token', 'id_token']) if (typeof body[f] === 'string') tokens.push(body[f] as string)
  })

  const dir = await tempDir(t)
  const keyFile = join(dir, 'secret.key')
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  const routes: Array<{ method: HTTPMethods, url: string }> = []
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url })
  })
  await app.register(sessionSuite, {
    secret: { keyFile, env: {} },
    oauth: { provider: { issuer: oidc.issuer }, clientId: 'leak-test', clientSecret: 'client-secret-value-1234', callbackUri: 'http://127.0.0.1/callback' },
    debug: true
  })
  await app.ready()

  const jar: Jar = new Map()
  await login(app, jar)
  const cookie = jar.get('__Host-session')
  t.ok(cookie, 'logged in: a session cookie')
  t.ok(tokens.length >= 2, 'the provider issued tokens')
  const flow = await app.inject({ url: '/api/oauth/test-flow', cookies: { '__Host-session': cookie! } })
  t.match(flow.json(), { configured: true, provider: oidc.issuer, tokenPresent: true, expired: false, refreshTokenPresent: true })
  t.ok(flow.json().fieldsPresent.includes('id_token'))

  const key = getSecretKeyBytes(app)![0]
  const keyText = (await readFile(keyFile, 'utf8')).trim()
  const secrets = [...tokens, key, keyText, cookie!, 'client-secret-value-1234']
  const forms = secrets.flatMap(secretForms)

  t.ok(routes.length >= 8, `${routes.length} routes to check`)
  for (const { method, url } of routes) {
    // Every route, with the logged-in cookie; logout last, since it ends the session.
    if (url === '/logout') continue
    const res = await app.inject({ method, url, cookies: { '__Host-session': cookie! } })
    const { 'set-cookie': _fresh, ...headers } = res.headers
    const text = res.body + JSON.stringify(headers)
    t.notOk(forms.some((f) => text.includes(f)), `${method} ${url} (${res.statusCode}) shows no secret`)
    t.notOk(String(res.headers['set-cookie'] ?? '').includes(cookie!), `${method} ${url} does not echo the cookie`)
  }
  const out = await app.inject({ method: 'POST', url: '/logout', cookies: { '__Host-session': cookie! } })
  t.match(out.json(), { loggedOut: true, revoked: false, endSession: { url: /\/endsession\?client_id=/ } })
  t.notMatch(out.json().endSession.url, /id_token_hint/, 'the JSON answer carries no id_token hint')
  t.notOk(forms.some((f) => (out.body + JSON.stringify(out.headers)).includes(f)), 'POST /logout shows no secret')
  cap.assertNoSecrets(t, secrets)
})
