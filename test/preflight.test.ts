// `npm test` on a fresh machine: the preflight finds Chromium and redis-server
// (variable first, then PATH), stops at once with one install line per
// missing program, and otherwise runs the tests with the binaries it found.
import t from 'tap'
import { access, chmod, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findProgram, findPrograms, onPath, plan, programPath, PROGRAMS, type Found } from './fixtures/programs.ts'
import { runTsx, tempDir } from './helper.ts'

const preflight = fileURLToPath(new URL('./preflight.ts', import.meta.url))
const [chromium, redis] = PROGRAMS
// The binaries this run uses (the outer preflight's, or the same lookup).
const realChromium = programPath('chromium')
const realRedis = programPath('redis-server')

/** The environment without the outer preflight's exports, so each case starts from scratch. */
function cleanEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const { CHROMIUM_PATH: _c, REDIS_SERVER: _r, ...rest } = process.env
  return { ...rest, ...extra }
}

const problemOf = (f: Found): string | undefined => 'problem' in f ? f.problem : undefined
const pathOf = (f: Found): string | undefined => 'path' in f ? f.path : undefined

t.test('a program is found on PATH under any of its names, in PATH order', async (t) => {
  const dir = await tempDir(t)
  const [first, second] = [join(dir, 'a'), join(dir, 'b')]
  await mkdir(first)
  await mkdir(second)
  await symlink(realRedis, join(second, 'redis-server'))
  await symlink(realChromium, join(second, 'chromium-browser'))
  const env = { PATH: ['relative/ignored', first, second].join(':') }
  t.equal(pathOf(findProgram(redis, env, 'linux')), join(second, 'redis-server'))
  t.equal(pathOf(findProgram(chromium, env, 'linux')), join(second, 'chromium-browser'), 'chromium-browser is another name for it')
  await symlink(realRedis, join(first, 'redis-server'))
  t.equal(pathOf(findProgram(redis, env, 'linux')), join(first, 'redis-server'), 'the first PATH entry wins')
  t.equal(onPath('redis-server', env), join(first, 'redis-server'))
  t.equal(onPath('apt-get', env), undefined)
})

t.test('the variable wins over PATH, and a wrong one is reported, never replaced by a PATH hit', async (t) => {
  const dir = await tempDir(t)
  const notExecutable = join(dir, 'chromium')
  await writeFile(notExecutable, '')
  await chmod(notExecutable, 0o644)
  const onRealPath = { PATH: process.env.PATH ?? '' }
  t.equal(pathOf(findProgram(chromium, { ...onRealPath, CHROMIUM_PATH: realChromium })), realChromium)
  t.equal(pathOf(findProgram(redis, { PATH: dir, REDIS_SERVER: realRedis })), realRedis, 'found without PATH')
  for (const value of [notExecutable, dir, 'chromium', join(dir, 'absent')]) {
    t.equal(problemOf(findProgram(chromium, { ...onRealPath, CHROMIUM_PATH: value })),
      `CHROMIUM_PATH=${value} is not the absolute path of an executable file: fix it or unset it`, value)
  }
  t.equal(pathOf(findProgram(chromium, { ...onRealPath, CHROMIUM_PATH: '' })), realChromium, 'an empty variable counts as unset')
})

t.test('a missing program is one line naming the Debian/Ubuntu and Homebrew install commands', async (t) => {
  const empty = await tempDir(t)
  const found = findPrograms({ PATH: empty }, 'linux')
  t.same(found.map(problemOf), [
    'missing chromium: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu) or `brew install --cask google-chrome` (macOS), or set CHROMIUM_PATH to its binary',
    'missing redis-server: install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_SERVER to its binary'
  ])
  t.throws(() => programPath('redis-server', { PATH: empty }), { message: /^missing redis-server: install it with `sudo apt-get install -y redis-server`/ },
    'a fixture run without the preflight says the same')
  t.equal(problemOf(findProgram(redis, {}, 'linux'))?.startsWith('missing redis-server'), true, 'no PATH at all')
  // Off macOS the app bundles are not looked at; on it, they are the last resort.
  t.equal(pathOf(findProgram({ ...chromium, paths: [realChromium] }, { PATH: empty }, 'darwin')), realChromium)
  t.ok(problemOf(findProgram({ ...chromium, paths: [realChromium] }, { PATH: empty }, 'linux')))
})

