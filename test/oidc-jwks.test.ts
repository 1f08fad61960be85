// The provider's signing keys, fetched from its real JWKS endpoint: a key
// rotation is picked up by one re-fetch, a flood of made-up key ids is not,
// and a JWKS endpoint that is down or answers garbage is a coded 502 that
// crashes nothing and is not hammered. Fetches are counted at the provider.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import FakeTimers from '@sinonjs/fake-timers'
import { startOidcServer, type OidcServer, type PathAnswer } from './fixtures/oidc-server.ts'
import { CLIENT_ID, NONCE, assertRefused, providerToken, relyingParty } from './oidc-helper.ts'
import { createRelyingParty } from '../lib/oidc/relying-party.ts'

let oidc: OidcServer
t.before(async () => { oidc = await startOidcServer() })
t.teardown(() => oidc.stop())

const jwksFetches = (server: OidcServer = oidc): number => server.requests('/jwks')

function fakeDate (t: Test): ReturnType<typeof FakeTimers.install> {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  return clock
}

/** A token signed by the provider's real key but naming a key id it never published. */
const bogusKid = (i: number): Promise<string> => providerToken(oidc, {}, { header: { kid: `bogus-${i}` } })

t.test('the first verification fetches the JWKS once; later ones use the cache', async (t) => {
  const rp = await relyingParty(oidc)
  t.same(rp.jwksState(), { uri: `${oidc.issuer}/jwks`, fetches: 0, failures: 0, lastFetchAt: null, keyCount: 0, lastFailure: null }, 'start-up fetches no keys')
  const before = jwksFetches()
  const tokens = await Promise.all([1, 2, 3].map(() => providerToken(oidc)))
  await Promise.all(tokens.map((token) => rp.verifyIdToken(token, { nonce: NONCE })))
  await rp.verifyIdToken(tokens[0], { nonce: NONCE })
  t.equal(jwksFetches() - before, 1, 'three concurrent verifications and a later one: one fetch')
  const state = rp.jwksState()
  t.equal(state.fetches, 1)
  t.equal(state.keyCount, 1)
  t.type(state.lastFetchAt, 'number')
})

t.test('a key rotation at the provider is picked up with exactly one re-fetch', async (t) => {
  const provider = await startOidcServer()
  t.teardown(() => provider.stop())
  const clock = fakeDate(t)
  const rp = await relyingParty(provider)
  await rp.verifyIdToken(await providerToken(provider), { nonce: NONCE })
  t.equal(jwksFetches(provider), 1)

  const next = await provider.service.issuer.keys.generate('RS256')
  const rotated = await providerToken(provider, {}, { kid: next.kid })
  // Past the cooldown that follows the last fetch, an unknown kid may fetch once.
  clock.tick(31_000)
  const claims = await rp.verifyIdToken(rotated, { nonce: NONCE })
  t.equal(claims.sub, 'user-1', 'the token signed with the new key verifies')
  t.equal(jwksFetches(provider), 2, 'one re-fetch')
  await rp.verifyIdToken(rotated, { nonce: NONCE })
  await rp.verifyIdToken(await providerToken(provider, {}, { kid: next.kid }), { nonce: NONCE })
  t.equal(jwksFetches(provider), 2, 'the new key is cached')
  t.equal(rp.jwksState().keyCount, 2)

  // Two published keys and a token naming neither: jose cannot choose.
  const noKid = await providerToken(provider, {}, { header: { kid: undefined } })
  await assertRefused(t, rp.verifyIdToken(noKid, { nonce: NONCE }), 'FSS_ID_TOKEN_INVALID', 'ambiguous_key', [noKid])
})

