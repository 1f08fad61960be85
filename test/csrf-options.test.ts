// CSRF options are checked once at start-up, the urlencoded form parser is
// opt-in (never app-wide by default), and small enough to prove correct here.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import csrfProtection from '@fastify/csrf-protection'
import { build, captureLogs } from './helper.ts'
import session from '../plugins/session.ts'
import csrf, { parseFormBody, type CsrfOptions } from '../plugins/csrf.ts'
import sessionSuite from '../index.ts'

const key = randomBytes(32)

async function startWith (t: Test, opts: unknown): Promise<FastifyInstance> {
  const app = await build(t)
  await app.register(session, { key, secure: false })
  await app.register(csrf, opts as CsrfOptions)
  return app
}

async function rejectsOption (t: Test, opts: unknown, option: string): Promise<void> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(session, { key, secure: false })
  app.register(csrf, opts as CsrfOptions)
  const err = await app.ready().then(() => null, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FSS_OPTIONS_INVALID', `${JSON.stringify(Object.keys(opts as object))} is refused`)
  t.match(err?.message, `Invalid option ${option}`)
}

t.test('a wrong option fails start-up with FSS_OPTIONS_INVALID naming it', async (t) => {
  await rejectsOption(t, { sessionKey: '' }, 'csrf.sessionKey')
  await rejectsOption(t, { sessionKey: 'has space' }, 'csrf.sessionKey')
  await rejectsOption(t, { getToken: 'x-csrf-token' }, 'csrf.getToken')
  await rejectsOption(t, { formBody: 'yes' }, 'csrf.formBody')
  await rejectsOption(t, { sesionKey: '_csrf' }, 'csrf')
})

t.test("Fastify's own register options are not mistaken for ours", async (t) => {
  const app = await startWith(t, { logLevel: 'warn' })
  await app.ready()
  t.equal(typeof app.csrfProtection, 'function')
})

t.test('without the session plugin the app does not start', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(csrf)
  const err = await app.ready().then(() => null, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED')
  t.match(err?.message, 'fastify-session-suite/session')
})

t.test('@fastify/csrf-protection registered beside it fails start-up instead of clashing', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(session, { key, secure: false })
  await app.register(csrfProtection, { sessionPlugin: '@fastify/secure-session' })
  app.register(csrf)
  const err = await app.ready().then(() => null, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FSS_OPTIONS_INVALID')
  t.match(err?.message, '@fastify/csrf-protection is already registered')
})

for (const opts of [{}, { formBody: false }]) {
  t.test(`${JSON.stringify(opts)} leaves urlencoded bodies to the app`, async (t) => {
    const app = await startWith(t, opts)
    app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
    app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
    const page = await app.inject({ url: '/form' })
    const cookies = Object.fromEntries(page.cookies.map((c) => [c.name, c.value]))
    const token: string = page.json().token
    const form = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${token}` })
    t.equal(form.statusCode, 415, 'Fastify core has no urlencoded parser')
    const header = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': token } })
    t.equal(header.statusCode, 200, 'the header still works')
  })
}

// A JSON-only route answers a cross-site <form method=post> (urlencoded, no preflight) with 415.
// Turning CSRF on must not take that away from the routes it does not protect.
const crossSiteForm = { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }

t.test('with csrf on, an unprotected JSON route still refuses a form post with 415', async (t) => {
  for (const register of ['plugin', 'root'] as const) {
    const app = await build(t)
    let ran = 0
    if (register === 'plugin') {
      await app.register(session, { key, secure: false })
      await app.register(csrf)
    } else {
      await app.register(sessionSuite, { session: { key, secure: false }, csrf: true })
    }
    app.post('/api/transfer', async () => { ran++; return { done: true } })
    const form = await app.inject({ method: 'POST', url: '/api/transfer', headers: crossSiteForm, payload: 'amount=1000&to=mallory' })
    t.equal(form.statusCode, 415, `${register}: the form post is not parsed`)
    t.equal(form.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', register)
    t.equal(ran, 0, `${register}: the handler never ran`)
    const json = await app.inject({ method: 'POST', url: '/api/transfer', payload: { amount: 1 } })
    t.equal(json.statusCode, 200, `${register}: JSON still works`)
  }
})

t.test('formBody: true opts in to an app-wide urlencoded parser', async (t) => {
  const app = await startWith(t, { formBody: true })
  app.post('/echo', async (request) => request.body)
  const res = await app.inject({ method: 'POST', url: '/echo', headers: crossSiteForm, payload: 'a=1&b=2&b=3' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { a: '1', b: ['2', '3'] })
})

t.test("an app's own urlencoded parser is kept", async (t) => {
  const app = await build(t)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, { own: true, _csrf: new URLSearchParams(body as string).get('_csrf') })
  })
  await app.register(session, { key, secure: false })
  await app.register(csrf, { formBody: true })
  app.post('/echo', async (request) => request.body)
  const res = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' })
  t.same(res.json(), { own: true, _csrf: null })
})

t.test('a token field sent twice, or not as a string, is a missing token', async (t) => {
  const cap = captureLogs()
  const app = await build(t, { logger: { level: 'warn', stream: cap.stream } })
  await app.register(session, { key, secure: false })
  await app.register(csrf, { formBody: true })
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  const page = await app.inject({ url: '/form' })
  const cookies = Object.fromEntries(page.cookies.map((c) => [c.name, c.value]))
  const token: string = page.json().token
  const twice = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${token}&_csrf=${token}` })
  t.equal(twice.statusCode, 403)
  const number = await app.inject({ method: 'POST', url: '/transfer', cookies, payload: { _csrf: 42 } })
  t.equal(number.statusCode, 403)
  t.equal(number.json().code, 'FSS_CSRF_INVALID')
  t.same(cap.lines.map((l) => JSON.parse(l).reason), ['missing-token', 'missing-token'])
  cap.assertNoSecrets(t, [token, ...Object.values(cookies)])
})

