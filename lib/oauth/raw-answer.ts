// The token endpoint's answer exactly as the provider sent it. simple-oauth2
// (under @fastify/oauth2) builds its AccessToken from a rewritten copy: a
// provider's `expires_at` becomes a Date (`null` → epoch 0), and with no
// `expires_at` it computes one from `parseInt(expires_in)` (`null` → Invalid
// Date, 1e21 or "1e+308" → one second). Token validation must judge the
// provider's own JSON, so every AccessToken the client builds is mapped back
// to the answer it was built from.

/** The part of simple-oauth2's AuthorizationCode used here (`fastify[name].oauth2`). */
export interface TokenClient {
  createToken: (raw: unknown) => object
  getToken: (params: Record<string, string>) => Promise<object>
}

const answers = new WeakMap<object, unknown>()

/** Thrown instead of simple-oauth2's own error for an answer it cannot build a token from. */
class PrimitiveAnswer {
  constructor (readonly raw: unknown) {}
}

/**
 * Wrap the client's `createToken` (its grant types build every token through
 * it) so that each token remembers the answer it came from. Install once.
 */
export function captureRawAnswers (client: TokenClient): void {
  const create = client.createToken.bind(client)
  client.createToken = (raw: unknown) => {
    // JSON `null`, a string or a number: simple-oauth2 would throw a TypeError.
    // It is still the provider's answer, and validation says what is wrong with it.
    if (raw === null || typeof raw !== 'object') throw new PrimitiveAnswer(raw)
    const token = create(raw)
    answers.set(token, raw)
    return token
  }
}

/** Runs a token-endpoint call through the client and resolves to the provider's raw JSON answer. */
export async function rawAnswerOf (call: () => Promise<unknown>): Promise<unknown> {
  try {
    return answers.get(await call() as object)
  } catch (err) {
    if (err instanceof PrimitiveAnswer) return err.raw
    throw err
  }
}

/**
 * A refresh (RFC 6749 §6) through the client. Not AccessToken.refresh(), which
 * builds its result without createToken (so its raw answer could not be
 * seen): getToken with the grant's own parameters, which simple-oauth2 sends
 * over its `authorization_code` default (GrantTypeParams merges the caller's
 * parameters last), with the same client authentication and endpoint.
 */
export function refreshGrant (client: TokenClient, refreshToken: string): Promise<unknown> {
  return rawAnswerOf(() => client.getToken({ grant_type: 'refresh_token', refresh_token: refreshToken }))
}
