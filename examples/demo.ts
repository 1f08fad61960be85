// `npm start`: the demo service on http://127.0.0.1:3000 with a development
// identity provider on 127.0.0.1:3001, so the whole login works with no
// account anywhere. Environment (all optional):
//   PORT                  demo port (default 3000; 0 picks a free one)
//   FSS_DEMO_DIR          folder of the key file (default ./.fss-demo)
//   FSS_DEMO_KEY_FILE     the key file itself (default $FSS_DEMO_DIR/secret.key)
//   FSS_DEMO_IDP_PORT     embedded login provider port (default 3001; 0 picks one)
//   FSS_DEMO_API_IDP_PORT embedded API provider port (default 3002; 0 picks one)
//   FSS_DEMO_USER, FSS_DEMO_USER_NAME   who the embedded provider logs in
//   OAUTH_ISSUER | OAUTH_AUTHORIZE_URL + OAUTH_TOKEN_URL [+ OAUTH_REVOKE_URL]
//   OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_SCOPE, OAUTH_CALLBACK_URL, OAUTH_USERINFO_URL
//   REDIS_URL             keep OAuth tokens in this Redis (redis://host:port); else in the cookie
//   REDIS_CLUSTER_NODES   ... or in this Redis Cluster (host:port,host:port,...)
//   REDIS_SENTINELS, REDIS_SENTINEL_NAME   ... or behind these sentinels (host:port,...) and master name
import { createServer } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describeRedisConnection } from '../index.ts'
import { demoConfig, DemoConfigError } from './demo-config.ts'
import { startDevProvider, type DevProvider } from './dev-provider.ts'
import { buildDemoApp, discoverUserinfo } from './demo-app.ts'

const HOST = '127.0.0.1'

/** The callback URL must name the port before the server listens, so 0 is resolved first. */
async function freePort (): Promise<number> {
  const probe = createServer().listen(0, HOST)
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

async function main (): Promise<void> {
  const config = demoConfig()
  const port = config.port === 0 ? await freePort() : config.port
  const origin = `http://${HOST}:${port}`

  let provider: DevProvider | undefined
  let apiProvider: DevProvider | undefined
  let oauth, userinfoUrl
  if (config.provider.kind === 'embedded') {
    provider = await startDevProvider(config.provider.port, config.provider.user)
    apiProvider = await startDevProvider(config.provider.api.port, config.provider.api.user)
    // oauth2-mock-server's end-session endpoint accepts GET only: the id_token hint then rides in
    // the redirect URL (the default, 'post', keeps it in a form body).
    oauth = { provider: { issuer: provider.issuer }, clientId: 'fss-demo', clientSecret: 'fss-demo-secret', scope: ['openid', 'profile'], providerLogout: 'get' as const }
    userinfoUrl = `${provider.issuer}/userinfo`
  } else {
    oauth = config.provider.oauth
    userinfoUrl = config.provider.userinfoUrl ??
      ('issuer' in oauth.provider ? await discoverUserinfo(oauth.provider.issuer).catch(() => undefined) : undefined)
  }

  const app = await buildDemoApp({
    origin,
    keyFile: config.keyFile,
    oauth,
    userinfoUrl,
    ...(apiProvider !== undefined && { apiProvider: { issuer: apiProvider.issuer, userinfoUrl: `${apiProvider.issuer}/userinfo` } }),
    callbackUrl: config.callbackUrl,
    redis: config.redis,
    logger: { level: 'info' }
  })

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'demo: shutting down')
    // In-flight requests get a moment; then connections a browser opened
    // ahead of need (and never used) are cut, or close() would wait for them.
    const force = setTimeout(() => app.server.closeAllConnections(), 2000)
    await app.close()
    clearTimeout(force)
    await provider?.stop()
    await apiProvider?.stop()
    process.exit(0)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      shutdown(signal).catch((err: Error) => {
        process.stderr.write(`demo: shutdown failed: ${err.message}\n`)
        process.exit(1)
      })
    })
  }

  await app.listen({ host: HOST, port })
  const lines = [
    '',
    `fastify-session-suite demo ready: ${origin}/`,
    `  open          ${origin}/`,
    `  health        ${origin}/health`,
    `  session debug ${origin}/api/session/debug`,
    `  OAuth state   ${origin}/api/oauth/test-flow`,
    `  API docs      ${origin}/docs`,
    `  key file      ${config.keyFile} (fingerprint ${app.secretKeys.fingerprint})`,
    provider === undefined
      ? `  provider      ${app.oauthInfo.provider ?? '?'}`
      : `  providers     development login provider at ${provider.issuer}, API provider at ${apiProvider?.issuer ?? '?'} (no account needed; FSS_DEMO_IDP_PORT, FSS_DEMO_API_IDP_PORT move them)`,
    // Hosts only: a Redis URL may carry a password.
    config.redis === undefined
      ? '  tokens        in the session cookie (set REDIS_URL=redis://host:port to keep them in Redis)'
      : `  tokens        in ${describeRedisConnection(config.redis)} (the cookie holds a reference; see /health)`,
    '  CSRF          on: log out needs the page\'s token',
    `  sessions      ${app.sessions.kind === 'redis' ? 'registry in Redis, shared by every instance' : 'registry in memory (this process only; set REDIS_URL to share it)'}`,
    // Register this at the provider as the client's backchannel_logout_uri.
    app.oauthFlow.logoutTokens === null
      ? '  back-channel  off (the provider is not OpenID Connect)'
      : `  back-channel  ${origin}/backchannel-logout (register it at the provider as the backchannel_logout_uri)`,
    '  stop          Ctrl+C',
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((err: Error & { code?: string }) => {
  // Start-up errors carry an FSS_* code and a fix; a config error says which variable.
  process.stderr.write(`demo: could not start: ${err instanceof DemoConfigError ? err.message : `${err.code ?? err.name}: ${err.message}`}\n`)
  process.exit(1)
})
