// The soak's fallback app when examples/demo-app.ts cannot start under the
// harness: the suite as a user wires it (root plugin, OAuth against BENCH_ISSUER, login/callback/logout)
// plus an authenticated read. PORT is chosen by the harness, because the
// provider must know the callback URL before the app listens.
import Fastify from 'fastify'
import { createHash } from 'node:crypto'
import { serve, unavailable } from './ipc.ts'
import { portOf } from './port.ts'
import { registerSuite } from './suite-register.ts'

const port = Number(process.env.PORT)
const issuer = process.env.BENCH_ISSUER
if (!Number.isInteger(port) || port <= 0 || issuer === undefined) throw new Error('suite-app needs PORT and BENCH_ISSUER')

await serve(async (counters) => {
  // warn level: a soak sends tampered and oversize cookies on purpose
  const app = Fastify({ logger: { level: 'error' } })
  const registered = await registerSuite(app, { oauth: true, issuer, callbackUri: `http://127.0.0.1:${port}/callback` })
  if (registered !== true) return await unavailable(registered)
  app.get('/', async () => ({ ok: true }))
  app.get('/api/me', async (request, reply) => {
    counters.reads = (counters.reads ?? 0) + 1
    if (await request.tokens.metadata() === null) return reply.code(401).send({ authenticated: false })
    const accessToken = await request.tokens.accessToken()
    // which access token, not the token: the soak counts generations per client
    return { authenticated: true, generation: createHash('sha256').update(accessToken).digest('hex').slice(0, 8) }
  })
  await app.listen({ host: '127.0.0.1', port })
  return portOf(app.server)
})
