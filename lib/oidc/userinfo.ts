// The UserInfo endpoint (Core §5.3): one bounded GET with the access token;
// the answer must be a JSON object whose sub is the id_token's (§5.3.2: a
// different sub means the answer must not be used). Signed or encrypted
// UserInfo answers (application/jwt) are not requested and not accepted.
import { errors } from '../errors.ts'
import { getJson, type FetchFailure } from './http.ts'
import { pickClaims, type IdentityClaims, type IdentityLimits } from './identity.ts'
import { refuse } from './reasons.ts'

/** A profile answer is a few hundred bytes; a larger one is refused unread. */
export const MAX_USERINFO_BYTES = 64 * 1024

export interface UserInfoRequest {
  /** milliseconds */
  timeout: number
  limits: IdentityLimits
}

/**
 * Fetch UserInfo and keep its allow-listed claims. Throws FSS_USERINFO_FAILED
 * (502, `reason`: unreachable, timeout, http_status, too_large, not_json,
 * invalid) or FSS_USERINFO_SUBJECT_MISMATCH (502).
 */
export async function fetchUserInfo (endpoint: string, accessToken: string, expectedSub: string, req: UserInfoRequest): Promise<{ sub: string, claims: IdentityClaims }> {
  let body: unknown
  try {
    body = await getJson(endpoint, {
      signal: AbortSignal.timeout(req.timeout),
      maxBytes: MAX_USERINFO_BYTES,
      headers: { authorization: `Bearer ${accessToken}` }
    })
  } catch (err) {
    throw refuse.userinfo((err as FetchFailure).reason)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw refuse.userinfo('invalid')
  const sub = (body as { sub?: unknown }).sub
  if (typeof sub !== 'string' || sub === '') throw refuse.userinfo('invalid')
  if (sub !== expectedSub) throw Object.assign(new errors.FSS_USERINFO_SUBJECT_MISMATCH(), { reason: 'mismatch' })
  return { sub, claims: pickClaims(body as Record<string, unknown>, req.limits) }
}