t.test('a flood of 50 made-up key ids causes at most one extra JWKS fetch', async (t) => {
  const clock = fakeDate(t)
  const rp = await relyingParty(oidc)
  await rp.verifyIdToken(await providerToken(oidc), { nonce: NONCE })
  const before = jwksFetches()
  const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => bogusKid(i)))

  // Within the cooldown after the first fetch: no fetch at all.
  for (const token of tokens.slice(0, 10)) {
    await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_ID_TOKEN_INVALID', 'unknown_key', [token])
  }
  t.equal(jwksFetches() - before, 0, 'inside the cooldown an unknown kid fetches nothing')

  // Past it: the first unknown kid re-fetches, the other 39 (concurrent and then sequential) do not.
  clock.tick(31_000)
  const concurrent = await Promise.allSettled(tokens.slice(10, 30).map((token) => rp.verifyIdToken(token, { nonce: NONCE })))
  t.ok(concurrent.every((r) => r.status === 'rejected' && (r.reason as { reason?: string }).reason === 'unknown_key'), '20 concurrent refused as unknown_key')
  for (const token of tokens.slice(30)) {
    await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_ID_TOKEN_INVALID', 'unknown_key', [token])
  }
  t.equal(jwksFetches() - before, 1, '50 made-up key ids: one extra fetch')
  t.equal((await rp.verifyIdToken(await providerToken(oidc), { nonce: NONCE })).sub, 'user-1', 'real tokens still verify')
})

t.test('a JWKS endpoint that is down is a coded 502, then a backoff, then a retry', async (t) => {
  const clock = fakeDate(t)
  // A port that was just closed: connection refused.
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))

  const rp = await createRelyingParty({ issuer: oidc.issuer, clientId: CLIENT_ID, jwksUri: `http://127.0.0.1:${port}/jwks?tenant=secret-query`, timeout: 2000 })
  const token = await providerToken(oidc)
  const err = await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'unreachable', [token])
  t.equal(err.statusCode, 502)
  const state = rp.jwksState()
  t.equal(state.uri, `http://127.0.0.1:${port}/jwks`, 'the shown URL has no query')
  t.match(state, { fetches: 1, failures: 1, keyCount: 0, lastFetchAt: null, lastFailure: { code: 'FSS_JWKS_UNAVAILABLE', reason: 'unreachable' } })

  await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'backoff', [token])
  t.equal(rp.jwksState().fetches, 1, 'inside the backoff nothing is fetched')
  clock.tick(5_001)
  await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'unreachable', [token])
  t.equal(rp.jwksState().fetches, 2, 'after the backoff one new try')
})

t.test('a JWKS endpoint answering garbage is a coded 502 with its reason, and the next good answer heals it', async (t) => {
  const big = JSON.stringify({ keys: [{ kty: 'oct', k: 'x'.repeat(600 * 1024) }] })
  const cases: Array<[string, PathAnswer, string, number?]> = [
    ['an HTML error page', { status: 200, body: '<html>oops</html>', contentType: 'text/html' }, 'not_json'],
    ['HTTP 500', { status: 500, body: '{"error":"server_error"}' }, 'http_status'],
    ['a redirect (not followed)', { status: 302, body: '' }, 'http_status'],
    ['JSON that is not a key set', { body: '{"keys":"none"}' }, 'invalid'],
    ['a key set with a non-object key', { body: '{"keys":[1]}' }, 'invalid'],
    ['a JSON array', { body: '[]' }, 'invalid'],
    ['over 512 KiB', { body: big }, 'too_large'],
    ['a dropped connection', { reset: true }, 'unreachable'],
    ['no answer within the timeout', { hang: true }, 'timeout', 200]
  ]
  for (const [name, answer, reason, timeout] of cases) {
    await t.test(name, async (t) => {
      const clock = fakeDate(t)
      oidc.answerPath('/jwks', answer)
      t.teardown(() => oidc.answerPath('/jwks', null))
      const rp = await relyingParty(oidc, timeout === undefined ? {} : { timeout })
      const token = await providerToken(oidc)
      await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', reason, [token])
      t.match(rp.jwksState(), { failures: 1, lastFailure: { reason } })
      oidc.answerPath('/jwks', null)
      clock.tick(5_001)
      t.equal((await rp.verifyIdToken(token, { nonce: NONCE })).sub, 'user-1', 'the endpoint answers again: verified')
      t.match(rp.jwksState(), { fetches: 2, failures: 1, lastFailure: null, keyCount: 1 })
    })
  }
})

