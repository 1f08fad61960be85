// The suite keeps its own session fields under one key, `fss`: a service's
// fields of any name, `oauth` and `tokenRef` included, are the service's.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { build } from './helper.ts'
import session from '../plugins/session.ts'
import oauthTokens from '../plugins/oauth-tokens.ts'
import debug from '../routes/debug.ts'

const token = { access_token: 'at-' + randomBytes(12).toString('hex'), token_type: 'Bearer', expires_in: 3600 }

async function app (t: Parameters<typeof build>[0]) {
  const app = await build(t)
  await app.register(session, { key: randomBytes(32), secure: false })
  await app.register(oauthTokens, {
    provider: { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
    clientId: 'fields',
    clientSecret: '',
    callbackUri: 'http://127.0.0.1:9/callback'
  })
  await app.register(debug)
  // A service with fields of its own under the names the suite's fields once had.
  app.post('/mine', async (request) => {
    request.session.set('oauth' as never, { provider: 'github', login: 'ada' } as never)
    request.session.set('tokenRef' as never, 'order-42' as never)
    return {}
  })
  app.post('/tokens', async (request) => ({ stored: (await request.tokens.store(token)).token_type }))
  app.post('/clear', async (request) => { await request.tokens.clear(); return {} })
  app.get('/read', async (request) => ({
    oauth: request.session.get('oauth' as never) ?? null,
    tokenRef: request.session.get('tokenRef' as never) ?? null,
    token: (await request.tokens.metadata())?.tokenType ?? null
  }))
  await app.ready()
  return app
}

const cookieOf = (res: LightMyRequestResponse, jar: Record<string, string>): Record<string, string> => {
  const set = res.cookies.find((c) => c.name === 'session')
  return set === undefined ? jar : { session: set.value }
}

t.test("a service's own oauth and tokenRef fields never collide with the suite's", async (t) => {
  const fastify = await app(t)
  let jar: Record<string, string> = {}
  jar = cookieOf(await fastify.inject({ method: 'POST', url: '/mine', cookies: jar }), jar)
  // Only the service's fields in this session: read back as the service wrote them, not taken for the suite's.
  t.same((await fastify.inject({ url: '/read', cookies: jar })).json(), { oauth: { provider: 'github', login: 'ada' }, tokenRef: 'order-42', token: null })

  jar = cookieOf(await fastify.inject({ method: 'POST', url: '/tokens', cookies: jar }), jar)
  t.same((await fastify.inject({ url: '/read', cookies: jar })).json(), { oauth: { provider: 'github', login: 'ada' }, tokenRef: 'order-42', token: 'Bearer' }, 'both, side by side')

  jar = cookieOf(await fastify.inject({ method: 'POST', url: '/clear', cookies: jar }), jar)
  t.same((await fastify.inject({ url: '/read', cookies: jar })).json(), { oauth: { provider: 'github', login: 'ada' }, tokenRef: 'order-42', token: null }, 'clearing the tokens leaves the service\'s fields')

  jar = cookieOf(await fastify.inject({ method: 'POST', url: '/api/session/test-persistence', cookies: jar }), jar)
  t.same((await fastify.inject({ url: '/api/session/debug', cookies: jar })).json().session.fields, ['oauth', 'tokenRef', 'fss.persistenceTest'], 'the debug view lists the suite\'s fields by their namespace')
})
