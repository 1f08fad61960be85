// What the debug routes answer, assembled from the plugins' decorators. Each
// part is optional: the routes answer truthfully ("not configured", null)
// when a plugin is not registered on this instance.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SecretKeyInfo } from '../plugins/secret-keys.ts'
import { getSessionDetails, type SessionInfo } from '../plugins/session.ts'
import { optionalDecorator, type Decorated } from './decorators.ts'
import type { OAuthTestFlowResponse, SessionDebugResponse } from './schemas.ts'
import type { OAuthFlow, OAuthInfo, OAuthProviderInfo } from '../plugins/oauth-tokens.ts'
import { readIdentity } from '../lib/oauth/identity.ts'

type Instance = Decorated & Pick<FastifyInstance, 'hasRequestDecorator'>

export function sessionDebug (fastify: Instance, request: FastifyRequest): SessionDebugResponse {
  const key = optionalDecorator<SecretKeyInfo>(fastify, 'secretKeys')
  const info = optionalDecorator<SessionInfo>(fastify, 'sessionInfo')
  const details = info === undefined ? undefined : getSessionDetails(request)
  return {
    key: key === undefined
      ? null
      : { source: key.source, bits: key.bits, fingerprint: key.fingerprint, count: key.count, warnings: [...key.warnings] },
    cookie: info?.policy ?? null,
    session: {
      fields: details?.fields ?? [],
      createdAt: details?.createdAt ?? null,
      expiresAt: details?.expiresAt ?? null,
      encodedBytes: details?.encodedBytes ?? 0,
      chunks: details?.chunks ?? 0,
      rejected: details?.rejected ?? null
    }
  }
}

export async function oauthTestFlow (fastify: Instance, request: FastifyRequest): Promise<OAuthTestFlowResponse> {
  const info = optionalDecorator<OAuthInfo>(fastify, 'oauthInfo')
  const flow = optionalDecorator<OAuthFlow>(fastify, 'oauthFlow')
  const meta = fastify.hasRequestDecorator('tokens') ? await request.tokens.metadata() : null
  const login = flow === undefined ? null : await flow.loginProvider(request)
  const providers: OAuthTestFlowResponse['providers'] = []
  for (const name of flow?.providers ?? []) {
    const own = await request.tokens.for(name).metadata()
    providers.push({
      name,
      // oauthFlow and oauthInfo come from the same plugin: every provider the flow names has its info.
      provider: ((info as OAuthInfo).providers[name] as OAuthProviderInfo).provider,
      login: name === login,
      tokenPresent: own !== null,
      expiresAt: own?.expiresAt ?? null,
      expired: own?.expired ?? null,
      refreshTokenPresent: own?.hasRefreshToken ?? false,
      scopes: own?.scopes ?? [],
      fieldsPresent: own?.fields ?? []
    })
  }
  // Only while the login provider's tokens are there: an identity without them is nobody logged in.
  const stored = login === null || providers.find((p) => p.name === login)?.tokenPresent !== true ? null : readIdentity(request)
  return {
    configured: info?.configured ?? false,
    provider: info?.provider ?? null,
    tokenPresent: meta !== null,
    expiresAt: meta?.expiresAt ?? null,
    expired: meta?.expired ?? null,
    refreshTokenPresent: meta?.hasRefreshToken ?? false,
    scopes: meta?.scopes ?? [],
    fieldsPresent: meta?.fields ?? [],
    identity: stored === null ? null : { sub: stored.sub, iss: stored.iss, claims: Object.keys(stored.claims) },
    idTokenVerified: stored?.source === 'id_token',
    providers
  }
}
