// A real browser, a real hostile page. Two ports on 127.0.0.1 are two origins
// but one *site*, so SameSite=Lax does not hold the session cookie back (as
// with a sibling subdomain): only the CSRF token stands between the hostile
// form and the state change.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chromium, type Browser } from 'playwright-core'
import { programPath } from './fixtures/programs.ts'
import { build, captureLogs } from './helper.ts'
import session from '../plugins/session.ts'
import csrf from '../plugins/csrf.ts'

let browser: Browser
t.before(async () => {
  // Debian's Chromium, never a downloaded one; no sandbox as the tests may run as root.
  browser = await chromium.launch({ executablePath: programPath('chromium'), args: ['--no-sandbox'] })
})
t.teardown(() => browser.close())

t.test('a hostile page on another origin cannot post the form; the page itself can', async (t) => {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'trace', stream: cap.stream } })
  await app.register(session, { key: randomBytes(32), secure: false })
  // The page's own HTML form posts urlencoded to the app's own route: opt in to the form parser.
  await app.register(csrf, { formBody: true })
  const transfers: string[] = []
  const cookieSent: boolean[] = []
  app.get('/page', async (_request, reply) => {
    const token = reply.generateCsrf() // base64url and '-': safe inside an attribute as is
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
    return `<!doctype html><form method="post" action="/transfer">
      <input type="hidden" name="_csrf" value="${token}"><input name="amount" value="5">
      <button type="submit">Send</button></form>`
  })
  app.post('/transfer', {
    onRequest: (request, _reply, done) => { cookieSent.push(request.headers.cookie !== undefined); done() },
    preHandler: app.csrfProtection
  }, async (request) => {
    transfers.push((request.body as { amount: string }).amount)
    return { sent: true }
  })
  const appUrl = await app.listen({ host: '127.0.0.1', port: 0 })

  const evil = await build(t)
  evil.get('/', async (_request, reply) => {
    reply.type('text/html; charset=utf-8')
    return `<!doctype html><form method="post" action="${appUrl}/transfer"><input name="amount" value="1000"></form>
      <script>document.forms[0].submit()</script>`
  })
  const evilUrl = await evil.listen({ host: '127.0.0.1', port: 0 })

  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${appUrl}/page`)
  const token = await page.locator('input[name=_csrf]').getAttribute('value')
  t.match(token, /^[\w-]{20,}$/, 'the page carries a token')

  const attack = page.waitForResponse((res) => res.url() === `${appUrl}/transfer`)
  await page.goto(evilUrl)
  const refused = await attack
  t.equal(refused.status(), 403)
  t.equal((await refused.json()).code, 'FSS_CSRF_INVALID')
  t.same(cookieSent, [true], 'the browser sent the session cookie along with the hostile post')
  t.same(transfers, [], 'nothing happened')

  await page.goto(`${appUrl}/page`)
  const [own] = await Promise.all([
    page.waitForResponse((res) => res.url() === `${appUrl}/transfer`),
    page.click('button[type=submit]')
  ])
  t.equal(own.status(), 200)
  t.same(transfers, ['5'], 'the page\'s own form went through')

  const cookies = await context.cookies(appUrl)
  t.ok(cookies.length > 0)
  cap.assertNoSecrets(t, [token, ...cookies.map((c) => c.value)])
})
