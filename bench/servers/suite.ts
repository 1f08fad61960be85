// The suite's bench server, one process per row; BENCH_MODE picks the row:
//   untouched  (#2, #2c) the suite registered, GET /json never touches the session;
//                    GET /bench/login stores the token set as a plain field (#2c's cookie)
//   tokens     (#4)  GET /me reads the stored token through request.tokens.accessToken()
//   registry   (#4r) the same with the session registry on (memory): every request checks the id
//   chunked    (#5)  the same with a large id_token, so the session spans two cookies
//   rolling    (#6)  the same with rollingInterval = BENCH_ROLLING_INTERVAL seconds
//   counter    (#7a) the authenticated counter route the peers also serve
//   storm      (#8)  GET /me against the real OAuth server at BENCH_ISSUER; tokens stored expired
// GET /bench/login logs the client in (stores the token set, or the counter's user).
// BENCH_SUITE_OPTIONS, a JSON object, is merged into the root plugin's options
// (a row that measures an option: `{ "session": { … } }`).
import Fastify, { type FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import { serve, unavailable } from './ipc.ts'
import { portOf } from './port.ts'
import { tokenSet } from '../lib/tokens.ts'
import { registerSuite } from './suite-register.ts'
import './session-data.ts'

const mode = process.env.BENCH_MODE ?? 'tokens'
const MODES = ['untouched', 'tokens', 'registry', 'chunked', 'rolling', 'counter', 'storm']
if (!MODES.includes(mode)) throw new Error(`BENCH_MODE must be one of ${MODES.join(', ')}`)
const needsTokens = !['untouched', 'counter'].includes(mode)
// 2.5 KB of id_token claims: the session no longer fits one 4 KB cookie
const idTokenPadding = mode === 'chunked' ? 2500 : 0

function tokenRoutes (app: FastifyInstance): void {
  app.get<{ Querystring: { expired?: string } }>('/bench/login', async (request) => {
    const expired = request.query.expired === '1'
    const tokens = tokenSet({ idTokenPadding, refreshToken: expired ? `bench-${randomBytes(16).toString('hex')}` : undefined })
    // an expired token (#8): every reader must refresh, all at once
    await request.tokens.store(expired ? { ...tokens, expires_in: undefined, expires_at: Math.floor(Date.now() / 1000) - 10 } : tokens)
    if (mode === 'registry') await app.sessions.registerLogin(request, { sub: 'bench-user', provider: 'bench' })
    return { ok: true }
  })
  app.get('/me', async (request) => {
    const accessToken = await request.tokens.accessToken()
    return { authenticated: true, length: accessToken.length }
  })
}

function untouchedRoutes (app: FastifyInstance): void {
  // the 1.7 KB cookie of a logged-in browser, without the OAuth plugin (#2 has none)
  app.get('/bench/login', async (request) => {
    const tokens = tokenSet()
    request.session.set('benchTokens', { ...tokens, expires_at: Math.floor(Date.now() / 1000) + tokens.expires_in })
    return { ok: true }
  })
}

function counterRoutes (app: FastifyInstance): void {
  app.get('/bench/login', async (request) => {
    request.session.set('benchUser', 'bench-user')
    request.session.set('benchCount', 0)
    return { ok: true }
  })
  app.get('/counter', async (request, reply) => {
    if (request.session.get('benchUser') === undefined) return reply.code(401).send({ authenticated: false })
    const count = (request.session.get('benchCount') ?? 0) + 1
    request.session.set('benchCount', count)
    return { count }
  })
}

await serve(async () => {
  const app = Fastify({ logger: false })
  const registered = await registerSuite(app, {
    oauth: needsTokens,
    issuer: mode === 'storm' ? process.env.BENCH_ISSUER : undefined,
    rollingInterval: mode === 'rolling' ? Number(process.env.BENCH_ROLLING_INTERVAL ?? 2) : undefined,
    options: process.env.BENCH_SUITE_OPTIONS === undefined ? undefined : JSON.parse(process.env.BENCH_SUITE_OPTIONS) as Record<string, unknown>
  })
  if (registered !== true) return await unavailable(registered)
  app.get('/json', async () => ({ hello: 'world' }))
  if (mode === 'untouched') untouchedRoutes(app)
  if (needsTokens) tokenRoutes(app)
  if (mode === 'counter') counterRoutes(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return portOf(app.server)
})
