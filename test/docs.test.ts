// Every relative link in README.md and docs/*.md resolves: to a file that
// exists and, with a #fragment, to a heading that exists there (the anchor
// GitHub generates for it). Links are read with a Markdown lexer, so code
// blocks and code spans are not mistaken for links.
import t from 'tap'
import { access, readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Lexer, marked, type Token } from 'marked'
import GithubSlugger from 'github-slugger'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Page { links: string[], anchors: Set<string> }

/** The text a heading renders to: what GitHub builds its anchor from. */
function plainText (tokens: Token[] | undefined): string {
  return (tokens ?? []).map((tok) => 'tokens' in tok && tok.tokens !== undefined ? plainText(tok.tokens) : 'text' in tok ? String(tok.text) : '').join('')
}

function parsePage (markdown: string): Page {
  const tokens = Lexer.lex(markdown)
  const slugger = new GithubSlugger()
  const links: string[] = []
  const anchors = new Set<string>()
  marked.walkTokens(tokens, (tok) => {
    if (tok.type === 'heading') anchors.add(slugger.slug(plainText(tok.tokens)))
    if (tok.type === 'link' || tok.type === 'image') links.push(tok.href)
  })
  return { links, anchors }
}

/** A link that leaves the repository (a scheme such as https: or mailto:) is not ours to check. */
const external = (href: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(href)

async function documents (): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))
  return [join(root, 'README.md'), ...docs]
}

t.test('every relative link in README.md and docs/*.md points at an existing file and heading', async (t) => {
  const files = await documents()
  t.ok(files.length > 5, 'the docs pages are found')
  const pages = new Map<string, Page>()
  for (const file of files) pages.set(file, parsePage(await readFile(file, 'utf8')))
  let checked = 0
  for (const [file, page] of pages) {
    const from = relative(root, file)
    for (const href of page.links.filter((h) => !external(h))) {
      checked++
      const [path, fragment] = href.split('#', 2)
      const target = path === '' ? file : join(dirname(file), decodeURIComponent(path))
      const exists = await access(target).then(() => true, () => false)
      if (!exists) {
        t.fail(`${from}: ${href} points at a missing file`)
        continue
      }
      if (fragment === undefined) continue
      const page = pages.get(target) ?? (target.endsWith('.md') ? parsePage(await readFile(target, 'utf8')) : undefined)
      if (page === undefined || !page.anchors.has(fragment)) t.fail(`${from}: ${href} points at a missing heading`)
    }
  }
  t.ok(checked > 50, `${checked} relative links checked`)
})

t.test('the README names the two commands a newcomer runs, and links every docs page', async (t) => {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  t.match(readme, /^npm ci && npm start\s+#/m)
  t.match(readme, /^npm test\s+#/m)
  const linked = new Set(parsePage(readme).links)
  for (const file of (await documents()).slice(1)) {
    const path = relative(root, file)
    t.ok(linked.has(path), `README links ${path}`)
  }
})

t.test('the checker itself: a missing file or heading is found, code is not read as a link', async (t) => {
  const page = parsePage([
    '# Token API: `request.tokens`', '', '## Options', '', '## Options',
    'See [a](docs/a.md#b) and `[not](a-link)`.', '', '```', '[not](either)', '```', '', '| x | [c](c.md) |', '|---|---|', '| ![i](i.png) | y |'
  ].join('\n'))
  t.same(page.links, ['docs/a.md#b', 'c.md', 'i.png'])
  t.same([...page.anchors], ['token-api-requesttokens', 'options', 'options-1'], 'GitHub\'s anchors, duplicates numbered')
  t.ok(external('https://example.com') && external('mailto:x@example.com'))
  t.notOk(external('docs/a.md') || external('#options'))
})
