// `npm run bench`: issue 6's table in one run. Rows 1–7 are throughput rows
// measured round-robin, row 8 is the refresh storm, row 9 the start-up time.
// `--quick` is the CI smoke (speeds are never asserted); `--only 1,4,7` picks
// rows; `--out <file>` writes the markdown somewhere else than bench/results.md.
import { writeFile, mkdir } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseCommandLine } from './lib/args.ts'
import { guardChildren, repoRoot } from './lib/children.ts'
import { throughputCases } from './lib/cases.ts'
import { measureThroughput, median, type Measured } from './lib/throughput.ts'
import { consoleTable, currentLoad, markdownReport, machine, type Row } from './lib/report.ts'
import { refreshStorm } from './lib/storm.ts'
import { startupTimes } from './lib/startup.ts'
import { profileRow } from './lib/profile.ts'

const USAGE = `Usage: npm run bench -- [options]

Measures the suite against its peers and writes a markdown table (speeds are reported, never asserted).

Options:
  --quick              one short round per row: a smoke run whose speeds mean nothing
  --only ROWS          comma-separated rows, e.g. 1,4,7 (7 = 7a–7d, 8 = refresh storm, 9 = start-up)
  --out FILE           where the markdown goes (default: bench/results.md)
  --profile            also CPU-profile rows 2c, 4, 4r, 5 and 7a, or those --only picks (node --cpu-prof, into bench/out/)
  --rounds N           rounds per throughput row (default 15, --quick 1)
  --duration S         seconds per row and round (default 2, --quick 1)
  --slices N           parts each row's seconds in a round are cut into, interleaved with the other rows (default 4, --quick 1)
  --warmup S           warm-up seconds per row (default 3, --quick 1)
  --connections N      concurrent connections, at most 50 (default 50, --quick 10)
  -h, --help           this text
`

const values = parseCommandLine(USAGE, {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  out: { type: 'string' },
  profile: { type: 'boolean', default: false },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  slices: { type: 'string' },
  warmup: { type: 'string' },
  connections: { type: 'string' }
})

const quick = values.quick === true
const num = (value: string | undefined, fallback: number): number => value === undefined ? fallback : Number(value)
// Many short rounds rather than a few long ones: each ratio is a median of
// per-round ratios, and the noise of a shared machine comes and goes on the
// scale of seconds. The median of 15 rounds moves about 1.7× less between two
// runs than the median of 5 (its spread falls as 1/√rounds); --rounds trades
// time for agreement. A row's 2 s in a round are 4 slices of 0.5 s taken in
// turn with the other rows (see ThroughputSettings.slices).
const settings = {
  rounds: num(values.rounds, quick ? 1 : 15),
  duration: num(values.duration, quick ? 1 : 2),
  slices: num(values.slices, quick ? 1 : 4),
  warmup: num(values.warmup, quick ? 1 : 3),
  connections: Math.min(50, num(values.connections, quick ? 10 : 50)),
  log: (line: string) => console.error(`[bench] ${line}`)
}
const rollingIntervalSeconds = 1
const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean)
const wanted = (id: string): boolean => only === undefined || only.some((o) => id === o || (/^\d+$/.test(o) && id.startsWith(o) && !/\d/.test(id.slice(o.length))))
// --profile covers these rows (all of them, or those --only picks)
const PROFILED = [
  { id: '2c', what: 'suite untouched route, 1.7 KB session cookie sent' },
  { id: '4', what: 'suite token read' },
  { id: '4r', what: 'suite token read, session registry on' },
  { id: '5', what: 'suite token read, session in two cookies' },
  { id: '7a', what: 'suite counter, writes every request' }
]
const out = resolve(values.out ?? `${repoRoot}/bench/results.md`)

/** The median of per-round ratios, and their spread: how much the rounds disagreed. */
interface Ratio { median: number, min: number, max: number }
const ratio = (perRound: number[]): Ratio => ({ median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound) })
const invert = (r: Ratio): Ratio => ({ median: 1 / r.median, min: 1 / r.max, max: 1 / r.min })
// e.g. `1.07× #3 (0.98–1.15)`: the spread beside the median shows the noise
const show = (r: Ratio, of: string): string => `${r.median.toFixed(2)}× ${of} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`

