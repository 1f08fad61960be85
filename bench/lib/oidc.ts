// The real OAuth/OIDC provider the storm and the soak run against: an
// oauth2-mock-server on 127.0.0.1 that counts its token-endpoint calls per
// grant and per distinct refresh token (the figure issue 6 targets at 1).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { OAuth2Server, type OAuth2Service } from 'oauth2-mock-server'

interface MockProvider { issuer: string, service: OAuth2Service, stop: () => Promise<void> }

/** The tests' provider fixture when the checkout has it (one provider for tests and bench), else the library's server. */
async function startMock (): Promise<MockProvider> {
  const fixture = fileURLToPath(new URL('../../test/fixtures/oidc-server.ts', import.meta.url))
  if (existsSync(fixture)) {
    const mod = await import(fixture) as { startOidcServer?: () => Promise<MockProvider> }
    if (typeof mod.startOidcServer === 'function') {
      const started = await mod.startOidcServer()
      return { issuer: started.issuer, service: started.service, stop: () => started.stop() }
    }
  }
  const server = new OAuth2Server()
  await server.issuer.keys.generate('RS256')
  await server.start(0, '127.0.0.1')
  // the library names the issuer `localhost`, which may resolve to ::1
  const issuer = `http://127.0.0.1:${server.address().port}`
  server.issuer.url = issuer
  return { issuer, service: server.service, stop: () => server.stop() }
}

export interface OidcProvider {
  issuer: string
  /** refresh_token grants seen, by refresh token value (kept in this process only) */
  refreshCalls: Map<string, number>
  /** token-endpoint calls by grant type */
  grants: Record<string, number>
  /** lifetime, in seconds, of the access tokens it issues from now on */
  setTokenLifetime: (seconds: number) => void
  stop: () => Promise<void>
}

export async function startOidcProvider (): Promise<OidcProvider> {
  const { issuer, service, stop } = await startMock()
  const refreshCalls = new Map<string, number>()
  const grants: Record<string, number> = {}
  let lifetime: number | undefined
  service.on('beforeResponse', (response: { body: unknown }, req: { body?: Record<string, unknown> }) => {
    const grant = String(req.body?.grant_type ?? 'unknown')
    grants[grant] = (grants[grant] ?? 0) + 1
    if (grant === 'refresh_token') {
      const token = String(req.body?.refresh_token)
      refreshCalls.set(token, (refreshCalls.get(token) ?? 0) + 1)
    }
    if (lifetime !== undefined && typeof response.body === 'object' && response.body !== null) {
      (response.body as Record<string, unknown>).expires_in = lifetime
    }
  })
  return {
    issuer,
    refreshCalls,
    grants,
    setTokenLifetime (seconds) { lifetime = seconds },
    stop
  }
}
