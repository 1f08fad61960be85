// The package as a user meets it: `npm pack`, then fresh consumer projects
// that install the tarball with npm and with pnpm. It ships only what a
// consumer needs; a sessions-only service runs without any Redis client;
// `redis` without ioredis is a coded error until `npm install ioredis`; and a
// TypeScript service type-checks against the published declarations
// (skipLibCheck: false), including @ts-expect-error lines for wrong uses.
// Slow (installs and two full type-checks), so it is one file, bounded.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile, access } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint } from '../lib/digest.ts'
import { tempDir } from './helper.ts'
import { startRedis } from './fixtures/redis-server.ts'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const pnpm = join(root, 'node_modules', '.bin', 'pnpm')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const big = { maxBuffer: 32 * 1024 * 1024 }
// Installs and type-checks of a few tens of seconds each, longer on a busy CI machine.
t.setTimeout(900_000)

/** Every file under `dir` (relative, `/`-separated). */
async function listFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
}

const sessionsOnly = `
import Fastify from 'fastify'
import sessionSuite from 'fastify-session-suite'
const app = Fastify()
await app.register(sessionSuite, { secret: { env: { SESSION_SECRET_KEY: process.argv[2] } } })
app.get('/visit', async (request) => {
  const visits = (request.session.get('visits') ?? 0) + 1
  request.session.set('visits', visits)
  return { visits }
})
const first = await app.inject({ url: '/visit' })
const second = await app.inject({ url: '/visit', cookies: Object.fromEntries(first.cookies.map((c) => [c.name, c.value])) })
console.log(JSON.stringify({ fingerprint: app.secretKeys.fingerprint, source: app.secretKeys.source, visits: second.json().visits }))
await app.close()
`

// Explicit endpoints: nothing is fetched at start-up, so no provider is needed to register.
const withRedis = `
import Fastify from 'fastify'
import sessionSuite from 'fastify-session-suite'
const app = Fastify()
try {
  await app.register(sessionSuite, {
    secret: { env: { SESSION_SECRET_KEY: process.argv[2] } },
    oauth: {
      provider: { authorizeUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
      clientId: 'pack-test', clientSecret: '', callbackUri: 'http://127.0.0.1:9/callback'
    },
    redis: { url: process.argv[3] }
  })
  await app.ready()
  console.log(JSON.stringify(await app.redisTokenStore.health()))
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }))
} finally {
  await app.close()
}
`

// A service's TypeScript, checked against the published declarations only.
const consumerTs = `
import Fastify from 'fastify'
import sessionSuite, { healthRegistry, errors, type HealthCheckResult, type SecretKeyInfo, type SessionSuiteOptions, type StoredToken, type TokenMetadata } from 'fastify-session-suite'

// A service types its session fields on the suite's own interface.
declare module 'fastify-session-suite' {
  interface SessionData {
    cart?: { items: string[], updatedAt: number }
  }
}

export async function service (): Promise<unknown> {
  const app = Fastify()
  await app.register(sessionSuite, { appName: 'shop', csrf: true, session: { idleTimeout: 3600, sameSite: 'strict' } })

  app.get('/cart', async (request, reply) => {
    const cart = request.session.get('cart')
    const items: string[] = cart?.items ?? []
    request.session.set('cart', { items: [...items, 'book'], updatedAt: Date.now() })
    // @ts-expect-error items are strings
    request.session.set('cart', { items: [1], updatedAt: 0 })
    // @ts-expect-error updatedAt is required by the declared field
    request.session.set('cart', { items: [] })
    // @ts-expect-error a cart is not a number
    const n: number = request.session.get('cart')
    request.session.regenerate()

    const meta: TokenMetadata | null = await request.tokens.metadata()
    const bearer: string = await request.tokens.accessToken()
    // @ts-expect-error accessToken() is the value only, not the stored token
    const whole: StoredToken = await request.tokens.accessToken()
    // @ts-expect-error there is no way to read the refresh token
    await request.tokens.refreshToken()
    const csrfToken: string = reply.generateCsrf()
    return { items, n, meta, bearer, whole, csrfToken }
  })
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ ok: true }))

  const keys: SecretKeyInfo = app.secretKeys
  const cookieName: string = app.sessionInfo.policy.cookieName
  const provider: string | null = app.oauthInfo.provider
  healthRegistry(app).add('db', (): HealthCheckResult => ({ status: 'pass', detail: keys.fingerprint + cookieName + String(provider) }))
  // @ts-expect-error a check answers pass, warn or fail
  app.sessionSuiteHealth.add('bad', () => ({ status: 'ok', detail: '' }))
  // @ts-expect-error the key bytes are not on any decorator
  const bytes: Buffer[] = app.secretKeys.keys
  const status: string = (await app.redisTokenStore.health()).status
  const code: string = new errors.FSS_TOKEN_MISSING().code

  // @ts-expect-error SameSite values are lower case
  const badSameSite: SessionSuiteOptions = { session: { sameSite: 'Lax' } }
  // @ts-expect-error unknown options are refused at compile time too
  const typo: SessionSuiteOptions = { debgu: true }
  return [bytes, status, code, badSameSite, typo]
}
`

const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    // The published declarations are checked as well, not only the consumer's file.
    skipLibCheck: false,
    noEmit: true,
    types: ['node']
  },
  files: ['service.ts']
}

