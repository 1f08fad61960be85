// The demo's settings, all from the environment, checked once at start.
// With no OAUTH_* variables the demo runs its own identity provider on
// loopback; with them it logs in against that provider instead.
import { resolve } from 'node:path'
import { redisConnectionFromEnv, type OAuthOptions, type RedisConnectOptions } from '../index.ts'

export interface DemoConfig {
  /** 0: pick a free port before start (the OAuth callback URL needs it) */
  port: number
  keyFile: string
  callbackUrl?: string
  /** REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS + REDIS_SENTINEL_NAME: OAuth tokens in Redis instead of the session cookie */
  redis?: RedisConnectOptions
  provider:
    | { kind: 'embedded', port: number, user: { sub: string, name: string }, api: { port: number, user: { sub: string, name: string } } }
    | { kind: 'external', oauth: Required<Pick<OAuthOptions, 'provider' | 'clientId' | 'clientSecret'>> & Pick<OAuthOptions, 'scope'>, userinfoUrl?: string }
}

export class DemoConfigError extends Error {}

function port (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n > 65535) throw new DemoConfigError(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`)
  return n
}

export function demoConfig (env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const dir = resolve(env.FSS_DEMO_DIR ?? '.fss-demo')
  const redis = redisConnectionFromEnv(env)
  const base = {
    port: port(env, 'PORT', 3000),
    keyFile: env.FSS_DEMO_KEY_FILE ?? resolve(dir, 'secret.key'),
    ...(env.OAUTH_CALLBACK_URL !== undefined && { callbackUrl: env.OAUTH_CALLBACK_URL }),
    ...(redis !== undefined && { redis })
  }
  const issuer = env.OAUTH_ISSUER
  const explicit = env.OAUTH_AUTHORIZE_URL !== undefined || env.OAUTH_TOKEN_URL !== undefined
  if (issuer === undefined && !explicit) {
    const sub = env.FSS_DEMO_USER ?? 'ada'
    return {
      ...base,
      provider: {
        kind: 'embedded',
        port: port(env, 'FSS_DEMO_IDP_PORT', 3001),
        user: { sub, name: env.FSS_DEMO_USER_NAME ?? 'Ada Lovelace' },
        // The API provider knows the user as an account of its own.
        api: { port: port(env, 'FSS_DEMO_API_IDP_PORT', 3002), user: { sub: `${sub}-books`, name: 'Analytical Engines Ltd' } }
      }
    }
  }
  const clientId = env.OAUTH_CLIENT_ID
  if (clientId === undefined || clientId === '') throw new DemoConfigError('OAUTH_CLIENT_ID is required with OAUTH_ISSUER or OAUTH_AUTHORIZE_URL/OAUTH_TOKEN_URL')
  let provider: NonNullable<OAuthOptions['provider']>
  if (issuer !== undefined) {
    provider = { issuer }
  } else {
    const { OAUTH_AUTHORIZE_URL: authorizeUrl, OAUTH_TOKEN_URL: tokenUrl, OAUTH_REVOKE_URL: revokeUrl } = env
    if (authorizeUrl === undefined || tokenUrl === undefined) throw new DemoConfigError('OAUTH_AUTHORIZE_URL and OAUTH_TOKEN_URL go together')
    provider = { authorizeUrl, tokenUrl, ...(revokeUrl !== undefined && { revokeUrl }) }
  }
  return {
    ...base,
    provider: {
      kind: 'external',
      oauth: {
        provider,
        clientId,
        clientSecret: env.OAUTH_CLIENT_SECRET ?? '',
        scope: (env.OAUTH_SCOPE ?? 'openid profile').split(/\s+/).filter(Boolean)
      },
      ...(env.OAUTH_USERINFO_URL !== undefined && { userinfoUrl: env.OAUTH_USERINFO_URL })
    }
  }
}
