// The refresh coordinator's rules, each pinned against the real OIDC server:
// a replacement is recognised by its refresh token, chains are followed at
// most 32 steps, replaced and used-up refresh tokens are remembered for a day
// and at most 10 000 of each, and the fields a refresh answer brings win over
// the old ones. Driven through the plugin's own simple-oauth2 client.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { startOAuthApp } from './fixtures/oauth-app.ts'
import { normalizeToken, type StoredToken } from '../lib/oauth/token.ts'
import { refreshGrant, type TokenClient } from '../lib/oauth/raw-answer.ts'
import { classifyTokenEndpointError } from '../lib/oauth/provider-errors.ts'
import { RefreshCoordinator, isRefreshTokenSpent, MAX_REMEMBERED, MAX_REPLACEMENT_CHAIN, SPENT_MEMORY_MS } from '../lib/oauth/refresh.ts'

let oidc: OidcServer
let client: TokenClient
t.before(async () => {
  oidc = await startOidcServer()
  const { app } = await startOAuthApp(t, oidc)
  client = (app as unknown as { fssOAuth2: { oauth2: TokenClient } }).fssOAuth2.oauth2
})
t.teardown(() => oidc.stop())

/** The refresh_token of each refresh call, in order. */
function sentRefreshTokens (t: Test): string[] {
  const sent: string[] = []
  const listener = (_r: unknown, req: { body: Record<string, string> }): void => {
    if (req.body.grant_type === 'refresh_token') sent.push(req.body.refresh_token)
  }
  oidc.service.on('beforeResponse', listener)
  t.teardown(() => { oidc.service.off('beforeResponse', listener) })
  return sent
}

function coordinator (opts: { maxEntries?: number, backoffMs?: number } = {}): RefreshCoordinator {
  return new RefreshCoordinator({
    async call (refreshToken) {
      try {
        return await refreshGrant(client, refreshToken)
      } catch (err) {
        throw classifyTokenEndpointError(err, 'refresh_token')
      }
    },
    normalize: (raw) => normalizeToken(raw, { assumedLifetime: 3600 }),
    backoffMs: opts.backoffMs ?? 5000,
    ...opts
  })
}

let n = 0
function expired (extra: Partial<StoredToken> = {}): StoredToken & { refresh_token: string } {
  n++
  return { access_token: `rules-access-${n}`, token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) - 1, refresh_token: `rules-refresh-${n}`, ...extra }
}
const withRefresh = (token: StoredToken): StoredToken & { refresh_token: string } => token as StoredToken & { refresh_token: string }

t.test('the bounds, by value', async (t) => {
  t.equal(MAX_REPLACEMENT_CHAIN, 32)
  t.equal(MAX_REMEMBERED, 10_000)
  t.equal(SPENT_MEMORY_MS, 86_400_000, 'a day')
})

t.test('a rotated refresh token is replaced even when the provider hands back the same access token', async (t) => {
  const c = coordinator()
  const old = expired()
  const sent = sentRefreshTokens(t)
  // Two JWTs minted in the same second can be identical: the provider rotated the refresh token only.
  oidc.substitute({ patch: (body) => { body.access_token = old.access_token } })
  const fresh = await c.refresh(old)
  t.equal(fresh.access_token, old.access_token)
  t.not(fresh.refresh_token, old.refresh_token, 'rotated')
  t.equal(c.replaced(old), fresh, 'the old pair is replaced')
  t.equal(c.counters.shared, 1, 'counted as served by a refresh already made')
  t.equal(c.replaced(fresh), null, 'the newest pair is not')
  t.equal(c.counters.shared, 1, 'a lookup that finds nothing is not counted')
  t.equal(await c.refresh(old), fresh, 'a refresh of the old pair answers the replacement')
  t.same(sent, [old.refresh_token], 'the old refresh token was sent once')
})

