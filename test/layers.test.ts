// The data walks one way: lib/ (keyring → session → tokens) → plugins/ →
// routes/ → index.ts. A file may import from its own layer or a lower one,
// never from a higher one; and the plugins hand nothing to each other through
// a registry-wide symbol (Symbol.for) instead of a declared decorator.
import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const LAYERS = ['lib', 'plugins', 'routes'] as const

async function sources (dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => relative(ROOT, join(e.parentPath, e.name)))
}

/** The repository-relative targets of a file's relative imports (static, dynamic and `declare module`). */
function imports (file: string, text: string): string[] {
  const specifiers = [...text.matchAll(/(?:from|import\(|declare module)\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1])
  return specifiers.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)))
}

t.test('nothing imports from a layer above its own', async (t) => {
  for (const [rank, layer] of LAYERS.entries()) {
    const above: string[] = [...LAYERS.slice(rank + 1), 'index.ts']
    const wrong: string[] = []
    let count = 0
    for (const file of await sources(layer)) {
      for (const target of imports(file, await readFile(join(ROOT, file), 'utf8'))) {
        count++
        if (above.includes(target.split('/')[0])) wrong.push(`${file} → ${target}`)
      }
    }
    t.ok(count > 0, `${layer}/ has imports to check`)
    t.same(wrong, [], `${layer}/ imports nothing from ${above.join(', ')}`)
  }
})

t.test('no plugin reaches another through a registry-wide symbol', async (t) => {
  const found: string[] = []
  for (const layer of LAYERS) {
    for (const file of await sources(layer)) {
      if ((await readFile(join(ROOT, file), 'utf8')).includes('Symbol.for(')) found.push(file)
    }
  }
  t.same(found, [])
})
