// Row 7 peer: @fastify/session with its default memory store, on the same
// authenticated counter route as the suite and express-session.
import Fastify, { type FastifyRequest } from 'fastify'
import cookie from '@fastify/cookie'
import session from '@fastify/session'
import { randomBytes } from 'node:crypto'
import { serve } from './ipc.ts'
import { portOf } from './port.ts'

// In this project `request.session` is typed by @fastify/secure-session (both
// plugins declare it); this server has @fastify/session's object at runtime.
interface PeerSession { get: (key: string) => unknown, set: (key: string, value: unknown) => void }
const sessionOf = (request: FastifyRequest): PeerSession => request.session as unknown as PeerSession

await serve(async () => {
  const app = Fastify({ logger: false })
  await app.register(cookie)
  await app.register(session, { secret: randomBytes(32).toString('hex'), saveUninitialized: false, cookie: { secure: false, path: '/', httpOnly: true, sameSite: 'lax' } })
  app.get('/bench/login', async (request) => {
    sessionOf(request).set('user', 'bench-user')
    sessionOf(request).set('count', 0)
    return { ok: true }
  })
  app.get('/counter', async (request, reply) => {
    const session = sessionOf(request)
    if (session.get('user') === undefined) return reply.code(401).send({ authenticated: false })
    const count = Number(session.get('count') ?? 0) + 1
    session.set('count', count)
    return { count }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return portOf(app.server)
})
