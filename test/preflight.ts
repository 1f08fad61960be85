// `npm test` starts here: `tsx test/preflight.ts <command...>`. It finds
// Chromium and redis-server (test/fixtures/programs.ts), installs what is
// missing with apt-get when it runs as root on a machine that has apt-get
// (what CI needs on a fresh Debian image), and otherwise stops at once with
// one line per missing program naming the command that installs it. Then it
// runs <command> with CHROMIUM_PATH and REDIS_SERVER set to what it found, so
// every test drives the same binaries, and exits with the command's status.
import { spawn, spawnSync } from 'node:child_process'
import { findPrograms, onPath, plan, type Found } from './fixtures/programs.ts'

function problems (found: Found[]): string[] {
  return found.flatMap((f) => 'problem' in f ? [f.problem] : [])
}

let found = findPrograms(process.env)
const next = plan(found, { root: process.getuid?.() === 0, aptGet: onPath('apt-get', process.env) })
if (next !== null && 'install' in next) {
  process.stderr.write(`preflight: installing ${next.install.join(' ')} with apt-get\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  // With recommends: Debian's chromium needs its recommended fonts to render pages.
  for (const args of [['update'], ['install', '-y', ...next.install]]) {
    const r = spawnSync(next.aptGet, args, { stdio: 'inherit', env })
    if (r.status !== 0) {
      process.stderr.write(`preflight: apt-get ${args[0]} failed (${r.status ?? r.signal}); install ${next.install.join(' ')} and run npm test again\n`)
      process.exit(1)
    }
  }
  found = findPrograms(process.env)
}
const left = problems(found)
if (left.length > 0) {
  process.stderr.write(left.join('\n') + '\n')
  process.exit(1)
}

const exported = Object.fromEntries(found.map((f) => [f.program.variable, (f as { path: string }).path]))
const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  for (const f of found) process.stdout.write(`${f.program.name}: ${(f as { path: string }).path}\n`)
  process.exit(0)
}
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, ...exported } })
// Ctrl+C reaches the child from the terminal; wait for it to finish its own
// cleanup. A SIGTERM sent to this process alone is passed on.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => child.kill('SIGTERM'))
child.on('error', (err) => {
  process.stderr.write(`preflight: cannot run ${command}: ${err.message}\n`)
  process.exit(1)
})
child.on('exit', (code, signal) => {
  if (signal !== null) process.kill(process.pid, signal)
  else process.exit(code ?? 1)
})
