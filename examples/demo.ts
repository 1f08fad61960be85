// Placeholder example service until the demo (issue 5) lands.
import Fastify from 'fastify'
import sessionSuite from '../index.ts'

const app = Fastify({ logger: true })
await app.register(sessionSuite, { appName: 'fastify-session-suite-demo' })
app.get('/', async () => ({ hello: 'fastify-session-suite', key: app.secretKeys.fingerprint }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
