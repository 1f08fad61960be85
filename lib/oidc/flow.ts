// The browser-facing parts of an OpenID Connect login and logout: the nonce
// (Core §3.1.2.1), the authorization response's iss (RFC 9207), and the
// RP-initiated logout request (RP-Initiated Logout 1.0 §2).
import { randomBytes } from 'node:crypto'
import { refuse } from './reasons.ts'

/**
 * A fresh nonce: 32 random bytes (256 bits), base64url. Keep it with the
 * flow's state (never in a URL the browser keeps), send it in the
 * authorization request, expect it in the id_token, and let it work once.
 */
export function createNonce (): string {
  return randomBytes(32).toString('base64url')
}

/**
 * RFC 9207 §2.4: when the callback carries `iss` it must equal the issuer
 * (simple string comparison); when the provider advertises
 * `authorization_response_iss_parameter_supported`, it must be there.
 * `iss` is the raw query value (a repeated parameter arrives as an array and
 * is refused). Throws FSS_OAUTH_ISSUER_INVALID (400).
 */
export function checkCallbackIssuer (iss: unknown, issuer: string, required: boolean): void {
  if (iss === undefined) {
    if (required) throw refuse.callbackIssuer('missing')
    return
  }
  if (iss !== issuer) throw refuse.callbackIssuer('mismatch')
}

export interface EndSessionParams {
  clientId: string
  /** the login's id_token (RECOMMENDED by §2: it tells the provider whose session ends) */
  idTokenHint?: string
  /** where the provider sends the browser back; must be registered at the provider */
  postLogoutRedirectUri?: string
  /** echoed back on that redirect */
  state?: string
}

export interface EndSessionRequest {
  /** GET: the endpoint with the parameters in its query */
  redirectUrl: string
  /**
   * POST (§2: providers accept both): the endpoint and the form fields. A
   * form keeps the id_token out of the URL, where browser history, the
   * provider's access logs and a Referer header would keep it.
   */
  action: string
  fields: Record<string, string>
}

/**
 * The request that ends the session at the provider, or null when it has no
 * `end_session_endpoint`. `client_id` is always sent: with a
 * `post_logout_redirect_uri` and an expired or absent hint, it is how the
 * provider finds the registered redirect (§2).
 */
export function buildEndSessionRequest (endpoint: string | undefined, params: EndSessionParams): EndSessionRequest | null {
  if (endpoint === undefined) return null
  const fields: Record<string, string> = { client_id: params.clientId }
  if (params.idTokenHint !== undefined) fields.id_token_hint = params.idTokenHint
  if (params.postLogoutRedirectUri !== undefined) fields.post_logout_redirect_uri = params.postLogoutRedirectUri
  if (params.state !== undefined) fields.state = params.state
  const url = new URL(endpoint)
  for (const [name, value] of Object.entries(fields)) url.searchParams.set(name, value)
  return { redirectUrl: url.href, action: endpoint, fields }
}
