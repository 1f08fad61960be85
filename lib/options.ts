// Options are checked once, at registration, against a TypeBox schema. The
// first problem becomes FSS_OPTIONS_INVALID naming the option's path (e.g.
// `session.idleTimeout`), so a typo fails start-up instead of a request.
import type { TSchema, Static } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { errors } from './errors.ts'

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>()

export function validateOptions<T extends TSchema> (schema: T, value: unknown, prefix = ''): Static<T> {
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