function rowsFrom (measured: Measured[]): Row[] {
  const byId = new Map(measured.map((m) => [m.spec.id, m]))
  return measured.map((m): Row => {
    const { spec } = m
    const row: Row = { id: spec.id, label: spec.label, comparisons: [], notes: [] }
    if (m.unavailable !== undefined) return { ...row, unavailable: m.unavailable, comparisons: (spec.targets ?? []).map((t) => ({ measured: '', target: t.text })) }
    row.rps = m.rps
    row.p99 = m.p99
    // the median of per-round ratios: both rows of a pair ran in the same
    // round, so load that comes and goes between rounds cancels out
    const ratioTo = (id: string): Ratio | undefined => {
      const base = byId.get(id)
      if (base === undefined || base.unavailable !== undefined) return undefined
      const n = Math.min(m.rounds.length, base.rounds.length)
      return ratio(Array.from({ length: n }, (_, i) => m.rounds[i].rps / base.rounds[i].rps))
    }
    if (spec.baseline !== undefined) {
      const r = ratioTo(spec.baseline)
      row.comparisons.push({ measured: r === undefined ? `— (#${spec.baseline} not measured)` : show(r, `#${spec.baseline}`) })
    }
    for (const target of spec.targets ?? []) {
      const r = ratioTo(target.baseline)
      if (r === undefined) row.comparisons.push({ measured: `— (#${target.baseline} not measured)`, target: target.text })
      else if (target.invert === true) row.comparisons.push({ measured: `#${target.baseline} = ${show(invert(r), 'this')}`, target: target.text, met: 1 / r.median >= target.min })
      else row.comparisons.push({ measured: show(r, `#${target.baseline}`), target: target.text, met: r.median >= target.min })
    }
    if (spec.rollingIntervalSeconds !== undefined) {
      // Every slice opens its connections anew with the (stale) login cookie:
      // one re-issue for that, then one each time the whole-second issue time
      // falls a rolling interval behind, which a slice can cross once per
      // interval it spans, started or not.
      const perConnection = settings.slices * (1 + Math.ceil(settings.duration / settings.slices / spec.rollingIntervalSeconds))
      const allowed = settings.rounds * settings.connections * perConnection
      row.comparisons.push({
        measured: `${m.withSetCookie} Set-Cookie in ${m.responses} responses (${(100 * m.withSetCookie / Math.max(1, m.responses)).toFixed(2)} %)`,
        target: `≤ ${allowed} (1 per ${spec.rollingIntervalSeconds} s per connection)`,
        met: m.withSetCookie <= allowed
      })
    } else if (spec.login !== undefined) {
      row.notes.push(`Set-Cookie on ${(100 * m.withSetCookie / Math.max(1, m.responses)).toFixed(0)} % of responses`)
    }
    const toBare = ratioTo('1')
    if (spec.id !== '1' && toBare !== undefined) row.notes.push(show(toBare, 'bare'))
    // the server's work per response; like req/s it moves with the load on the machine, so compare it within a run
    row.notes.push(`server CPU ${median(m.rounds.map((r) => r.cpuPerResponse)).toFixed(1)} µs/response`)
    if (m.cookieBytes > 0) row.notes.push(`cookie ${m.cookieBytes} B in ${m.cookieCount}`)
    if (m.non2xx > 0 || m.errors > 0) row.notes.push(`non-2xx ${m.non2xx}, errors ${m.errors}`)
    return row
  })
}

async function main (): Promise<void> {
  guardChildren()
  const m = machine()
  const loadAtStart = currentLoad()
  settings.log(`${m.cpu}, ${m.cores} cores, Node ${m.node}; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`)
  const rows: Row[] = []
  const extra: string[] = []
  const all = throughputCases({ rollingIntervalSeconds })
  // a row that sends another row's cookie brings that row along
  const cases = all.filter((c) => wanted(c.id) || all.some((w) => w.cookieFrom === c.id && wanted(w.id)))
  if (cases.length > 0) rows.push(...rowsFrom(await measureThroughput(cases, settings)))
  if (wanted('8')) {
    const storm = await refreshStorm({ clients: quick ? 5 : 40, requestsPerClient: quick ? 3 : 5, log: settings.log })
    rows.push(storm.row)
    extra.push(...storm.extra)
  }
  if (wanted('9')) rows.push(...await startupTimes({ iterations: quick ? 2 : 10, log: settings.log }))
  if (values.profile === true) {
    // the suite's rows, each as its throughput row runs it (mode, options, route, login)
    for (const row of PROFILED.filter((p) => only === undefined || wanted(p.id))) {
      const spec = all.find((c) => c.id === row.id) as (typeof all)[number]
      extra.push(...await profileRow({ ...row, env: spec.env ?? {}, path: spec.path, login: spec.login as string, duration: Math.max(5, settings.duration), connections: settings.connections, log: settings.log }))
    }
  }

  console.log(`\n${m.cpu}, ${m.cores} cores, Node ${m.node}\n`)
  console.log(consoleTable(rows))
  const command = `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
  const settingsText = `${settings.rounds} round(s) × ${settings.duration} s per row (in ${settings.slices} interleaved slice(s)) after a ${settings.warmup} s warm-up, ${settings.connections} connections`
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, markdownReport(rows, { command, settings: settingsText, date: new Date().toISOString(), extra, loadAtStart }))
  console.log(`\nwritten to ${out}`)
}

await main()
