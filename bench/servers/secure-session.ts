// Row 3: raw @fastify/secure-session, the layer the suite builds on, reading a
// session that carries a realistic token set (about 1.7 KB of cookie).
// Row 7d: the same library on the counter route, as the reference for #7a.
import Fastify from 'fastify'
import secureSession from '@fastify/secure-session'
import { randomBytes } from 'node:crypto'
import { serve } from './ipc.ts'
import { tokenSet } from '../lib/tokens.ts'
import { portOf } from './port.ts'
import './session-data.ts'

await serve(async () => {
  const app = Fastify({ logger: false })
  await app.register(secureSession, { key: randomBytes(32), cookie: { path: '/', httpOnly: true, sameSite: 'lax' } })
  app.get('/bench/login', async (request) => {
    const tokens = tokenSet()
    request.session.set('benchTokens', { ...tokens, expires_at: Date.now() + tokens.expires_in * 1000 })
    return { ok: true }
  })
  app.get('/me', async (request, reply) => {
    const tokens = request.session.get('benchTokens')
    if (tokens === undefined || tokens.expires_at <= Date.now()) return reply.code(401).send({ authenticated: false })
    return { authenticated: true, expiresAt: tokens.expires_at }
  })
  app.get('/bench/login-user', async (request) => {
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
  await app.listen({ host: '127.0.0.1', port: 0 })
  return portOf(app.server)
})
