// A cookie sealed by release 0.1.0 (test/fixtures/legacy-session.ts) opens
// with every field a user had in it: the service's own field, the OAuth tokens
// (cookie store), the Redis store's reference, the CSRF secret and the debug
// nonce; and it keeps them when the session is next written.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from './helper.ts'
import { startRedis } from './fixtures/redis-server.ts'
import { LEGACY_SESSION as LEGACY } from './fixtures/legacy-session.ts'
import session from '../plugins/session.ts'
import secretKeys from '../plugins/secret-keys.ts'
import csrf from '../plugins/csrf.ts'
import oauthTokens from '../plugins/oauth-tokens.ts'
import redisTokenStore from '../plugins/redis-token-store.ts'
import debug from '../routes/debug.ts'

const key = Buffer.from(LEGACY.key, 'base64url')
const OAUTH = {
  provider: { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
  clientId: 'legacy',
  clientSecret: '',
  callbackUri: 'http://127.0.0.1:9/callback',
  hostPrefixedCookies: false
}

/** A minute after the cookie was sealed: well inside its idle timeout and its token's lifetime. */
function clock (t: Test): void {
  const c = FakeTimers.install({ toFake: ['Date'], now: LEGACY.sealedAt + 60_000 })
  t.teardown(() => c.uninstall())
}

function routes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({
    cart: request.session.get('cart' as never) ?? null,
    meta: await request.tokens.metadata(),
    sameAccessToken: (await request.tokens.accessToken()) === LEGACY.token.access_token
  }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  app.get('/fields', async (request) => Object.keys(request.session.data() ?? {}).sort())
  app.post('/cart', async (request) => {
    request.session.set('cart' as never, { items: ['book', 'pen'] } as never)
    return {}
  })
}

const cookieOf = (res: LightMyRequestResponse): string | undefined => res.cookies.find((c) => c.name === LEGACY.cookieName)?.value

t.test('a 0.1.0 cookie keeps its tokens, CSRF secret, debug nonce and service fields (cookie token store)', async (t) => {
  clock(t)
  const app = await build(t)
  await app.register(session, { key, secure: false })
  await app.register(csrf)
  await app.register(oauthTokens, OAUTH)
  await app.register(debug)
  routes(app)
  await app.ready()

  const check = async (cookie: string, cart: unknown, label: string): Promise<void> => {
    const cookies = { [LEGACY.cookieName]: cookie }
    const read = await app.inject({ url: '/read', cookies })
    t.equal(read.statusCode, 200, label)
    t.same(read.json().cart, cart, `${label}: the service's own field`)
    t.match(read.json().meta, { hasRefreshToken: true, scopes: ['openid', 'profile'], expired: false }, `${label}: the stored tokens`)
    t.equal(read.json().sameAccessToken, true, `${label}: the same access token`)
    const transfer = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': LEGACY.csrfToken } })
    t.equal(transfer.statusCode, 200, `${label}: a CSRF token issued for it still passes`)
    const nonce = await app.inject({ url: `/api/session/test-persistence?nonce=${LEGACY.persistenceNonce}`, cookies })
    t.match(nonce.json(), { persisted: true, matches: true }, `${label}: the debug nonce`)
    // The suite's fields now sit under its one key; the CSRF secret keeps its configurable name.
    t.same((await app.inject({ url: '/fields', cookies })).json(), ['_csrf', 'cart', 'fss'], `${label}: no suite field left at the top level`)
  }

  await check(LEGACY.cookie, LEGACY.cart, 'as sealed')
  // Written again by this release: nothing of the old session is lost on the way.
  const rewritten = cookieOf(await app.inject({ method: 'POST', url: '/cart', cookies: { [LEGACY.cookieName]: LEGACY.cookie } }))
  t.ok(rewritten !== undefined && rewritten !== LEGACY.cookie, 'the session was re-issued')
  await check(rewritten as string, { items: ['book', 'pen'] }, 're-issued')
})

t.test('a 0.1.0 cookie keeps its Redis token reference', async (t) => {
  clock(t)
  const redis = await startRedis(t)
  const app = await build(t)
  await app.register(secretKeys, { env: { SESSION_SECRET_KEY: LEGACY.key } })
  await app.register(session, { secure: false })
  await app.register(redisTokenStore, { url: redis.url, keyPrefix: 'legacy:' })
  const { store } = app.redisTokenStore
  await app.register(oauthTokens, { ...OAUTH, store })
  app.post('/store', async (request) => {
    await request.tokens.store(LEGACY.token)
    return {}
  })
  routes(app)
  await app.ready()

  const cookies = { [LEGACY.cookieName]: LEGACY.cookie }
  t.equal((await app.inject({ url: '/read', cookies })).statusCode, 401, 'no record in this Redis yet: FSS_TOKEN_MISSING')
  // The store writes the record under the reference it finds in the session: the cookie's own.
  const stored = await app.inject({ method: 'POST', url: '/store', cookies })
  t.equal(stored.statusCode, 200)
  // Opened with the keyring's own key, the cookie is re-sealed under this application's derived key, as after a rotation.
  const resealed = cookieOf(stored)
  t.type(resealed, 'string', 're-sealed under the derived key')
  const read = await app.inject({ url: '/read', cookies })
  t.equal(read.statusCode, 200, 'the unchanged 0.1.0 cookie finds the record')
  t.equal(read.json().sameAccessToken, true)
  const again = await app.inject({ url: '/read', cookies: { [LEGACY.cookieName]: resealed as string } })
  t.equal(again.statusCode, 200, 'the re-sealed cookie keeps the same reference and finds the record')
  t.equal(again.json().sameAccessToken, true)
})
