// Row 1, the ceiling: bare Fastify answering a small JSON object.
import Fastify from 'fastify'
import { serve } from './ipc.ts'
import { portOf } from './port.ts'

await serve(async () => {
  const app = Fastify({ logger: false })
  app.get('/json', async () => ({ hello: 'world' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return portOf(app.server)
})
