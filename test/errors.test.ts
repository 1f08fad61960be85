import t from 'tap'
import { Type } from '@sinclair/typebox'
import { errors } from '../lib/errors.ts'
import { validateOptions } from '../lib/options.ts'

t.test('every error code is FSS_-prefixed and matches its key', async (t) => {
  for (const [name, Ctor] of Object.entries(errors)) {
    const err = new (Ctor as new (...a: unknown[]) => Error & { code: string })('a', 'b', 'c')
    t.equal(err.code, name)
    t.match(name, /^FSS_[A-Z_]+$/)
  }
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
