// A service that registers @fastify/swagger gets the suite's routes in its
// OpenAPI document: tags, summaries, response schemas, a cookie security
// scheme on the routes that read the session, and no debug routes unless it
// asks. The document is checked against the OpenAPI 3 schema by
// @readme/openapi-parser, and the demo serves it at /docs.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import { validate } from '@readme/openapi-parser'
import sessionSuite, { debug, type SessionSuiteOptions } from '../index.ts'
import { SESSION_COOKIE_SCHEME, sessionCookieConfig } from '../routes/openapi.ts'
import { buildDemoApp } from '../examples/demo-app.ts'
import { tempDir } from './helper.ts'

type Operation = { summary?: string, tags?: string[], security?: Array<Record<string, string[]>>, responses: Record<string, { content?: unknown }> }
type Document = {
  openapi?: string
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes?: Record<string, unknown> }
}

const secret = { env: { SESSION_SECRET_KEY: randomBytes(32).toString('hex') } }
// Explicit endpoints: nothing is fetched at registration.
const oauth = {
  provider: { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
  clientId: 'openapi-test',
  clientSecret: '',
  callbackUri: 'http://127.0.0.1:9/callback'
}

async function documentOf (t: Test, suite: SessionSuiteOptions, openapi: Record<string, unknown> = {}): Promise<Document> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 'service', version: '1.0.0' }, ...openapi } })
  await app.register(sessionSuite, { secret, ...suite })
  await app.ready()
  return app.swagger() as unknown as Document
}

async function assertValid (t: Test, document: Document): Promise<void> {
  // The validator dereferences in place: give it a copy.
  const result = await validate(structuredClone(document) as never)
  t.same(result.valid ? [] : result.errors, [], 'no errors against the OpenAPI 3 schema')
  t.same({ valid: result.valid, specification: result.specification, warnings: result.warnings }, { valid: true, specification: 'OpenAPI', warnings: [] })
}

const operations = (document: Document): Array<[string, Operation]> =>
  Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]))

t.test('the suite\'s routes are in a service\'s document, tagged and summarised, debug routes left out', async (t) => {
  const document = await documentOf(t, { oauth, csrf: true, debug: true })
  await assertValid(t, document)
  const ops = Object.fromEntries(operations(document))
  t.same(Object.keys(ops).sort(), ['GET /callback', 'GET /callback/{provider}', 'GET /health', 'GET /login', 'GET /login/{provider}', 'POST /disconnect/{provider}', 'POST /logout'], 'debug routes are hidden by default')
  t.same(ops['GET /health'].tags, ['health'])
  t.same(ops['GET /login'].tags, ['oauth'])
  t.same(ops['GET /callback'].tags, ['oauth'])
  t.same(ops['POST /logout'].tags, ['oauth', 'session'])
  for (const [name, op] of Object.entries(ops)) t.match(op.summary, /\S/, `${name} has a summary`)
  t.ok(ops['GET /health'].responses['200'].content, 'response schemas are documented')
  t.ok(ops['GET /health'].responses['503'].content)
  t.ok(ops['POST /logout'].responses['403'].content, 'the CSRF refusal is documented')
  t.ok(ops['POST /disconnect/{provider}'].responses['403'].content, 'for disconnect too')
  t.same(ops['POST /disconnect/{provider}'].security, [{ [SESSION_COOKIE_SCHEME]: [] }], 'disconnect reads the session')

  t.same(document.components.securitySchemes, {
    [SESSION_COOKIE_SCHEME]: { type: 'apiKey', in: 'cookie', name: '__Host-session', description: 'The encrypted session cookie (split into __Host-session.0, __Host-session.1, … when it is large)' }
  }, 'a cookie security scheme for the session')
  t.same(ops['POST /logout'].security, [{ [SESSION_COOKIE_SCHEME]: [] }], 'logout reads the session')
  t.notOk(ops['GET /health'].security, '/health never opens the session')
  t.notOk(ops['GET /login'].security)
})

