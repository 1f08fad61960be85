// One configured OpenID Connect relying party: options resolved, provider
// metadata discovered (or given explicitly with jwksUri), algorithms chosen,
// JWKS set up, and every check bound to them. Fastify-free: the plugin and
// routes hold one of these and call it.
import { errors } from '../errors.ts'
import { discoverProvider, type ProviderMetadata } from './discovery.ts'
import { buildEndSessionRequest, checkCallbackIssuer, type EndSessionParams, type EndSessionRequest } from './flow.ts'
import { checkRefreshedIdToken, verifyIdToken, type IdTokenBinding, type IdTokenClaims, type IdTokenExpectation } from './id-token.ts'
import { extractIdentity, type Identity, type IdentityClaims, type IdentityLimits } from './identity.ts'
import { createJwks, type JwksState } from './jwks.ts'
import { signingAlgorithms, type JwtVerifier } from './jwt.ts'
import { verifyLogoutToken, type LogoutTokenClaims } from './logout-token.ts'
import { resolveOidcOptions, type ResolvedOidcOptions } from './options.ts'
import { fetchUserInfo } from './userinfo.ts'

/** The provider metadata in use: discovered, or the explicit jwksUri and endpoints. */
export type RelyingPartyMetadata = Partial<ProviderMetadata> & { issuer: string, jwks_uri: string }

export interface RelyingParty {
  readonly options: ResolvedOidcOptions
  readonly metadata: RelyingPartyMetadata
  /** the JWS algorithms accepted for id_tokens and logout_tokens */
  readonly algorithms: readonly string[]
  /** RFC 9207: the provider advertises the callback's iss, so it is required */
  readonly callbackIssuerRequired: boolean
  /** FSS_OAUTH_ISSUER_INVALID (400) unless the callback's iss passes RFC 9207 */
  checkCallbackIssuer: (iss: unknown) => void
  /** see verifyIdToken in id-token.ts */
  verifyIdToken: (token: unknown, expected: IdTokenExpectation) => Promise<IdTokenClaims>
  /** sub, iss and the allow-listed, bounded profile claims */
  identity: (claims: IdTokenClaims) => Identity
  /** FSS_ID_TOKEN_SUBJECT_CHANGED (401) unless the refreshed id_token keeps iss, sub, aud, azp */
  checkRefreshedIdToken: (login: IdTokenBinding, refreshed: IdTokenBinding) => void
  /** UserInfo claims (allow-listed, bounded); its sub must be `expectedSub`. Needs metadata.userinfo_endpoint. */
  fetchUserInfo: (accessToken: string, expectedSub: string) => Promise<{ sub: string, claims: IdentityClaims }>
  /** see verifyLogoutToken in logout-token.ts */
  verifyLogoutToken: (token: unknown) => Promise<LogoutTokenClaims>
  /** null when the provider has no end_session_endpoint */
  endSessionRequest: (params: Omit<EndSessionParams, 'clientId'>) => EndSessionRequest | null
  /** for /health: fetch counts and times, never a key */
  jwksState: () => JwksState
}

/**
 * Resolve `options` (FSS_OPTIONS_INVALID), read the provider's metadata
 * (FSS_OIDC_DISCOVERY_FAILED, FSS_OIDC_DISCOVERY_TIMEOUT, FSS_OIDC_ISSUER_MISMATCH)
 * unless `jwksUri` is given, and bind every check to it. Fetches no keys yet:
 * the first verification does, so a JWKS outage never stops start-up.
 */
export async function createRelyingParty (options: unknown, prefix = 'oidc'): Promise<RelyingParty> {
  const opts = resolveOidcOptions(options, prefix)
  const metadata: RelyingPartyMetadata = opts.jwksUri === undefined
    ? await discoverProvider(opts.issuer, { timeout: opts.timeout })
    : {
        issuer: opts.issuer,
        jwks_uri: opts.jwksUri,
        ...(opts.userinfoEndpoint === undefined ? {} : { userinfo_endpoint: opts.userinfoEndpoint }),
        ...(opts.endSessionEndpoint === undefined ? {} : { end_session_endpoint: opts.endSessionEndpoint })
      }
  const algorithms = signingAlgorithms(opts.issuer, metadata.id_token_signing_alg_values_supported, opts.idTokenSigningAlgs)
  const jwks = createJwks(metadata.jwks_uri, {
    timeout: opts.timeout,
    cooldown: opts.jwksCooldown,
    cacheMaxAge: opts.jwksCacheMaxAge,
    failureBackoff: opts.jwksFailureBackoff
  })
  const verifier: JwtVerifier = { issuer: opts.issuer, clientId: opts.clientId, algorithms, getKey: jwks.getKey, clockTolerance: opts.clockTolerance }
  const limits: IdentityLimits = { profileClaims: opts.profileClaims, maxClaimBytes: opts.maxClaimBytes, maxIdentityBytes: opts.maxIdentityBytes }
  const callbackIssuerRequired = metadata.authorization_response_iss_parameter_supported === true

  return {
    options: opts,
    metadata,
    algorithms,
    callbackIssuerRequired,
    checkCallbackIssuer: (iss) => checkCallbackIssuer(iss, opts.issuer, callbackIssuerRequired),
    verifyIdToken: (token, expected) => verifyIdToken(token, { ...verifier, maxTokenAge: opts.idTokenMaxAge }, expected),
    identity: (claims) => extractIdentity(claims, limits),
    checkRefreshedIdToken,
    async fetchUserInfo (accessToken, expectedSub) {
      const endpoint = metadata.userinfo_endpoint
      if (endpoint === undefined) throw new errors.FSS_OPTIONS_INVALID(`${prefix}.userinfoEndpoint`, 'the provider names no UserInfo endpoint')
      return await fetchUserInfo(endpoint, accessToken, expectedSub, { timeout: opts.timeout, limits })
    },
    verifyLogoutToken: (token) => verifyLogoutToken(token, { ...verifier, maxTokenAge: opts.logoutTokenMaxAge }),
    endSessionRequest: (params) => buildEndSessionRequest(metadata.end_session_endpoint, { ...params, clientId: opts.clientId }),
    jwksState: jwks.state
  }
}
