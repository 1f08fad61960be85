// The demo's development identity provider: oauth2-mock-server on loopback.
// It signs real RS256 tokens and runs the real authorization-code + PKCE
// exchange, but it asks nobody for a password: /authorize redirects straight
// back with a code, so the whole login works with no account anywhere.
import { OAuth2Server, type MutableResponse, type MutableToken } from 'oauth2-mock-server'

export interface DevProvider {
  issuer: string
  stop: () => Promise<void>
}

/** Starts on 127.0.0.1:`port` (0 picks one). Every login is `user`. */
export async function startDevProvider (port: number, user: { sub: string, name: string }): Promise<DevProvider> {
  const server = new OAuth2Server()
  await server.issuer.keys.generate('RS256')
  // The library answers every code grant with scope "dummy": name what the demo asks for.
  const scope = 'openid profile'
  server.service.on('beforeTokenSigning', (token: MutableToken) => {
    token.payload.sub = user.sub
    token.payload.name = user.name
    token.payload.scope = scope
  })
  server.service.on('beforeResponse', (response: MutableResponse) => {
    if (typeof response.body === 'object' && 'scope' in response.body) response.body.scope = scope
  })
  server.service.on('beforeUserinfo', (response: MutableResponse) => {
    response.body = { sub: user.sub, name: user.name }
  })
  await server.start(port, '127.0.0.1')
  // The library names the issuer `localhost`, which may resolve to ::1 where nothing listens.
  const issuer = `http://127.0.0.1:${server.address().port}`
  server.issuer.url = issuer
  return {
    issuer,
    stop: async () => { if (server.listening) await server.stop() }
  }
}