t.test('a JWKS publishing private or symmetric keys is refused whole, not used', async (t) => {
  const clock = fakeDate(t)
  const rp = await relyingParty(oidc)
  const token = await providerToken(oidc)
  await rp.verifyIdToken(token, { nonce: NONCE })
  const privateSet = JSON.stringify({ keys: oidc.service.issuer.keys.toJSON(true) })
  const d = (JSON.parse(privateSet) as { keys: Array<{ d: string }> }).keys[0].d
  oidc.answerPath('/jwks', { body: privateSet })
  t.teardown(() => oidc.answerPath('/jwks', null))
  clock.tick(31_000)
  const err = await assertRefused(t, rp.verifyIdToken(await bogusKid(1), { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'invalid')
  t.notOk(`${err.message}${JSON.stringify(rp.jwksState())}`.includes(d), 'no key material in the error or the state')
  t.match(rp.jwksState(), { fetches: 2, failures: 1, keyCount: 1, lastFailure: { reason: 'invalid' } })
  t.equal((await rp.verifyIdToken(token, { nonce: NONCE })).sub, 'user-1', 'the good set in use is kept')

  oidc.answerPath('/jwks', { body: JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0LXNoYXJlZC1rZXk' }] }) })
  const fresh = await relyingParty(oidc)
  await assertRefused(t, fresh.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'invalid', [token])
})

t.test('a published key that cannot be imported (no modulus) is a coded 502 that /health sees', async (t) => {
  const kid = (oidc.service.issuer.keys.toJSON()[0] as { kid: string }).kid
  oidc.answerPath('/jwks', { body: JSON.stringify({ keys: [{ kty: 'RSA', kid, alg: 'RS256', use: 'sig', e: 'AQAB' }] }) })
  t.teardown(() => oidc.answerPath('/jwks', null))
  const rp = await relyingParty(oidc)
  const token = await providerToken(oidc)
  await assertRefused(t, rp.verifyIdToken(token, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'invalid', [token])
  t.match(rp.jwksState(), { fetches: 1, failures: 1, keyCount: 1, lastFailure: { code: 'FSS_JWKS_UNAVAILABLE', reason: 'invalid' } })
})

t.test('while the endpoint fails, fresh keys keep verifying and stale keys are not used', async (t) => {
  const clock = fakeDate(t)
  const rp = await relyingParty(oidc)
  const good = await providerToken(oidc)
  await rp.verifyIdToken(good, { nonce: NONCE })
  oidc.answerPath('/jwks', { status: 503, body: '' })
  t.teardown(() => oidc.answerPath('/jwks', null))

  clock.tick(31_000)
  const bogus = await bogusKid(1)
  await assertRefused(t, rp.verifyIdToken(bogus, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'http_status', [bogus])
  const fetches = jwksFetches()
  t.equal((await rp.verifyIdToken(good, { nonce: NONCE })).sub, 'user-1', 'a known key still verifies during the backoff')
  await assertRefused(t, rp.verifyIdToken(await bogusKid(2), { nonce: NONCE }), 'FSS_ID_TOKEN_INVALID', 'unknown_key')
  t.equal(jwksFetches(), fetches, 'and nothing is fetched during the backoff')

  // Ten minutes on, the cached set is stale: it must be fetched, and that fails.
  clock.tick(600_000)
  const late = await providerToken(oidc)
  await assertRefused(t, rp.verifyIdToken(late, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'http_status', [late])
  await assertRefused(t, rp.verifyIdToken(late, { nonce: NONCE }), 'FSS_JWKS_UNAVAILABLE', 'backoff', [late])
  t.equal(jwksFetches(), fetches + 1, 'one fetch, then the backoff')
})

t.test('the JWKS state shows counts and times, never keys or key ids', async (t) => {
  const rp = await relyingParty(oidc)
  await rp.verifyIdToken(await providerToken(oidc), { nonce: NONCE })
  const state = rp.jwksState()
  t.same(Object.keys(state).sort(), ['failures', 'fetches', 'keyCount', 'lastFailure', 'lastFetchAt', 'uri'])
  const text = JSON.stringify(state)
  for (const key of oidc.service.issuer.keys.toJSON() as Array<{ kid: string, n: string }>) {
    t.notOk(text.includes(key.kid), 'no key id')
    t.notOk(text.includes(key.n.slice(0, 16)), 'no modulus')
  }
  state.fetches = 99
  t.equal(rp.jwksState().fetches, 1, 'a copy: the caller cannot change the counters')
})
