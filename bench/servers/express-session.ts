// Row 7 peer: express 5 + express-session (memory store), same counter route.
import express from 'express'
import session from 'express-session'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { serve } from './ipc.ts'
import { portOf } from './port.ts'

declare module 'express-session' {
  interface SessionData { user: string, count: number }
}

await serve(async () => {
  const app = express()
  app.set('etag', false)
  app.use(session({ secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { secure: false, path: '/', httpOnly: true, sameSite: 'lax' } }))
  app.get('/bench/login', (req, res) => {
    req.session.user = 'bench-user'
    req.session.count = 0
    res.json({ ok: true })
  })
  app.get('/counter', (req, res) => {
    if (req.session.user === undefined) {
      res.status(401).json({ authenticated: false })
      return
    }
    req.session.count = (req.session.count ?? 0) + 1
    res.json({ count: req.session.count })
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return portOf(server)
})
