// The benchmark harness and the soak run end to end in a child process, in
// their shortest form, and produce every row. Structure only: a speed is never
// asserted (CI machines differ), and bench/results.md is never touched.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helper.ts'
import { throughputCases } from '../bench/lib/cases.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const CASES = throughputCases({ rollingIntervalSeconds: 1 })
// every throughput row the harness defines, then the refresh storm and the start-up rows
const ROW_IDS = [...CASES.map((c) => c.id), '8', '9a', '9b', '9c']

// Two child runs of tens of seconds each, more on a busy CI machine: the
// root timeout (sent to the tap runner) overrides .taprc's 120 s for this file.
t.setTimeout(360_000)

interface Run { code: number | null, stdout: string, stderr: string }

function run (script: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // No coverage from the harness and its servers: they run the suite as a
      // load, for a time that varies by machine, so what they happen to reach
      // must not count as (or hide gaps in) the unit tests' coverage.
      env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    // bounded: a hung harness fails the test instead of hanging CI
    const timer = setTimeout(() => child.kill('SIGKILL'), 200_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

async function mtime (path: string): Promise<number | null> {
  return await stat(path).then((s) => s.mtimeMs, () => null)
}

t.test('npm run bench -- --quick prints and writes the whole table, elsewhere than bench/results.md', { timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t, 'fss-bench-')
  const out = join(dir, 'results.md')
  const committed = join(root, 'bench', 'results.md')
  const before = await mtime(committed)

  const result = await run('bench/run.ts', ['--quick', '--out', out])
  t.equal(result.code, 0, `the harness exits 0 (stderr: ${result.stderr.slice(-500)})`)
  t.equal(await mtime(committed), before, 'bench/results.md is left alone')

  const markdown = await readFile(out, 'utf8')
  t.match(markdown, /^# Benchmark results/, 'a markdown report')
  t.match(markdown, /- Machine: .+, \d+ cores, .+; Node v\d+\.\d+\.\d+/, 'the machine: CPU model, cores and Node version')
  t.match(markdown, /Produced by `npm run bench -- --quick --out /, 'the command that made it')
  t.match(markdown, /\| # \| case \| req\/s \| p99 ms \| ratio \(same run\) \| target \| result \| notes \|/, 'one table with the agreed columns')

  const rows = new Map(markdown.split('\n').filter((l) => /^\| \d/.test(l)).map((l) => {
    const cells = l.split(' | ').map((c) => c.replace(/^\| |\s\|$/g, '').trim())
    return [cells[0], cells]
  }))
  t.same([...rows.keys()], ROW_IDS, 'rows 1–9 in order')
  for (const [id, cells] of rows) {
    const unavailable = cells[6] === 'n/a'
    if (unavailable) {
      t.match(cells[4], /n\/a \(plugin not available\)/, `#${id} says why it is not measured`)
      continue
    }
    if (!id.startsWith('8') && !id.startsWith('9')) t.match(cells[2], /^\d+$/, `#${id} has a req/s figure`)
    if (!id.startsWith('9')) t.match(cells[3], /^\d+$/, `#${id} has a p99`)
    t.match(cells[6], /^(—|met|missed)(<br>(—|met|missed))*$/, `#${id} reports targets as met / missed / none`)
  }
  for (const id of [...CASES.filter((c) => c.targets !== undefined).map((c) => c.id), '8', '9a']) {
    t.match(rows.get(id)?.[5] ?? '', /≥|exactly|</, `#${id} shows its goal`)
  }
  // a ratio is a median with the spread of the per-round ratios beside it
  for (const c of CASES.filter((c) => c.targets !== undefined || c.baseline !== undefined)) {
    const cells = rows.get(c.id) as string[]
    if (cells[6] !== 'n/a') t.match(cells[4], /\d+\.\d\d× (#\w+|this) \(\d+\.\d\d–\d+\.\d\d\)/, `#${c.id} shows its ratio with the spread`)
  }
  t.match(rows.get('2b')?.[7] ?? '', /cookie \d+ B in 1/, '#2b is sent a session cookie (#2c\'s)')
  t.match(rows.get('5b')?.[7] ?? '', /cookie \d+ B in 2/, '#5b is sent #5\'s two chunk cookies')
  t.match(rows.get('6')?.[4] ?? '', /Set-Cookie in \d+ responses|n\/a/, '#6 reports the Set-Cookie share')
  t.match(rows.get('8')?.[4] ?? '', /calls for \d+ refresh tokens|n\/a/, '#8 reports calls per refresh token')

  t.match(result.stdout, /^#\s+case\s+req\/s/m, 'the table is printed too')
  t.match(result.stdout, /Node v\d+/, 'with the machine in the header')
})

t.test('npm run bench:cache -- --quick prints the decoded-session cache micro-benchmark', { timeout: 120_000 }, async (t) => {
  const result = await run('bench/decoded-cache.ts', ['--quick'])
  t.equal(result.code, 0, `it exits 0 (stderr: ${result.stderr.slice(-500)})`)
  for (const size of ['Token-set session', 'Chunked session']) t.match(result.stdout, new RegExp(`${size} .*: cookie \\d+ B`), `the ${size.toLowerCase()}`)
  for (const path of ['decode today', 'cache hit', 'cache miss']) t.match(result.stdout, new RegExp(`\\| ${path}[^|]* \\| \\d`), `a figure for the ${path} path`)
  t.match(result.stdout, /Memory, token-set session: \d+ B per entry on the heap .+, \d+ B per entry as the cache counts it/, 'the heap an entry takes')
})

t.test('npm run soak runs bounded and reports every measure', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fss-soak-')
  const out = join(dir, 'soak.md')
  const result = await run('bench/soak.ts', ['--duration', '3', '--users', '4', '--out', out])
  t.equal(result.code, 0, `the soak exits 0 (stderr: ${result.stderr.slice(-500)})`)
  if (/soak: n\/a/.test(result.stdout)) {
    t.match(result.stdout, /soak: n\/a \(.+\)/, 'the soak says which part of the suite is missing')
    return
  }
  const report = await readFile(out, 'utf8')
  for (const measure of ['requests', 'responses by status', '5xx', 'lost sessions', 'server RSS after warm-up / middle / end', 'token-endpoint refresh calls']) {
    t.match(report, new RegExp(`\\| ${measure.replace(/[/]/g, '\\/')} \\| [^|]+ \\|`), `the report has ${measure}`)
  }
  t.match(report, /\| requests \| [1-9]\d* /, 'the soak sent requests')
})

t.test('bench and soak answer --help with the usage (exit 0) and an unknown flag with the usage (exit 2), no stack trace', { timeout: 60_000 }, async (t) => {
  for (const [script, command] of [['bench/run.ts', 'npm run bench'], ['bench/soak.ts', 'npm run soak']]) {
    const [help, short, unknown, stray] = await Promise.all([
      run(script, ['--help']), run(script, ['-h']), run(script, ['--bogus']), run(script, ['stray'])
    ])
    for (const r of [help, short]) {
      t.equal(r.code, 0, `${command} --help exits 0`)
      t.match(r.stdout, new RegExp(`^Usage: ${command} -- \\[options\\]\\n[\\s\\S]*--duration`), 'the usage, on stdout')
      t.equal(r.stderr, '')
    }
    t.equal(unknown.code, 2, `${command} --bogus exits 2`)
    t.match(unknown.stderr, /^Unknown option '--bogus'[\s\S]*Usage:/)
    t.equal(stray.code, 2, `${command} with a stray argument exits 2`)
    for (const r of [unknown, stray]) {
      t.equal(r.stdout, '', 'nothing was measured')
      t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
    }
  }
})
