// OpenID Connect Discovery 1.0: read the provider's metadata once, at
// start-up, and hold it to the rules a relying party must check (§4.3: the
// document's issuer is exactly the configured one). Every failure names the
// URL (without userinfo or query) and the fix.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.ts'
import { displayUrl, getJson, type FetchFailure } from './http.ts'
import type { FetchReason } from './reasons.ts'

const Url = Type.String({ pattern: '^https?://[^\\s/?#@]+[^\\s#]*$', maxLength: 2048 })
const Names = Type.Array(Type.String({ maxLength: 256 }), { maxItems: 256 })

/** The metadata fields this suite reads (Discovery §3, RFC 9207 §3, Back-Channel Logout §2.1, RP-Initiated Logout §2.1). */
export const ProviderMetadataSchema = Type.Object({
  issuer: Type.String({ minLength: 1, maxLength: 2048 }),
  authorization_endpoint: Url,
  token_endpoint: Url,
  jwks_uri: Url,
  userinfo_endpoint: Type.Optional(Url),
  end_session_endpoint: Type.Optional(Url),
  revocation_endpoint: Type.Optional(Url),
  id_token_signing_alg_values_supported: Type.Optional(Names),
  authorization_response_iss_parameter_supported: Type.Optional(Type.Boolean()),
  backchannel_logout_supported: Type.Optional(Type.Boolean()),
  backchannel_logout_session_supported: Type.Optional(Type.Boolean()),
  code_challenge_methods_supported: Type.Optional(Names),
  scopes_supported: Type.Optional(Names),
  claims_supported: Type.Optional(Names),
  response_types_supported: Type.Optional(Names),
  grant_types_supported: Type.Optional(Names),
  token_endpoint_auth_methods_supported: Type.Optional(Names)
})

export type ProviderMetadata = Static<typeof ProviderMetadataSchema>

const metadataCheck = TypeCompiler.Compile(ProviderMetadataSchema)
const ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint', 'revocation_endpoint'] as const

/** No real discovery document comes near this; a larger answer is refused unread. */
export const MAX_DISCOVERY_BYTES = 256 * 1024

/** Discovery §4: the issuer, without a trailing slash, plus /.well-known/openid-configuration. */
export function discoveryUrl (issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
}

const FIX_URL = 'check the issuer URL; its discovery document must be served at <issuer>/.well-known/openid-configuration'
const PROBLEMS: Record<FetchReason, string> = {
  unreachable: 'the provider could not be reached',
  timeout: 'the provider did not answer in time',
  http_status: 'the provider answered with an HTTP status other than 200 (redirects are not followed)',
  too_large: `the document is over ${MAX_DISCOVERY_BYTES} bytes`,
  not_json: 'the document is not JSON',
  invalid: 'the document is not provider metadata',
  backoff: 'a fetch failed moments ago'
}

function failed (url: string, reason: FetchReason, detail = ''): Error {
  const fix = reason === 'unreachable' ? 'check the issuer URL and that this host can reach the provider' : FIX_URL
  return Object.assign(new errors.FSS_OIDC_DISCOVERY_FAILED(url, PROBLEMS[reason] + detail, fix), { reason })
}

/**
 * Check a discovery document against the configured issuer. Returns the known
 * fields only. Throws FSS_OIDC_ISSUER_MISMATCH or FSS_OIDC_DISCOVERY_FAILED.
 */
export function parseProviderMetadata (doc: unknown, issuer: string, url = discoveryUrl(issuer)): ProviderMetadata {
  const shown = displayUrl(url)
  if (!metadataCheck.Check(doc)) {
    const first = metadataCheck.Errors(doc).First()
    /* c8 ignore next -- Check() failed, so Errors() has an entry */
    if (first === undefined) throw failed(shown, 'invalid')
    // The path names the field, the message TypeBox's rule; never the value.
    throw failed(shown, 'invalid', first.path === '' ? '' : `: ${first.path.slice(1)} ${first.message}`)
  }
  // The pattern keeps userinfo, spaces and fragments out; WHATWG URL parsing
  // is stricter still (`http://://x` matches the pattern and parses as
  // nothing), and every endpoint is later handed to `new URL`.
  const unparsable = ENDPOINTS.find((name) => doc[name] !== undefined && !URL.canParse(doc[name]))
  if (unparsable !== undefined) throw failed(shown, 'invalid', `: ${unparsable} is not a URL`)
  // Discovery §4.3: exact string comparison, no normalisation.
  if (doc.issuer !== issuer) {
    const found = /^https?:\/\//.test(doc.issuer) ? displayUrl(doc.issuer) : '(not a URL)'
    throw Object.assign(new errors.FSS_OIDC_ISSUER_MISMATCH(shown, found, issuer), { reason: 'mismatch' })
  }
  // An https provider that points at plain-http endpoints hands its keys and
  // tokens to anyone on the path.
  if (issuer.startsWith('https:')) {
    const plain = ENDPOINTS.find((name) => doc[name]?.startsWith('http:') === true)
    if (plain !== undefined) throw failed(shown, 'invalid', `: ${plain} is plain http under an https issuer`)
  }
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(ProviderMetadataSchema.properties)) {
    const value = (doc as Record<string, unknown>)[name]
    if (value !== undefined) out[name] = value
  }
  return out as ProviderMetadata
}

/** Fetch and check `<issuer>/.well-known/openid-configuration`, bounded by `timeout` milliseconds. */
export async function discoverProvider (issuer: string, opts: { timeout: number }): Promise<ProviderMetadata> {
  const url = discoveryUrl(issuer)
  let doc: unknown
  try {
    doc = await getJson(url, { signal: AbortSignal.timeout(opts.timeout), maxBytes: MAX_DISCOVERY_BYTES })
  } catch (err) {
    const reason = (err as FetchFailure).reason
    if (reason === 'timeout') throw Object.assign(new errors.FSS_OIDC_DISCOVERY_TIMEOUT(displayUrl(url), opts.timeout), { reason })
    throw failed(displayUrl(url), reason)
  }
  return parseProviderMetadata(doc, issuer, url)
}
