// A type test, checked by `npx tsc --noEmit` (tsconfig includes test/) and
// never run: a consumer's session fields and the token API are typed without
// a cast, and each `@ts-expect-error` line proves a wrong use fails to compile
// (an unused expect-error is itself an error).
import Fastify from 'fastify'
import sessionSuite, { type StoredToken, type TokenMetadata, type HealthCheckResult, type SessionSuiteOptions } from '../../index.ts'

// What a service writes once to type its session (a service names the package,
// `declare module 'fastify-session-suite'`; test/pack.test.ts checks that form
// against the packed tarball).
declare module '../../index.ts' {
  interface SessionData {
    typeTestCart?: { items: string[], updatedAt: number }
  }
}

export async function consumer (): Promise<unknown> {
  const app = Fastify()
  await app.register(sessionSuite, { appName: 'shop', session: { idleTimeout: 3600, sameSite: 'strict' }, debug: { allow: ['10.0.0.0/8'] } })

  app.get('/cart', async (request) => {
    const cart = request.session.get('typeTestCart')
    const items: string[] = cart?.items ?? []
    request.session.set('typeTestCart', { items: [...items, 'book'], updatedAt: Date.now() })
    // @ts-expect-error items are strings
    request.session.set('typeTestCart', { items: [1], updatedAt: 0 })
    // @ts-expect-error updatedAt is required in the field's type
    request.session.set('typeTestCart', { items: [] })
    // @ts-expect-error a cart is not a number
    const n: number = request.session.get('typeTestCart')

    const meta: TokenMetadata | null = await request.tokens.metadata()
    const expiresAt: number | undefined = meta?.expiresAt
    const bearer: string = await request.tokens.accessToken()
    const stored: StoredToken = await request.tokens.store({ access_token: 'a', token_type: 'Bearer' })
    await request.tokens.clear()
    // @ts-expect-error metadata() may be null: check before use
    const scopes: string[] = meta.scopes
    // @ts-expect-error accessToken() is the value only, not the stored token
    const whole: StoredToken = await request.tokens.accessToken()
    // @ts-expect-error there is no way to read the refresh token
    await request.tokens.refreshToken()
    return { items, expiresAt, bearer: bearer.length, type: stored.token_type, n, scopes, whole }
  })

  const fingerprint: string = app.secretKeys.fingerprint
  const cookieName: string = app.sessionInfo.policy.cookieName
  const provider: string | null = app.oauthInfo.provider
  app.sessionSuiteHealth.add('cache', (): HealthCheckResult => ({ status: 'pass', detail: `${fingerprint} ${cookieName} ${provider}` }))
  // @ts-expect-error a check answers pass, warn or fail
  app.sessionSuiteHealth.add('bad', () => ({ status: 'ok', detail: '' }))

  // @ts-expect-error SameSite values are lower case
  const badSameSite: SessionSuiteOptions = { session: { sameSite: 'Lax' } }
  // @ts-expect-error debug is a boolean or an object
  const badDebug: SessionSuiteOptions = { debug: 'yes' }
  // @ts-expect-error unknown options are refused at compile time too
  const typo: SessionSuiteOptions = { debgu: true }
  return [badSameSite, badDebug, typo]
}
