// Row 9: register→ready for three key sources, each in its own fresh process.
import { runChild } from './children.ts'
import { median } from './throughput.ts'
import type { Row } from './report.ts'

const SOURCES = [
  { source: 'env', label: 'start-up, key in an env variable' },
  { source: 'file', label: 'start-up, existing key file' },
  { source: 'generate', label: 'start-up, first start generates the key file' }
]

interface StartupResult { source: string, cold: number, warm: number[] }

export async function startupTimes ({ iterations, log }: { iterations: number, log: (line: string) => void }): Promise<Row[]> {
  const rows: Row[] = []
  for (const [i, { source, label }] of SOURCES.entries()) {
    const id = `9${'abc'[i]}`
    const target = '< 50 ms (cold)'
    const message = await runChild('bench/servers/startup.ts', { env: { BENCH_KEY_SOURCE: source, BENCH_ITERATIONS: String(iterations) } })
      .catch((err: Error) => ({ type: 'unavailable' as const, reason: err.message }))
    if (message.type !== 'result') {
      rows.push({ id, label, comparisons: [{ measured: '', target }], notes: [], unavailable: message.type === 'unavailable' ? message.reason : message.type })
      continue
    }
    const { cold, warm } = message.data as StartupResult
    log(`start-up ${source}: cold ${cold.toFixed(1)} ms, warm median ${median(warm).toFixed(1)} ms`)
    rows.push({
      id,
      label,
      comparisons: [{ measured: `${cold.toFixed(1)} ms cold`, target, met: cold < 50 }],
      notes: [`warm median ${median(warm).toFixed(1)} ms, max ${Math.max(...warm).toFixed(1)} ms over ${warm.length}`]
    })
  }
  return rows
}
