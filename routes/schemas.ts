// Response schemas for the health and debug routes. fast-json-stringify
// serializes only what these declare, so a value a plugin adds to an object by
// mistake (a token, a key) is dropped instead of sent: the schemas are the last
// line of defence, and the leak test holds them to it.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const Nullable = <T extends TSchema>(schema: T, options: { description?: string } = {}) => Type.Union([schema, Type.Null()], options)

export const HealthCheckStatus = Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')])

/** The OpenID Connect provider's signing keys as /health shows them: counts and times, never a key or key id. */
export const JwksStateSchema = Type.Object({
  uri: Type.String(),
  fetches: Type.Integer(),
  failures: Type.Integer(),
  lastFetchAt: Nullable(Type.Number({ description: 'epoch ms' })),
  keyCount: Type.Integer(),
  lastFailure: Nullable(Type.Object({ at: Type.Number({ description: 'epoch ms' }), code: Type.String(), reason: Type.String() }))
})

export const HealthResponseSchema = Type.Object({
  status: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('unhealthy')]),
  checks: Type.Array(Type.Object({
    name: Type.String(),
    status: HealthCheckStatus,
    detail: Type.String()
  })),
  /** present when the OAuth provider is OpenID Connect */
  jwks: Type.Optional(JwksStateSchema)
})
export type HealthResponse = Static<typeof HealthResponseSchema>

/**
 * Fastify's own error shape, declared so error answers are serialized by schema too: nothing
 * else is sent. `code` is there for every error the suite throws; an uncoded error has none.
 */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})

export const CookiePolicy = Type.Object({
  cookieName: Type.String(),
  secure: Type.Boolean(),
  httpOnly: Type.Boolean(),
  sameSite: Type.String(),
  path: Type.String(),
  domain: Type.Optional(Type.String()),
  idleTimeout: Type.Number({ description: 'seconds' }),
  absoluteTimeout: Type.Number({ description: 'seconds' }),
  rollingInterval: Type.Number({ description: 'seconds' }),
  maxCookieBytes: Type.Integer()
})

export const SessionDebugResponseSchema = Type.Object({
  key: Nullable(Type.Object({
    source: Type.String(),
    bits: Type.Integer(),
    fingerprint: Type.String({ description: '8 hex of SHA-256 of the newest key' }),
    count: Type.Integer(),
    warnings: Type.Array(Type.String())
  })),
  cookie: Nullable(CookiePolicy),
  session: Type.Object({
    fields: Type.Array(Type.String(), { description: 'names only, never values' }),
    createdAt: Nullable(Type.Number()),
    expiresAt: Nullable(Type.Number()),
    encodedBytes: Type.Integer(),
    chunks: Type.Integer(),
    rejected: Nullable(Type.String(), { description: 'why the received cookie was not used, if it was not' })
  })
})
export type SessionDebugResponse = Static<typeof SessionDebugResponseSchema>

export const PersistenceStored = Type.Object({
  nonce: Type.String({ description: 'random, stored in the session; not a secret' }),
  storedAt: Type.Number()
})

export const PersistenceQuery = Type.Object({
  nonce: Type.Optional(Type.String({ maxLength: 64 }))
})

export const PersistenceCheckSchema = Type.Object({
  persisted: Type.Boolean({ description: 'the session carries a nonce stored by POST' }),
  storedAt: Nullable(Type.Number()),
  matches: Nullable(Type.Boolean(), { description: 'null unless ?nonce= was given' })
})
export type PersistenceCheck = Static<typeof PersistenceCheckSchema>

export const OAuthTestFlowResponseSchema = Type.Object({
  configured: Type.Boolean(),
  provider: Nullable(Type.String()),
  tokenPresent: Type.Boolean(),
  expiresAt: Nullable(Type.Number()),
  expired: Nullable(Type.Boolean()),
  refreshTokenPresent: Type.Boolean(),
  scopes: Type.Array(Type.String()),
  fieldsPresent: Type.Array(Type.String(), { description: 'names of the allowed token fields present; never values' }),
  identity: Nullable(Type.Object({
    sub: Type.String(),
    iss: Type.String(),
    claims: Type.Array(Type.String(), { description: 'names of the profile claims kept; never values' })
  }), { description: 'who is logged in; null when nobody is (or a plain OAuth 2 provider without mapIdentity)' }),
  idTokenVerified: Type.Boolean({ description: 'the identity comes from an id_token verified at login (OpenID Connect)' }),
  providers: Type.Array(Type.Object({
    name: Type.String(),
    provider: Nullable(Type.String(), { description: 'the issuer or token endpoint origin' }),
    login: Type.Boolean({ description: 'the provider the user logged in with' }),
    tokenPresent: Type.Boolean(),
    expiresAt: Nullable(Type.Number()),
    expired: Nullable(Type.Boolean()),
    refreshTokenPresent: Type.Boolean(),
    scopes: Type.Array(Type.String()),
    fieldsPresent: Type.Array(Type.String(), { description: 'names only; never values' })
  }), { description: 'every configured provider, the default first; the fields above are the default\'s' })
})
export type OAuthTestFlowResponse = Static<typeof OAuthTestFlowResponseSchema>