t.test('parseFormBody reads what URLSearchParams writes', async (t) => {
  t.same(parseFormBody('a=1&b=2&b=3&b=4&c=%20x+y'), { a: '1', b: ['2', '3', '4'], c: ' x y' })
  t.same(parseFormBody(''), {})
  const hostile = parseFormBody('__proto__=x&constructor=y')
  t.equal(Object.getPrototypeOf(hostile), Object.prototype, 'a __proto__ field does not change the prototype')
  t.equal(Object.getOwnPropertyDescriptor(hostile, '__proto__')?.value, 'x', 'it is an ordinary field')
  t.equal(({} as Record<string, unknown>).constructor, Object, 'nothing global changed')
  // Any Unicode names and values (well-formed: a lone surrogate cannot be sent as UTF-8 at all).
  const text = fc.string({ unit: 'grapheme', maxLength: 12 })
  fc.assert(fc.property(fc.dictionary(text, text, { maxKeys: 20 }), (fields) => {
    const parsed = parseFormBody(new URLSearchParams(Object.entries(fields)).toString())
    return isDeepStrictEqual(Object.entries(parsed), Object.entries(fields))
  }), { numRuns: 300 })
  t.pass('300 random forms round-trip')
})

t.test('a sessionKey the session reserves, or the suite field, is refused at start-up (table)', async (t) => {
  for (const name of ['__proto__', 'constructor', 'prototype', '__ts', '__i', '__c', 'fss']) {
    await rejectsOption(t, { sessionKey: name }, 'csrf.sessionKey')
  }
})

t.test('property: an accepted sessionKey always gives tokens, never a 500 (fast-check)', async (t) => {
  const reserved = fc.constantFrom('__proto__', 'constructor', 'prototype', '__ts', '__i', '__c', 'fss')
  const names = fc.oneof(reserved, fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/))
  let accepted = 0
  await fc.assert(fc.asyncProperty(names, async (sessionKey) => {
    const app = Fastify()
    try {
      await app.register(session, { key, secure: false })
      app.register(csrf, { sessionKey })
      const started = await app.after().then(() => true, (e: { code?: string }) => {
        if (e.code !== 'FSS_OPTIONS_INVALID') throw e
        return false
      })
      if (!started) return true
      app.get('/token', async (_request, reply) => ({ token: reply.generateCsrf() }))
      app.post('/check', { preHandler: app.csrfProtection }, async () => ({ ok: true }))
      accepted++
      const res = await app.inject({ url: '/token' })
      if (res.statusCode !== 200) return false
      const cookie = res.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
      const check = await app.inject({ method: 'POST', url: '/check', headers: { cookie, 'x-csrf-token': res.json().token } })
      return check.statusCode === 200
    } finally {
      await app.close()
    }
  }), { numRuns: 60 })
  t.ok(accepted > 0, `${accepted} accepted names gave working tokens`)
})