t.test('what the preflight does: nothing, install with apt-get as root, or report', async (t) => {
  const empty = await tempDir(t)
  const none = findPrograms({ PATH: empty }, 'linux')
  const all = findPrograms({ PATH: process.env.PATH ?? '' })
  const one = [all[0], none[1]]
  const apt = '/usr/bin/apt-get'
  t.equal(plan(all, { root: false, aptGet: undefined }), null, 'everything found')
  t.same(plan(none, { root: true, aptGet: apt }), { install: ['chromium', 'redis-server'], aptGet: apt })
  t.same(plan(one, { root: true, aptGet: apt }), { install: ['redis-server'], aptGet: apt }, 'only what is missing')
  t.same(plan(none, { root: false, aptGet: apt }), { report: none.map(problemOf) }, 'not root: report')
  t.same(plan(none, { root: true, aptGet: undefined }), { report: none.map(problemOf) }, 'no apt-get: report')
  const wrong = [findProgram(chromium, { PATH: empty, CHROMIUM_PATH: 'chromium' }), none[1]]
  t.same(plan(wrong, { root: true, aptGet: apt }), { report: wrong.map(problemOf) }, 'a wrong variable is not installed over')
})

t.test('npm test without the programs, not root or without apt-get: stops before the command, one line each', async (t) => {
  const dir = await tempDir(t)
  const marker = join(dir, 'ran')
  // PATH holds neither program nor apt-get; the command is absolute, so it would run if reached.
  const r = await runTsx(preflight, [process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, '')`], cleanEnv({ PATH: dir }))
  t.equal(r.code, 1)
  t.equal(r.stdout, '')
  const lines = r.stderr.trimEnd().split('\n')
  t.equal(lines.length, 2, 'one line per missing program, nothing else')
  t.match(lines[0], /^missing chromium: install it with `sudo apt-get install -y chromium` \(Debian\/Ubuntu\) or `brew install --cask google-chrome` \(macOS\)/)
  t.match(lines[1], /^missing redis-server: install it with `sudo apt-get install -y redis-server` \(Debian\/Ubuntu\) or `brew install redis` \(macOS\)/)
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
  await t.rejects(access(marker), 'the command never ran')
})

t.test('with the programs found, the command runs with their paths exported and its exit status is kept', async (t) => {
  const printEnv = 'process.stdout.write(JSON.stringify({ c: process.env.CHROMIUM_PATH, r: process.env.REDIS_SERVER })); process.exitCode = 3'
  const r = await runTsx(preflight, [process.execPath, '-e', printEnv], cleanEnv({}))
  t.equal(r.code, 3, 'the command\'s exit status')
  const found = findPrograms(cleanEnv({}))
  t.same(JSON.parse(r.stdout), { c: pathOf(found[0]), r: pathOf(found[1]) })

  const dir = await tempDir(t)
  await symlink(realRedis, join(dir, 'redis-server'))
  const chosen = await runTsx(preflight, [process.execPath, '-e', printEnv], cleanEnv({ PATH: dir, CHROMIUM_PATH: realChromium }))
  t.same(JSON.parse(chosen.stdout), { c: realChromium, r: join(dir, 'redis-server') }, 'the variable and the PATH hit, as found')

  const listed = await runTsx(preflight, [], cleanEnv({}))
  t.equal(listed.code, 0)
  t.equal(listed.stdout, `chromium: ${pathOf(found[0])}\nredis-server: ${pathOf(found[1])}\n`, 'without a command it lists what it found')

  const missing = await runTsx(preflight, [join(dir, 'no-such-command')], cleanEnv({}))
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^preflight: cannot run .*no-such-command: /)
})
