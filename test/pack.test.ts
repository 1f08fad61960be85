import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint } from '../lib/digest.ts'
import { tempDir } from './helper.ts'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const consumerScript = `
import Fastify from 'fastify'
import sessionSuite from 'fastify-session-suite'
const app = Fastify()
await app.register(sessionSuite, { secret: { env: { SESSION_SECRET_KEY: process.argv[2] } } })
await app.ready()
console.log(JSON.stringify({ fingerprint: app.secretKeys.fingerprint, source: app.secretKeys.source }))
await app.close()
`

t.test('npm pack output installs and imports in a fresh consumer project', { timeout: 180_000 }, async (t) => {
  const tmp = await tempDir(t, 'fss-pack-')
  // prepack runs `npm run build`, so this also proves dist/ builds from a clean tree.
  await run(npm, ['pack', '--pack-destination', tmp], { cwd: root, maxBuffer: 16 * 1024 * 1024 })
  const tarballs = (await readdir(tmp)).filter((f) => f.endsWith('.tgz'))
  t.equal(tarballs.length, 1, 'one tarball')
  const consumer = join(tmp, 'consumer')
  await mkdir(consumer)
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  // The consumer installs fastify itself too, as a user registering a plugin would.
  await run(npm, ['install', join(tmp, tarballs[0]), 'fastify@5', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: consumer, maxBuffer: 16 * 1024 * 1024 })
  await writeFile(join(consumer, 'check.mjs'), consumerScript)

  const key = randomBytes(32)
  const { stdout } = await run(process.execPath, ['check.mjs', key.toString('base64')], { cwd: consumer })
  t.same(JSON.parse(stdout), { fingerprint: fingerprint(key), source: 'env:SESSION_SECRET_KEY' })
  t.notMatch(stdout, key.toString('base64'))

  const installed = join(consumer, 'node_modules', 'fastify-session-suite')
  await t.resolves(access(join(installed, 'dist', 'index.d.ts')), 'types ship with the package')
  const bin = join(consumer, 'node_modules', '.bin', 'fastify-session-suite')
  const keygen = await run(bin, ['keygen'], { cwd: consumer })
  t.equal(Buffer.from(keygen.stdout.trim(), 'base64url').length, 32, 'the bin runs from the tarball')
})