async function project (dir: string): Promise<void> {
  await mkdir(dir)
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
  await writeFile(join(dir, 'service.ts'), consumerTs)
  await writeFile(join(dir, 'sessions-only.mjs'), sessionsOnly)
  await writeFile(join(dir, 'with-redis.mjs'), withRedis)
}

async function typeCheck (dir: string): Promise<{ code: number, output: string }> {
  return await run(process.execPath, [tsc, '-p', dir], { cwd: dir, ...big }).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (err: { code: number, stdout: string, stderr: string }) => ({ code: err.code, output: err.stdout + err.stderr })
  )
}

let tmp: string
let tarball: string
let packed: string[]
t.before(async () => {
  tmp = await tempDir(t, 'fss-pack-')
  // prepack runs `npm run build` (dist/ removed first), so this also proves dist/ builds from a clean tree.
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, ...big })
  // npm prints the prepack script's output before the JSON.
  const [report] = JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as Array<{ filename: string, files: Array<{ path: string }> }>
  tarball = join(tmp, report.filename)
  packed = report.files.map((f) => f.path).sort()
})

t.test('the tarball holds only what a consumer needs: built code, declarations, README, LICENSE, CHANGELOG', async (t) => {
  const sources = (await Promise.all(['plugins', 'routes', 'lib', 'bin'].map(async (dir) =>
    (await listFiles(join(root, dir))).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`)))).flat()
  const built = ['index.ts', ...sources].flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.d.ts')}`])
  t.same(packed, ['CHANGELOG.md', 'LICENSE', 'README.md', ...built, 'package.json'].sort(), 'exactly the built sources and the three documents')
  t.notOk(packed.some((f) => f.endsWith('.map')), 'no source maps (their .ts sources are not shipped)')
})

t.test('npm: a sessions-only service runs with no Redis client installed; redis needs `npm install ioredis`, then works', async (t) => {
  const consumer = join(tmp, 'npm-consumer')
  await project(consumer)
  // The consumer installs fastify itself (a peer dependency), as a user registering a plugin would.
  await run(npm, ['install', tarball, 'fastify@5', '@types/node@20', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: consumer, ...big })
  await t.rejects(access(join(consumer, 'node_modules', 'ioredis')), 'no Redis client in the tree')
  const installed = join(consumer, 'node_modules', 'fastify-session-suite')
  await t.rejects(access(join(installed, 'node_modules', 'fastify')), 'no second copy of fastify under the suite')
  for (const file of (await listFiles(join(installed, 'dist'))).filter((f) => f.endsWith('.js'))) {
    if ((await readFile(join(installed, 'dist', file), 'utf8')).includes('sourceMappingURL')) t.fail(`${file} points at a source map`)
  }

  const key = randomBytes(32)
  const { stdout } = await run(process.execPath, ['sessions-only.mjs', key.toString('base64')], { cwd: consumer })
  t.same(JSON.parse(stdout), { fingerprint: fingerprint(key), source: 'env:SESSION_SECRET_KEY', visits: 2 })
  t.notMatch(stdout, key.toString('base64'))

  // Before ioredis is installed: the declarations must not need it either.
  const types = await typeCheck(consumer)
  t.equal(types.code, 0, `the service type-checks against the published declarations:\n${types.output}`)

  const bin = join(consumer, 'node_modules', '.bin', 'fastify-session-suite')
  const keygen = await run(bin, ['keygen'], { cwd: consumer })
  t.equal(Buffer.from(keygen.stdout.trim(), 'base64url').length, 32, 'the bin runs from the tarball')

  const redis = await startRedis(t)
  const without = JSON.parse((await run(process.execPath, ['with-redis.mjs', key.toString('base64'), redis.url], { cwd: consumer })).stdout)
  t.equal(without.code, 'FSS_REDIS_CLIENT_MISSING')
  t.match(without.message, /optional peer dependency ioredis[\s\S]*`npm install ioredis`/, 'names the package and the command')

  await run(npm, ['install', 'ioredis@6', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: consumer, ...big })
  const withIt = JSON.parse((await run(process.execPath, ['with-redis.mjs', key.toString('base64'), redis.url], { cwd: consumer })).stdout)
  t.same(withIt, { name: 'redis', healthy: true, status: 'ready', topology: 'standalone', detail: 'reachable' }, 'after npm install ioredis, the store connects')
})

t.test('pnpm: the service type-checks and runs, augmenting the suite\'s SessionData (a transitive package cannot be named)', async (t) => {
  const consumer = join(tmp, 'pnpm-consumer')
  await project(consumer)
  await run(pnpm, ['add', tarball, 'fastify@5', '@types/node@20', '--prefer-offline'], { cwd: consumer, ...big })
  await t.rejects(access(join(consumer, 'node_modules', '@fastify', 'secure-session')), 'pnpm does not put the suite\'s own dependencies in reach of the service')

  const key = randomBytes(32)
  const { stdout } = await run(process.execPath, ['sessions-only.mjs', key.toString('base64')], { cwd: consumer })
  t.same(JSON.parse(stdout), { fingerprint: fingerprint(key), source: 'env:SESSION_SECRET_KEY', visits: 2 })

  const types = await typeCheck(consumer)
  t.equal(types.code, 0, `the service type-checks against the published declarations:\n${types.output}`)
})
