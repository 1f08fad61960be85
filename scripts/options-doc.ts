// npm run docs:options — writes docs/options.md from the options schemas.
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { renderOptionsReference } from './options-reference.ts'

const target = fileURLToPath(new URL('../docs/options.md', import.meta.url))
await writeFile(target, renderOptionsReference())
process.stdout.write(`wrote ${target}\n`)