t.test('a provider that does not rotate: the older access token is replaced, the newest pair refreshes again', async (t) => {
  const c = coordinator()
  const old = expired()
  const sent = sentRefreshTokens(t)
  oidc.substitute({ patch: (body) => { delete body.refresh_token } })
  const fresh = withRefresh(await c.refresh(old))
  t.equal(fresh.refresh_token, old.refresh_token, 'the old refresh token is kept (RFC 6749 §6)')
  t.equal(c.replaced(old), fresh)
  t.equal(c.replaced(fresh), null)
  const again = await c.refresh(fresh)
  t.not(again.refresh_token, fresh.refresh_token, 'a real refresh (this answer rotates)')
  t.same(sent, [old.refresh_token, old.refresh_token])
})

t.test('a chain of replacements is followed exactly 32 steps', async (t) => {
  const c = coordinator()
  const chain: StoredToken[] = [expired()]
  for (let i = 1; i <= 40; i++) chain.push(await c.refresh(withRefresh(chain[i - 1])))
  t.equal(new Set(chain.map((tok) => tok.refresh_token)).size, 41, '41 distinct refresh tokens')
  t.equal(c.replaced(chain[0]), chain[32], 'from the first pair: 32 steps, no further')
  t.equal(c.replaced(chain[7]), chain[39])
  t.equal(c.replaced(chain[8]), chain[40], 'exactly 32 steps reach the newest')
  t.equal(c.replaced(chain[40]), null)
})

t.test('a rotation cycle (R0 → R1 → R0) ends after 32 steps instead of looping', async (t) => {
  const c = coordinator()
  const start = expired()
  const r0 = start.refresh_token
  const r1 = `${r0}-next`
  oidc.substitute({ patch: (body) => { body.refresh_token = r1 } })
  const t1 = await c.refresh(start)
  // Another session holding R1 refreshes; the provider answers with R0 again.
  oidc.substitute({ patch: (body) => { body.refresh_token = r0 } })
  const t2 = await c.refresh(expired({ refresh_token: r1 }))
  // R0 → t1 (R1) → t2 (R0) → t1 …: after 32 (an even number of) steps, t2.
  t.equal(c.replaced(start), t2)
  t.equal(c.replaced(t1), t1, 'from R1: 32 steps end on t1')
})

t.test('a replacement is remembered for a day, also after its own access token expired', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const c = coordinator()
  const old = expired()
  const fresh = await c.refresh(old)
  clock.tick(2 * 3600_000)
  t.ok(fresh.expires_at * 1000 < Date.now(), 'the replacement itself has expired')
  t.equal(c.replaced(old), fresh, 'still handed out (the caller then refreshes with its refresh token, never the old one)')
  clock.tick(SPENT_MEMORY_MS - 2 * 3600_000 - 1)
  t.equal(c.replaced(old), fresh, 'a day less 1 ms after the refresh')
  clock.tick(1)
  t.equal(c.replaced(old), null, 'exactly a day after: forgotten')
})

t.test('a used-up refresh token answers its error without a call for a day', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const c = coordinator({ backoffMs: 5000 })
  const old = expired()
  const sent = sentRefreshTokens(t)
  oidc.substitute({ patch: (body) => { body.token_type = 'DPoP' } })
  const first = await c.refresh(old).catch((err: unknown) => err)
  t.equal((first as { code?: string }).code, 'FSS_TOKEN_INVALID')
  t.ok(isRefreshTokenSpent(first), 'the error says the refresh token is used up')
  clock.tick(SPENT_MEMORY_MS - 1)
  const later = await c.refresh(old).catch((err: unknown) => err)
  t.equal((later as { code?: string }).code, 'FSS_TOKEN_INVALID')
  t.ok(isRefreshTokenSpent(later), 'a day less 1 ms later: still used up, so the caller clears its copy')
  t.equal((later as Error).message, 'Token rejected: the refresh answer was unusable (the answer used up the refresh token)', 'the answer shown says why no call was made')
  t.equal(c.counters.backedOff, 1)
  t.same(sent, [old.refresh_token], 'no second call')
  clock.tick(1)
  await c.refresh(old)
  t.same(sent, [old.refresh_token, old.refresh_token], 'a day later the memory of it is gone')
})

