// Who logged in: the verified identity kept in the session beside the
// tokens. For an OpenID Connect provider it comes from the id_token, checked
// by lib/oidc (signature, iss, aud/azp, times, and this flow's nonce, Core
// §3.1.3.7); for a plain OAuth 2 provider only the service's own
// `mapIdentity` can say who it is. The nonce lives in the flow's single-use
// HttpOnly cookie with the state (lib/oauth/flow-state.ts), so it is bound to
// the state that the callback consumes once: a nonce works for one callback only.
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.ts'
import { createNonce } from '../oidc/flow.ts'
import { bindingOf } from '../oidc/id-token.ts'
import { pickClaims, type Identity, type IdentityClaims } from '../oidc/identity.ts'
import { OIDC_DEFAULTS } from '../oidc/options.ts'
import type { RelyingParty } from '../oidc/relying-party.ts'
import type { MappedIdentity, MapIdentityContext } from './options.ts'
import type { StoredToken } from './token.ts'

/** The session field that holds the identity (beside the default token store's `oauth`). */
export const SESSION_IDENTITY_FIELD = 'oauthIdentity'

const SessionIdentitySchema = Type.Object({
  sub: Type.String({ minLength: 1, maxLength: 255 }),
  iss: Type.String({ minLength: 1, maxLength: 2048 }),
  claims: Type.Record(Type.String(), Type.Unknown()),
  /** where it came from: a verified id_token, or the service's mapIdentity */
  source: Type.Union([Type.Literal('id_token'), Type.Literal('mapped')]),
  /** the login's iss, sub, aud and azp: a refreshed id_token must keep them (Core §12.2) */
  binding: Type.Optional(Type.Object({
    iss: Type.String(),
    sub: Type.String(),
    aud: Type.Union([Type.String(), Type.Array(Type.String())]),
    azp: Type.Optional(Type.String())
  }, { additionalProperties: false })),
  /** the provider's session id (for back-channel logout and the session registry) */
  sid: Type.Optional(Type.String({ maxLength: 255 })),
  /** the name of the provider the user logged in with; absent: the default provider */
  provider: Type.Optional(Type.String({ maxLength: 32 }))
}, { additionalProperties: false })
export type SessionIdentity = Static<typeof SessionIdentitySchema>
const sessionIdentityCheck = TypeCompiler.Compile(SessionIdentitySchema)

declare module '@fastify/secure-session' {
  interface SessionData {
    /** read back through readIdentity, never trusted as is */
    oauthIdentity?: SessionIdentity
  }
}

/** The identity in this session, or null (none, or not the stored shape: an old or hand-made cookie). */
export function readIdentity (request: FastifyRequest): SessionIdentity | null {
  const value: unknown = request.session.get(SESSION_IDENTITY_FIELD)
  return sessionIdentityCheck.Check(value) ? value : null
}

export function writeIdentity (request: FastifyRequest, identity: SessionIdentity | null): void {
  if (identity !== null) request.session.set(SESSION_IDENTITY_FIELD, identity)
  else if (request.session.get(SESSION_IDENTITY_FIELD) !== undefined) request.session.set(SESSION_IDENTITY_FIELD, undefined)
}

/** What request.identity shows: sub, iss and the profile claims. */
export function publicIdentity (stored: SessionIdentity): Identity {
  return { sub: stored.sub, iss: stored.iss, claims: stored.claims as IdentityClaims }
}

export interface LoginIdentityOptions {
  /** null for a plain OAuth 2 provider */
  rp: RelyingParty | null
  userinfo: boolean
  mapIdentity?: (context: MapIdentityContext) => Promise<MappedIdentity | null>
  /** milliseconds, for mapIdentity's signal */
  timeout: number
}

const MappedSchema = Type.Object({ sub: Type.String({ minLength: 1, maxLength: 255 }), iss: Type.String({ minLength: 1, maxLength: 2048 }) })
const mappedCheck = TypeCompiler.Compile(MappedSchema)

export interface LoginIdentity {
  /** A fresh nonce for a new login (kept with the flow); null for plain OAuth 2. */
  begin: () => string | null
  /** RFC 9207 iss and the flow's nonce, checked before the code is exchanged. */
  checkCallback: (request: FastifyRequest, nonce: string | null) => void
  /** The verified identity for the exchanged token and the flow's nonce (throws coded errors; stores nothing). */
  verify: (token: StoredToken, nonce: string | null) => Promise<SessionIdentity | null>
  /**
   * A refreshed token's id_token: verified without a nonce and bound to the login's iss, sub, aud
   * and azp. Throws FSS_ID_TOKEN_SUBJECT_CHANGED or the verification's own code.
   */
  checkRefreshed: (login: SessionIdentity | null, fresh: StoredToken, previous: StoredToken) => Promise<void>
}

export function loginIdentity (opts: LoginIdentityOptions): LoginIdentity {
  const { rp } = opts
  const limits = {
    profileClaims: rp?.options.profileClaims ?? OIDC_DEFAULTS.profileClaims,
    maxClaimBytes: rp?.options.maxClaimBytes ?? OIDC_DEFAULTS.maxClaimBytes,
    maxIdentityBytes: rp?.options.maxIdentityBytes ?? OIDC_DEFAULTS.maxIdentityBytes
  }

  async function mapped (token: StoredToken): Promise<SessionIdentity | null> {
    if (opts.mapIdentity === undefined) return null
    const result = await opts.mapIdentity({ accessToken: token.access_token, signal: AbortSignal.timeout(opts.timeout) })
    if (result === null) return null
    if (!mappedCheck.Check(result)) throw new errors.FSS_OPTIONS_INVALID('oauth.mapIdentity', 'must resolve to null or { sub, iss, claims? } with sub of 1-255 characters')
    const claims = pickClaims(result.claims ?? {}, limits)
    return { sub: result.sub, iss: result.iss, claims, source: 'mapped' }
  }

  return {
    begin () {
      return rp === null ? null : createNonce()
    },
    checkCallback (request, nonce) {
      if (rp === null) return
      rp.checkCallbackIssuer((request.query as Record<string, unknown>).iss)
      if (nonce === null) throw new errors.FSS_OAUTH_STATE_INVALID('the flow has no nonce (started before this provider was OpenID Connect)')
    },
    async verify (token, nonce) {
      if (rp === null) return await mapped(token)
      // checkCallback ran first and refused a flow without a nonce.
      const claims = await rp.verifyIdToken(token.id_token, { nonce: nonce as string })
      const identity = rp.identity(claims)
      let profile = identity.claims
      if (opts.userinfo) {
        const info = await rp.fetchUserInfo(token.access_token, identity.sub)
        // The id_token's claims win: they are signed; UserInfo fills what it lacks.
        profile = pickClaims({ ...info.claims, ...identity.claims }, limits)
      }
      return {
        sub: identity.sub,
        iss: identity.iss,
        claims: profile,
        source: 'id_token',
        binding: bindingOf(claims),
        ...(claims.sid === undefined ? {} : { sid: claims.sid })
      }
    },
    async checkRefreshed (login, fresh, previous) {
      // The refresh coordinator keeps the login's id_token when the answer has none.
      if (rp === null || fresh.id_token === previous.id_token) return
      // Core §12.2: no nonce in a refresh's id_token.
      const claims = await rp.verifyIdToken(fresh.id_token, { nonce: null })
      // Tokens a service stored itself have no login to bind to: verified, not compared.
      if (login?.binding !== undefined) rp.checkRefreshedIdToken(login.binding, bindingOf(claims))
    }
  }
}
