import t from 'tap'
import { Type } from '@sinclair/typebox'
import createError from '@fastify/error'
import { errors, FssError } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'

t.test('every error code is FSS_-prefixed and matches its key', async (t) => {
  for (const [name, Ctor] of Object.entries(errors)) {
    const err = new (Ctor as new (...a: unknown[]) => Error & { code: string })('a', 'b', 'c')
    t.equal(err.code, name)
    t.match(name, /^FSS_[A-Z_]+$/)
  }
})

t.test('every suite error is an FssError (option errors also TypeErrors); no other error is', async (t) => {
  for (const [name, Ctor] of Object.entries(errors)) {
    const err = new (Ctor as new (...a: unknown[]) => Error)('a', 'b')
    t.ok(err instanceof FssError, `${name} instanceof FssError`)
    t.ok(err instanceof Error, `${name} instanceof Error`)
    t.ok(err instanceof Ctor, `${name} instanceof its own class`)
    t.equal(err instanceof TypeError, name === 'FSS_OPTIONS_INVALID', `${name}: a TypeError only for options`)
  }
  const lookalike = Object.assign(new Error('x'), { code: 'FSS_TOKEN_MISSING' })
  t.notOk(lookalike instanceof FssError, 'an FSS_ code on another error does not make it ours')
  t.notOk(new (createError('FST_X', 'x', 500))() instanceof FssError, 'another @fastify/error class is not ours')
  for (const value of [null, undefined, 42, 'FSS_TOKEN_MISSING'] as unknown[]) t.notOk((value as object) instanceof FssError, String(value))
})

t.test('options validation names the option path, not the value', async (t) => {
  const schema = Type.Object({ session: Type.Object({ idleTimeout: Type.Integer({ minimum: 1 }) }) })
  t.same(validateOptions(schema, { session: { idleTimeout: 5 } }), { session: { idleTimeout: 5 } })
  const err = t.throws(() => validateOptions(schema, { session: { idleTimeout: 'secret-value' } }, 'suite')) as Error & { code: string }
  t.equal(err.code, 'FSS_OPTIONS_INVALID')
  t.match(err.message, /suite\.session\.idleTimeout/)
  t.notMatch(err.message, /secret-value/)
  const root = t.throws(() => validateOptions(schema, 42)) as Error & { code: string }
  t.match(root.message, /\(root\)/)
})

t.test("Fastify's own register options are not ours to refuse, unless a schema declares the name", async (t) => {
  const schema = Type.Object({ idle: Type.Optional(Type.Integer()) }, { additionalProperties: false })
  const out = validateOptions(schema, { idle: 5, prefix: '/x', logLevel: 'warn', logSerializers: {} }, 'session')
  t.same(out, { idle: 5 }, 'prefix, logLevel and logSerializers are dropped before the check')
  const err = t.throws(() => validateOptions(schema, { idle: 5, idel: 6 }, 'session')) as Error & { code: string }
  t.equal(err.code, 'FSS_OPTIONS_INVALID', 'anything else unknown is still refused')
  const declared = Type.Object({ prefix: Type.String({ pattern: '^/' }) }, { additionalProperties: false })
  t.same(validateOptions(declared, { prefix: '/api', logLevel: 'warn' }), { prefix: '/api' }, 'a declared prefix is kept')
  t.throws(() => validateOptions(declared, { prefix: 'api' }), { code: 'FSS_OPTIONS_INVALID' }, 'and checked')
  t.equal(validateOptions(Type.Array(Type.String()), ['a'])[0], 'a', 'non-object values pass through untouched')
  t.same(validateOptions(Type.Any(), { a: 1, logLevel: 'warn' }), { a: 1 }, 'a schema without properties declares none')
})
