// plugins/secret-keys.ts — loads the keyring once at registration; never
// exposes key bytes in logs, errors or decorators meant for display.
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { validateOptions } from '../lib/options.ts'
import { DEFAULT_APP_NAME, DEFAULT_ENV_VARS, loadKeyring, type KeyringInfo } from '../lib/keyring/load.ts'

export type SecretKeyInfo = KeyringInfo

export const SecretKeysOptionsSchema = Type.Object({
  // No path separators: the name becomes one folder under the config dir.
  appName: Type.Optional(Type.String({
    pattern: '^(?!\\.\\.?$)[A-Za-z0-9._@-]+$',
    description: 'Names the default key file\'s folder: `<per-OS config dir>/<appName>/secret.key`. No path separators.',
    default: DEFAULT_APP_NAME
  })),
  envVars: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), {
    description: 'Environment variables tried in order, each also read as NAME_FILE (a file holding the key) and NAME_PREVIOUS (older keys).',
    default: DEFAULT_ENV_VARS
  })),
  keyFile: Type.Optional(Type.String({ minLength: 1, description: 'The key file, instead of `<per-OS config dir>/<appName>/secret.key`. Created (0600) when no variable gives a key and it does not exist.' })),
  env: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Undefined()]), { description: 'The environment to read the variables from, instead of `process.env` (tests, a vault loader).' }))
}, { additionalProperties: false })

export type SecretKeysOptions = Static<typeof SecretKeysOptionsSchema>

declare module 'fastify' {
  interface FastifyInstance { secretKeys: SecretKeyInfo }
}

// Key bytes live here, keyed by the info object that is decorated: nothing
// reachable by enumerating, logging or serialising the instance holds them.
const keyBytes = new WeakMap<SecretKeyInfo, Buffer[]>()

/** Key bytes (32 each), newest first, for the session plugin only. */
export function getSecretKeyBytes (fastify: FastifyInstance): Buffer[] | undefined {
  if (!fastify.hasDecorator('secretKeys')) return undefined
  return keyBytes.get(fastify.secretKeys)?.map((k) => Buffer.from(k))
}

const secretKeys: FastifyPluginAsync<SecretKeysOptions> = async (fastify, opts) => {
  const options = validateOptions(SecretKeysOptionsSchema, opts, 'secret')
  const ring = await loadKeyring(options)
  const info = Object.freeze({
    ...ring.info,
    warnings: Object.freeze([...ring.info.warnings]),
    candidates: Object.freeze(ring.info.candidates.map((c) => Object.freeze({ ...c }))),
    ...(ring.info.file && { file: Object.freeze({ ...ring.info.file }) })
  }) as SecretKeyInfo
  keyBytes.set(info, ring.keys)
  fastify.log.info({ source: info.source, fingerprint: info.fingerprint, count: info.count }, 'secret keyring loaded')
  for (const warning of info.warnings) fastify.log.warn({ source: info.source }, `secret keyring: ${warning}`)
  fastify.decorate('secretKeys', info)
}

export default fp(secretKeys, { fastify: '5.x', name: 'fastify-session-suite/secret-keys' })
