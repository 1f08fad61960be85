// CONTRACT STUB — replaced by the keyring implementation (issue 2).
// Loads the keyring once; never exposes key bytes in logs or display decorators.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'

export interface SecretKeyInfo {
  /** `env:NAME`, `env-file:NAME`, `file:PATH` or `generated:PATH` */
  source: string
  count: number
  /** first 8 hex characters of SHA-256 of the newest key */
  fingerprint: string
  warnings: string[]
}

export interface SecretKeysOptions {
  appName?: string
  envVars?: string[]
  keyFile?: string
}

declare module 'fastify' {
  interface FastifyInstance { secretKeys: SecretKeyInfo }
}

const keyBytes = new WeakMap<SecretKeyInfo, Buffer[]>()

/** Key bytes, newest first, for the session plugin only. Not enumerable anywhere. */
export function getSecretKeyBytes (fastify: FastifyInstance): Buffer[] | undefined {
  return fastify.hasDecorator('secretKeys') ? keyBytes.get(fastify.secretKeys) : undefined
}

const secretKeys: FastifyPluginAsync<SecretKeysOptions> = async (fastify) => {
  const { randomBytes, createHash } = await import('node:crypto')
  const key = randomBytes(32)
  const info: SecretKeyInfo = { source: 'generated:memory', count: 1, fingerprint: createHash('sha256').update(key).digest('hex').slice(0, 8), warnings: [] }
  keyBytes.set(info, [key])
  fastify.decorate('secretKeys', info)
}

export default fp(secretKeys, { fastify: '5.x', name: 'fastify-session-suite/secret-keys' })
