// One Back-Channel Logout endpoint, several OpenID Connect providers: the
// token's unverified iss and aud only choose whose verifier runs; that
// verifier (the provider's own keys, exact iss and aud) decides.
import t from 'tap'
import { UnsecuredJWT } from 'jose'
import { logoutTokenDispatch, type LogoutTokenSource } from '../lib/oidc/logout-dispatch.ts'
import { MAX_JWT_CHARS } from '../lib/oidc/jwt.ts'

/** A source whose verifier records the tokens it was asked to verify and answers with its name as the jti. */
function source (name: string, issuer: string, clientId: string, maxAgeSeconds = 150): LogoutTokenSource & { seen: unknown[] } {
  const seen: unknown[] = []
  return {
    name,
    issuer,
    clientId,
    maxAgeSeconds,
    seen,
    verify: async (token) => {
      seen.push(token)
      return { iss: issuer, aud: clientId, iat: 1, jti: name, sub: 's' }
    }
  }
}

const token = (claims: Record<string, unknown>): string => new UnsecuredJWT(claims).encode()
const reasonOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'accepted', (err: { code: string, reason: string }) => `${err.code}/${err.reason}`)

t.test('no OpenID Connect provider: no dispatch', async (t) => {
  t.equal(logoutTokenDispatch([]), null)
})

t.test('one provider verifies every token itself, malformed ones included', async (t) => {
  const only = source('default', 'https://a.example', 'app')
  const dispatch = logoutTokenDispatch([only])
  for (const input of [undefined, '', 'not a jwt', token({ iss: 'https://other.example' })]) {
    t.same(await dispatch?.verify(input), { iss: 'https://a.example', aud: 'app', iat: 1, jti: 'default', sub: 's', provider: 'default' })
  }
  t.equal(only.seen.length, 4, 'each went to its verifier')
  t.equal(dispatch?.maxAgeSeconds, 150)
})

t.test('several providers: the issuer, then the audience, picks the verifier', async (t) => {
  const a = source('a', 'https://a.example', 'app', 130)
  const b = source('b', 'https://b.example', 'app', 200)
  const b2 = source('b2', 'https://b.example', 'other-client', 90)
  const dispatch = logoutTokenDispatch([a, b, b2])
  if (dispatch === null) throw new Error('a dispatch')
  t.equal(dispatch.maxAgeSeconds, 200, 'a jti is remembered as long as the longest-lived token')
  t.equal((await dispatch.verify(token({ iss: 'https://a.example', aud: 'app' }))).provider, 'a')
  t.equal((await dispatch.verify(token({ iss: 'https://b.example', aud: 'app' }))).provider, 'b')
  t.equal((await dispatch.verify(token({ iss: 'https://b.example', aud: ['x', 'other-client'] }))).provider, 'b2', 'an audience array')
  t.equal((await dispatch.verify(token({ iss: 'https://b.example', aud: 'nobody' }))).provider, 'b', 'no audience of ours: the first of that issuer verifies (and refuses the audience)')
  t.equal((await dispatch.verify(token({ iss: 'https://b.example' }))).provider, 'b', 'no audience at all: likewise')
  t.equal(a.seen.length + b.seen.length + b2.seen.length, 5)

  const refused: Array<[unknown, string]> = [
    [undefined, 'FSS_LOGOUT_TOKEN_INVALID/malformed'],
    [42, 'FSS_LOGOUT_TOKEN_INVALID/malformed'],
    ['', 'FSS_LOGOUT_TOKEN_INVALID/malformed'],
    ['a.b.c', 'FSS_LOGOUT_TOKEN_INVALID/malformed'],
    ['x'.repeat(MAX_JWT_CHARS + 1), 'FSS_LOGOUT_TOKEN_INVALID/too_large'],
    [token({ iss: 'https://a.example/', aud: 'app' }), 'FSS_LOGOUT_TOKEN_INVALID/issuer'],
    [token({ iss: 'https://A.example', aud: 'app' }), 'FSS_LOGOUT_TOKEN_INVALID/issuer'],
    [token({ aud: 'app' }), 'FSS_LOGOUT_TOKEN_INVALID/issuer'],
    [token({ iss: ['https://a.example'], aud: 'app' }), 'FSS_LOGOUT_TOKEN_INVALID/issuer']
  ]
  for (const [input, expected] of refused) t.equal(await reasonOf(dispatch.verify(input)), expected, expected)
  t.equal(a.seen.length + b.seen.length + b2.seen.length, 5, 'a refused token reaches no verifier')
  // The longest accepted token still dispatches (the verifier then judges it).
  const long = token({ iss: 'https://a.example', aud: 'app', pad: 'x'.repeat(MAX_JWT_CHARS / 4 * 3 - 200) })
  t.ok(long.length <= MAX_JWT_CHARS)
  t.equal((await dispatch.verify(long)).provider, 'a')
})
