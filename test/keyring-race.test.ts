import t from 'tap'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint } from '../lib/digest.ts'
import { runTsx, tempDir } from './helper.ts'

const fixture = fileURLToPath(new URL('./fixtures/keyring-race.ts', import.meta.url))
const CHILDREN = 20

t.test('20 processes starting at once against a fresh path end with exactly one key', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'app', 'secret.key')
  // All children are spawned before any is awaited, so they race for real.
  const results = await Promise.all(Array.from({ length: CHILDREN }, () => runTsx(fixture, [path])))
  for (const r of results) t.equal(r.code, 0, r.stderr)
  const reports = results.map((r) => JSON.parse(r.stdout) as { fingerprint: string, source: string, count: number })
  const fingerprints = new Set(reports.map((r) => r.fingerprint))
  t.equal(fingerprints.size, 1, 'every process holds the same key')
  t.equal(reports.filter((r) => r.source.startsWith('generated:')).length, 1, 'exactly one process generated it')
  t.equal(reports.filter((r) => r.source.startsWith('file:')).length, CHILDREN - 1, 'the others read the winner\'s file')
  t.same(await readdir(join(dir, 'app')), ['secret.key'], 'one file, no temp files left behind')
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean)
  t.equal(lines.length, 1, 'one key line')
  t.equal(fingerprint(Buffer.from(lines[0], 'base64url')), [...fingerprints][0], 'the key every process holds is the one on disk')
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'app'))).mode & 0o777, 0o700)
  t.comment(`race: ${CHILDREN} processes, ${fingerprints.size} distinct fingerprint(s), file lines: ${lines.length}`)
})
