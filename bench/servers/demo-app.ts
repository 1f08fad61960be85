// The soak's app: examples/demo-app.ts's buildDemoApp (the suite in one
// register call, the page, the OAuth routes) against the harness's provider,
// plus one bench read route that calls request.tokens.accessToken() on every
// request, since the demo page stops doing so once it knows the user.
// PORT comes from the harness: the callback URL must name it before listen.
import { mkdtemp } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { serve, unavailable } from './ipc.ts'
import { portOf } from './port.ts'

const port = Number(process.env.PORT)
const issuer = process.env.BENCH_ISSUER
if (!Number.isInteger(port) || port <= 0 || issuer === undefined) throw new Error('demo-app needs PORT and BENCH_ISSUER')

type BuildDemoApp = (opts: { origin: string, keyFile: string, oauth: Record<string, unknown>, userinfoUrl?: string, logger?: unknown }) => Promise<FastifyInstance>
const demo = await import('../../examples/demo-app.ts').catch((err: Error) => err) as { buildDemoApp?: BuildDemoApp } | Error
if (demo instanceof Error || typeof demo.buildDemoApp !== 'function') await unavailable('examples/demo-app.ts has no buildDemoApp')
const buildDemoApp = (demo as { buildDemoApp: BuildDemoApp }).buildDemoApp

const dir = await mkdtemp(join(tmpdir(), 'fss-soak-'))
// exit handlers run synchronously: the key file's folder goes with the process
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

await serve(async (counters) => {
  const app = await buildDemoApp({
    origin: `http://127.0.0.1:${port}`,
    keyFile: join(dir, 'secret.key'),
    oauth: { provider: { issuer }, clientId: 'fss-soak', clientSecret: 'fss-soak-secret', scope: ['openid', 'profile'] },
    userinfoUrl: `${issuer}/userinfo`,
    // error level: the soak sends tampered and oversize cookies on purpose
    logger: { level: 'error' }
  })
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
