// NODE_ENV spelled in any case or with blanks around it is production: the
// development-only features (debug routes, token backup) stay off.
import t from 'tap'
import { join } from 'node:path'
import Fastify from 'fastify'
import sessionSuite from '../index.ts'
import { isProduction } from '../lib/node-env.ts'
import { assertBackupAllowed } from '../lib/oauth/backup.ts'
import { tempDir } from './helper.ts'

const PRODUCTION = ['production', 'PRODUCTION', 'Production', ' production', 'production\n', '\tProduction ']
const NOT_PRODUCTION = [undefined, '', 'development', 'dev', 'test', 'staging', 'prod', 'productions', 'pro duction', 'production-like', 'NOT production']

t.test('which NODE_ENV values count as production', async (t) => {
  for (const v of PRODUCTION) t.equal(isProduction({ NODE_ENV: v }), true, JSON.stringify(v))
  for (const v of NOT_PRODUCTION) t.equal(isProduction({ NODE_ENV: v }), false, JSON.stringify(v))
  for (const v of PRODUCTION) t.throws(() => assertBackupAllowed({ NODE_ENV: v }), { code: 'FSS_TOKEN_BACKUP_IN_PRODUCTION' }, `token backup under ${JSON.stringify(v)}`)
  for (const v of NOT_PRODUCTION) t.doesNotThrow(() => assertBackupAllowed({ NODE_ENV: v }))
})

t.test('debug routes are refused under NODE_ENV=PRODUCTION as under production', async (t) => {
  const before = process.env.NODE_ENV
  t.teardown(() => { process.env.NODE_ENV = before })
  for (const v of ['PRODUCTION', ' production ']) {
    process.env.NODE_ENV = v
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(Promise.resolve(app.register(sessionSuite, { debug: true, secret: { keyFile: join(await tempDir(t), 'k'), env: {} } }).ready()), { code: 'FSS_DEBUG_IN_PRODUCTION' }, JSON.stringify(v))
  }
})
