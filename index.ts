// The root plugin: one register call for the whole suite. Grows with each concern.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import secretKeys, { type SecretKeysOptions } from './plugins/secret-keys.ts'

export interface SessionSuiteOptions {
  appName?: string
  secret?: SecretKeysOptions
}

const sessionSuite: FastifyPluginAsync<SessionSuiteOptions> = async (fastify, opts) => {
  await fastify.register(secretKeys, { appName: opts.appName, ...opts.secret })
}

export default fp(sessionSuite, { fastify: '5.x', name: 'fastify-session-suite' })
export { secretKeys }
export { errors } from './lib/errors.ts'
export type { SecretKeyInfo, SecretKeysOptions } from './plugins/secret-keys.ts'
