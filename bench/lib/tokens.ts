// A realistic OAuth/OIDC token set: two ES256-shaped JWTs (header.payload.
// 64-byte signature), an opaque refresh token and the usual fields. The sizes
// match what a typical provider returns, so the session cookie that carries
// it is about 1.7 KB; `idTokenPadding` grows the id_token to force chunking.
import { randomBytes } from 'node:crypto'

export interface TokenSet {
  access_token: string
  refresh_token: string
  id_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
}

function jwt (claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'ES256', typ: 'JWT', kid: randomBytes(6).toString('hex') })}.${part(claims)}.${randomBytes(64).toString('base64url')}`
}

export function tokenSet ({ idTokenPadding = 0, expiresIn = 3600, refreshToken }: { idTokenPadding?: number, expiresIn?: number, refreshToken?: string } = {}): TokenSet {
  const now = Math.floor(Date.now() / 1000)
  const sub = randomBytes(8).toString('hex')
  const common = { iss: 'https://login.example.com/', sub, iat: now, exp: now + expiresIn }
  return {
    access_token: jwt({ ...common, aud: 'https://api.example.com', azp: 'bench-client', scope: 'openid profile email offline_access', jti: randomBytes(8).toString('hex') }),
    refresh_token: refreshToken ?? randomBytes(24).toString('base64url'),
    id_token: jwt({
      ...common,
      aud: 'bench-client',
      name: 'Bench User',
      email: 'bench@example.com',
      email_verified: true,
      picture: `https://img.example.com/${sub}.png`,
      auth_time: now,
      ...(idTokenPadding > 0 ? { pad: 'x'.repeat(idTokenPadding) } : {})
    }),
    token_type: 'Bearer',
    expires_in: expiresIn,
    scope: 'openid profile email offline_access'
  }
}