t.test('a failure that did not use the refresh token up is not spent, and is retried after the backoff', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const c = coordinator({ backoffMs: 5000 })
  const old = expired()
  oidc.substitute({ status: 503, json: { error: 'temporarily_unavailable' } })
  const first = await c.refresh(old).catch((err: unknown) => err)
  t.equal((first as { code?: string }).code, 'FSS_TOKEN_PROVIDER_ERROR')
  t.notOk(isRefreshTokenSpent(first))
  clock.tick(4999)
  const backedOff = await c.refresh(old).catch((err: unknown) => err) as Error & { code: string }
  t.notOk(isRefreshTokenSpent(backedOff), 'the backoff answer is not spent either')
  t.equal(backedOff.code, 'FSS_TOKEN_PROVIDER_ERROR')
  t.equal(backedOff.message, 'The OAuth provider failed: the refresh failed (retrying after the backoff window)', 'the answer shown says why no call was made')
  clock.tick(1)
  t.ok((await c.refresh(old)).access_token, 'retried once the backoff has passed')
})

t.test('each map remembers at most maxEntries, the oldest going first', async (t) => {
  const c = coordinator({ maxEntries: 2 })
  const pairs = [expired(), expired(), expired()]
  const fresh: StoredToken[] = []
  for (const pair of pairs.slice(0, 2)) fresh.push(await c.refresh(pair))
  t.equal(c.replaced(pairs[0]), fresh[0], 'two entries: both remembered')
  t.equal(c.replaced(pairs[1]), fresh[1])
  fresh.push(await c.refresh(pairs[2]))
  t.equal(c.replaced(pairs[0]), null, 'the third pushed the oldest out')
  t.equal(c.replaced(pairs[1]), fresh[1])
  t.equal(c.replaced(pairs[2]), fresh[2])

  // The failure map the same way: the forgotten failure is asked again, the others are not.
  const failing = [expired(), expired(), expired()]
  const sent = sentRefreshTokens(t)
  for (const pair of failing) {
    oidc.substitute({ status: 400, json: { error: 'invalid_grant' } })
    await c.refresh(pair).catch(() => {})
  }
  t.equal(sent.length, 3)
  await c.refresh(failing[2]).catch(() => {})
  await c.refresh(failing[1]).catch(() => {})
  t.equal(sent.length, 3, 'the two newest failures answer from memory')
  oidc.substitute({ status: 400, json: { error: 'invalid_grant' } })
  await c.refresh(failing[0]).catch(() => {})
  t.equal(sent.length, 4, 'the oldest was forgotten')
})

t.test('the fields a refresh answer brings win: a narrower scope, a new id_token, a new refresh token', async (t) => {
  const c = coordinator()
  const old = expired({ scope: 'openid profile email', id_token: 'old-id-token' })
  let issued: Record<string, unknown> = {}
  oidc.substitute({ patch: (body) => { body.scope = 'openid'; issued = { ...body } } })
  const fresh = await c.refresh(old)
  t.equal(fresh.scope, 'openid', 'the narrower scope, not the old one')
  t.equal(fresh.id_token, issued.id_token, 'the new id_token')
  t.not(fresh.id_token, 'old-id-token')
  t.equal(fresh.refresh_token, issued.refresh_token, 'the new refresh token')

  // Fields the answer leaves out are kept (RFC 6749 §5.1 / §6).
  const other = expired({ scope: 'openid profile', id_token: 'kept-id-token' })
  oidc.substitute({ patch: (body) => { delete body.scope; delete body.id_token; delete body.refresh_token } })
  const kept = await c.refresh(other)
  t.same([kept.scope, kept.id_token, kept.refresh_token], ['openid profile', 'kept-id-token', other.refresh_token])

  // Neither the old pair nor the answer has a scope or an id_token: the token a store is handed has
  // no such key at all (a store that writes undefined as null would read back a token that fails isStoredToken).
  oidc.substitute({ patch: (body) => { delete body.scope; delete body.id_token } })
  const bare = await c.refresh(expired())
  t.same(Object.keys(bare).sort(), ['access_token', 'expires_at', 'expires_in', 'refresh_token', 'token_type'])
})
