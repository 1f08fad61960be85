// `npm run bench:cache`: what one request pays to read its session, today
// (base64, secretbox, JSON.parse through the sealer) and from the cache of
// decoded sessions (a Map lookup by the value's first characters, a compare
// of the whole value, a deep copy),
// for the 1.7 KB token-set session of rows #3/#4 and the 6 KB chunked one of
// #5, plus the alternatives the cache's design was measured against, and the
// heap an entry takes. A micro-benchmark of internal modules, so unlike the
// rest of bench/ it imports lib/ directly: the hit path has no public entry.
// `--quick` is the CI smoke (numbers are printed, never asserted).
import { createHmac, hash, randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createSealer, type Sealer } from '../lib/session/sealer.ts'
import { buildPayload, nowSeconds } from '../lib/session/payload.ts'
import { createDecodedCache, type DecodedCacheKey, type DecodedSession } from '../lib/session/decoded-cache.ts'
import { normalizeToken } from '../lib/oauth/token.ts'
import { tokenSet } from './lib/tokens.ts'
import { median } from './lib/throughput.ts'
import { machine } from './lib/report.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } } })
const quick = values.quick === true
const rounds = Number(values.rounds ?? (quick ? 3 : 15))
// calls per round: long enough (a few ms) for the clock, short enough to interleave often
const BATCH = quick ? 200 : 2000

const IDLE = 7 * 24 * 3600
const ABSOLUTE = 30 * 24 * 3600

interface Case { name: string, run: () => unknown }

/** Every case once per round, in a rotated order: a noisy neighbour hits all alike. */
function measure (cases: Case[]): Map<string, number[]> {
  const samples = new Map(cases.map((c) => [c.name, [] as number[]]))
  for (const c of cases) for (let i = 0; i < BATCH; i++) c.run() // warm-up: optimised code only
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < cases.length; j++) {
      const c = cases[(j + round) % cases.length]
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < BATCH; i++) c.run()
      ;(samples.get(c.name) as number[]).push(Number(process.hrtime.bigint() - t0) / BATCH)
    }
  }
  return samples
}

/** The caller's re-check on a hit: what checkPayload checks of the two times. */
function stillValid (s: DecodedSession): boolean {
  const now = nowSeconds()
  return s.issuedAt <= now + 60 && s.createdAt <= s.issuedAt && s.issuedAt + IDLE > now && s.createdAt + ABSOLUTE > now
}

function fmt (ns: number): string {
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`
}

async function sizeCase (sealer: Sealer, label: string, idTokenPadding: number): Promise<string[]> {
  const now = nowSeconds()
  const data = { oauth: normalizeToken(tokenSet({ idTokenPadding }), { assumedLifetime: 3600 }) }
  const value = sealer.seal(buildPayload(data, now, now))
  const json = JSON.stringify(data)
  const decode = (): DecodedSession => {
    const opened = sealer.open(value)
    if (typeof opened === 'string') throw new Error(`the bench cookie did not decode: ${opened}`)
    return opened.payload
  }
  const decoded = decode()
  const cache = createDecodedCache()
  const key = cache.key(value)
  cache.set(key, decoded)
  const hmacKey = randomBytes(32)
  const header = `session=${value}`
  const byValue = new Map([[Buffer.from(value, 'latin1').toString('latin1'), decoded]])
  const cases: Case[] = [
    { name: 'decode today: format check, base64, secretbox, JSON.parse, time checks', run: () => decode() },
    {
      name: 'cache hit: lookup by the first 32 characters, compare the value, deep copy, time re-check',
      run: () => {
        const hit = cache.get(cache.key(value)) as DecodedSession
        if (!stillValid(hit)) throw new Error('expired')
        return hit
      }
    },
    {
      name: 'cache miss: decode, then lookup, set (a flat copy of the value)',
      run: () => {
        const k = cache.key(value)
        cache.delete(k)
        if (cache.get(k) !== undefined) throw new Error('a hit')
        cache.set(k, decode())
      }
    },
    // the value as a request has it: a slice of its Cookie header, its hash not yet computed
    { name: '  alternative key: SHA-256 of the value (crypto.hash)', run: () => hash('sha256', header.slice(8), 'binary') },
    { name: '  alternative key: HMAC-SHA256, per-process key', run: () => createHmac('sha256', hmacKey).update(header.slice(8)).digest('binary') },
    { name: '  alternative key: a Map keyed by the whole value', run: () => byValue.get(header.slice(8)) },
    { name: '  of which lookup and copy (get)', run: () => cache.get(key as DecodedCacheKey) },
    { name: '  alternative copy: structuredClone', run: () => structuredClone(decoded.data) },
    { name: '  alternative copy: JSON.parse of the kept JSON text', run: () => JSON.parse(json) }
  ]
  const samples = measure(cases)
  const base = median(samples.get(cases[0].name) as number[])
  const lines = [
    '',
    `${label}: cookie ${value.length} B, ${json.length} B of JSON; ns per call, median of ${rounds} rounds of ${BATCH} calls (min–max)`,
    '',
    '| path | per call | min–max | vs decode today |',
    '|---|---:|---:|---:|'
  ]
  for (const c of cases) {
    const s = samples.get(c.name) as number[]
    const m = median(s)
    lines.push(`| ${c.name} | ${fmt(m)} | ${fmt(Math.min(...s))}–${fmt(Math.max(...s))} | ${(m / base).toFixed(2)}× |`)
  }
  return lines
}

/** Heap per entry, measured with the collector forced before and after, beside the cache's own estimate. */
function memoryCase (): string[] {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const n = quick ? 500 : 5000
  const cache = createDecodedCache({ maxEntries: n, maxBytes: 2 ** 32 })
  const fresh = (): DecodedSession => {
    const now = nowSeconds()
    // through JSON, as a decoded session is: strings of its own, not shared with a template
    return { data: JSON.parse(JSON.stringify({ oauth: normalizeToken(tokenSet(), { assumedLifetime: 3600 }) })) as Record<string, unknown>, issuedAt: now, createdAt: now }
  }
  cache.set(cache.key('warm'), fresh())
  cache.flush()
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < n; i++) cache.set(cache.key(`cookie-${i}`), fresh())
  gc()
  gc()
  const measured = (process.memoryUsage().heapUsed - before) / n
  const estimated = cache.stats().bytes / n
  return [
    '',
    `Memory, token-set session: ${Math.round(measured)} B per entry on the heap (${n} entries, collector forced before and after), ${Math.round(estimated)} B per entry as the cache counts it against maxBytes; the default bounds (10 000 entries, 32 MiB) hold about ${Math.floor(32 * 1024 * 1024 / estimated)} such sessions by bytes.`
  ]
}

async function main (): Promise<void> {
  const sealer = createSealer([randomBytes(32)], IDLE, ABSOLUTE)
  const m = machine()
  const out = [
    `# Decoded-session cache micro-benchmark (${m.cpu}, ${m.cores} cores, Node ${m.node})`,
    ...await sizeCase(sealer, 'Token-set session (#3/#4)', 0),
    ...await sizeCase(sealer, 'Chunked session (#5)', 2500),
    ...memoryCase()
  ]
  console.log(out.join('\n'))
}

await main()
