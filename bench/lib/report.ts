// One table for the console and for bench/results.md: each row's req/s and
// p99, its ratio to the named baseline from the same run, and the row's
// target next to it (met / missed — reported, never asserted).
import { cpus, loadavg } from 'node:os'

export interface Comparison {
  /** e.g. `0.97× #1` or `1.00 call/token` */
  measured: string
  target?: string
  met?: boolean
}

export interface Row {
  id: string
  label: string
  rps?: number
  p99?: number
  comparisons: Comparison[]
  notes: string[]
  /** why the row could not be measured */
  unavailable?: string
}

export interface Machine { cpu: string, cores: number, node: string, platform: string }

export function machine (): Machine {
  const list = cpus()
  return { cpu: list[0]?.model ?? 'unknown', cores: list.length, node: process.version, platform: `${process.platform} ${process.arch}` }
}

const HEADERS = ['#', 'case', 'req/s', 'p99 ms', 'ratio (same run)', 'target', 'result', 'notes']

function cells (row: Row, joiner: string): string[] {
  if (row.unavailable !== undefined) return [row.id, row.label, '', '', 'n/a (plugin not available)', row.comparisons.map((c) => c.target ?? '').filter(Boolean).join(joiner), 'n/a', row.unavailable]
  const fmt = (n: number | undefined, digits = 0): string => n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits)
  return [
    row.id,
    row.label,
    fmt(row.rps),
    fmt(row.p99),
    row.comparisons.map((c) => c.measured).join(joiner) || '—',
    row.comparisons.map((c) => c.target ?? '—').join(joiner) || '—',
    row.comparisons.map((c) => c.met === undefined ? '—' : c.met ? 'met' : 'missed').join(joiner) || '—',
    row.notes.join(joiner)
  ]
}

export function markdownTable (rows: Row[]): string {
  const escape = (s: string): string => s.replace(/\|/g, '\\|')
  return [
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map((h) => h === 'req/s' || h === 'p99 ms' ? '---:' : '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row, '<br>').map(escape).join(' | ')} |`)
  ].join('\n')
}

export function consoleTable (rows: Row[]): string {
  const data = [HEADERS, ...rows.map((row) => cells(row, '; '))]
  const widths = HEADERS.map((_, i) => Math.max(...data.map((r) => r[i].length)))
  return data.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
}

export interface ReportMeta { command: string, settings: string, date: string, extra: string[], loadAtStart: number[] }

export const currentLoad = (): number[] => loadavg()

export function markdownReport (rows: Row[], meta: ReportMeta): string {
  const m = machine()
  return [
    '# Benchmark results',
    '',
    `Produced by \`${meta.command}\` on ${meta.date}.`,
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}; Node ${m.node}`,
    // other work on the machine moves every row; round-robin spreads it, this says how much there was
    `- Load average at the start: ${meta.loadAtStart.map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min)`,
    `- Settings: ${meta.settings}`,
    '- Each server runs in its own process on 127.0.0.1; the load generator (autocannon) runs in the harness process on the same machine.',
    '- Rows are measured round-robin (the order rotates each round), each row\'s time in a round cut into slices taken in turn with the other rows\', so that every row\'s figure spans the whole round; a round\'s req/s counts all its slices and its p99 is the worst slice\'s; req/s and p99 are medians over the rounds; a ratio is the median of the per-round ratios (both rows of a pair ran in the same round, so load that varies between rounds cancels), with the lowest and highest per-round ratio in brackets: how noisy the run was. Targets are reported, never asserted.',
    '',
    markdownTable(rows),
    '',
    ...meta.extra,
    ''
  ].join('\n')
}
