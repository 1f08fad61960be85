// The callback's query string, checked by us rather than by a route schema:
// a schema failure is answered by Fastify (FST_ERR_VALIDATION) before the
// handler can clear the single-use state and verifier cookies. Here every
// malformed query is FSS_OAUTH_CALLBACK_INVALID, naming the parameter and the
// rule, never the value.
import { errors } from '../errors.ts'

/**
 * The parameters the callback reads (RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207
 * `iss`, OIDC Session Management `session_state`) and their longest accepted
 * length in characters. A provider's other parameters (`scope`, `authuser`…)
 * are not read and not checked.
 */
export const CALLBACK_PARAMETERS = {
  code: 4096,
  state: 512,
  error: 256,
  error_description: 2048,
  error_uri: 2048,
  iss: 2048,
  session_state: 2048
} as const

export type CallbackQuery = Partial<Record<keyof typeof CALLBACK_PARAMETERS, string>>

/**
 * The callback's parameters as single strings. Throws FSS_OAUTH_CALLBACK_INVALID
 * when one is given twice (RFC 6749 §3.1: parameters MUST NOT be included more
 * than once) or is longer than its limit.
 */
export function parseCallbackQuery (query: Record<string, unknown>): CallbackQuery {
  const parsed: CallbackQuery = {}
  for (const [name, limit] of Object.entries(CALLBACK_PARAMETERS) as Array<[keyof CallbackQuery, number]>) {
    if (!Object.hasOwn(query, name)) continue
    const value = query[name]
    if (typeof value !== 'string') throw new errors.FSS_OAUTH_CALLBACK_INVALID(`${name} is given more than once`)
    if (value.length > limit) throw new errors.FSS_OAUTH_CALLBACK_INVALID(`${name} is longer than ${limit} characters`)
    // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    if (value !== '') parsed[name] = value
  }
  return parsed
}
