// Options are checked once, at registration, against a TypeBox schema. The
// first problem becomes FSS_OPTIONS_INVALID naming the option's path (e.g.
// `session.idleTimeout`), so a typo fails start-up instead of a request.
import type { TSchema, Static } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { errors } from './errors.ts'

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>()

// Fastify passes its own register options in the same object as ours; they
// are not ours to check, unless a schema declares the name itself (the debug
// routes' `prefix`). Stripped here, once, rather than by every plugin.
const REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers']

function ownPart (schema: TSchema, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const declared = (schema as { properties?: Record<string, unknown> }).properties ?? {}
  let own: Record<string, unknown> | undefined
  for (const name of REGISTER_OPTIONS) {
    if (name in value && !(name in declared)) {
      own ??= { ...value }
      delete own[name]
    }
  }
  return own ?? value
}

/** The options without Fastify's own register options, checked against `schema`. */
export function validateOptions<T extends TSchema> (schema: T, raw: unknown, prefix = ''): Static<T> {
  const value = ownPart(schema, raw)
  let check = compiled.get(schema)
  if (check === undefined) {
    check = TypeCompiler.Compile(schema)
    compiled.set(schema, check)
  }
  if (check.Check(value)) return value as Static<T>
  const first = check.Errors(value).First()
  /* c8 ignore next -- Check() failed, so Errors() has at least one entry */
  if (first === undefined) throw new errors.FSS_OPTIONS_INVALID(prefix || '(root)', 'invalid')
  const path = first.path.replace(/^\//, '').replace(/\//g, '.')
  const name = [prefix, path].filter(Boolean).join('.') || '(root)'
  // The message is TypeBox's description of the expected shape, never the value.
  throw new errors.FSS_OPTIONS_INVALID(name, first.message)
}