t.test('debug: { openapi: true } lists the debug routes, with the session cookie on each', async (t) => {
  const document = await documentOf(t, { session: { secure: false }, debug: { openapi: true } })
  await assertValid(t, document)
  const ops = Object.fromEntries(operations(document))
  t.same(Object.keys(ops).sort(), [
    'GET /api/oauth/test-flow', 'GET /api/session/debug', 'GET /api/session/test-persistence', 'GET /health', 'POST /api/session/test-persistence'
  ], 'sessions only: no OAuth routes, the debug routes listed')
  t.same(ops['GET /api/session/debug'].tags, ['session', 'debug'])
  t.same(ops['GET /api/oauth/test-flow'].tags, ['oauth', 'debug'])
  for (const name of Object.keys(ops).filter((n) => n.includes('/api/'))) {
    t.same(ops[name].security, [{ [SESSION_COOKIE_SCHEME]: [] }], `${name} reads the session`)
  }
  t.match(document.components.securitySchemes?.[SESSION_COOKIE_SCHEME], { in: 'cookie', name: 'session' }, 'the scheme names the cookie the policy chose')
})

t.test('a scheme the service already declared under that name is kept', async (t) => {
  const own = { type: 'apiKey', in: 'cookie', name: 'custom', description: 'the service\'s own words' }
  const document = await documentOf(t, { oauth }, { components: { securitySchemes: { [SESSION_COOKIE_SCHEME]: own } } })
  await assertValid(t, document)
  t.same(document.components.securitySchemes, { [SESSION_COOKIE_SCHEME]: own })
})

t.test('debug routes without the session plugin, and a Swagger 2 document: no security scheme is claimed', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { swagger: { info: { title: 'service', version: '1.0.0' } } })
  await app.register(debug, { openapi: true })
  await app.ready()
  const document = app.swagger() as unknown as { paths: Record<string, Record<string, { security?: unknown }>> }
  t.ok(document.paths['/api/session/debug'].get, 'listed')
  t.notOk(document.paths['/api/session/debug'].get.security)

  // With the session, a Swagger 2 document (which has no cookie scheme) still builds, without one.
  const two = Fastify()
  t.teardown(() => two.close())
  await two.register(swagger, { swagger: { info: { title: 'service', version: '1.0.0' } } })
  await two.register(sessionSuite, { secret, oauth })
  await two.ready()
  const v2 = two.swagger() as unknown as { paths: Record<string, Record<string, { security?: unknown }>>, securityDefinitions?: unknown }
  t.ok(v2.paths['/logout'].post)
  t.notOk(v2.paths['/logout'].post.security)
  t.notOk(v2.securityDefinitions)

  // A document without components yet gets them.
  const config = sessionCookieConfig(two)
  const bare: Record<string, unknown> = {}
  config.swaggerTransform?.({ schema: {}, url: '/x', openapiObject: bare })
  t.match(bare, { components: { securitySchemes: { [SESSION_COOKIE_SCHEME]: { in: 'cookie' } } } })
})

t.test('the demo serves the document at /docs for a person to read', async (t) => {
  const dir = await tempDir(t)
  const app: FastifyInstance = await buildDemoApp({
    origin: 'http://127.0.0.1:3000',
    keyFile: `${dir}/secret.key`,
    oauth: { provider: oauth.provider, clientId: 'demo', clientSecret: '' },
    logger: false
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const page = await fetch(`${origin}/docs`, { redirect: 'follow' })
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /text\/html/)
  t.match(await page.text(), /swagger-ui/i, 'the Swagger UI page')

  const res = await fetch(`${origin}/docs/json`)
  t.equal(res.status, 200)
  const document = await res.json() as Document
  await assertValid(t, document)
  t.equal(document.openapi?.startsWith('3.'), true)
  const paths = Object.keys(document.paths)
  for (const path of ['/health', '/login', '/callback', '/logout', '/api/session/debug', '/api/oauth/test-flow']) t.ok(paths.includes(path), `${path} is listed`)
  t.notOk(paths.some((p) => p.startsWith('/docs')), 'the docs routes do not list themselves')
})
