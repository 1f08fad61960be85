// Command-line parsing for `npm run bench` and `npm run soak`: `--help` prints
// the usage to stdout and exits 0; an unknown or malformed flag prints what is
// wrong and the usage to stderr and exits 2 (the usual usage-error status),
// never a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O, strict: true }>>['values']

export function parseCommandLine<O extends Options> (usage: string, options: O, args = process.argv.slice(2)): Values<O> {
  try {
    const { values } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true })
    if ((values as { help?: boolean }).help === true) {
      process.stdout.write(usage)
      process.exit(0)
    }
    return values as Values<O>
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    process.exit(2)
  }
}
