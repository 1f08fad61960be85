// The options reference (docs/options.md), rendered from the TypeBox schemas
// every plugin validates its options with: the types, defaults and
// descriptions there are the ones the code checks, so the two cannot disagree.
import { Kind, type TSchema } from '@sinclair/typebox'
import { SessionSuiteOptionsSchema } from '../index.ts'
import { SecretKeysOptionsSchema } from '../plugins/secret-keys.ts'
import { SessionOptionsSchema } from '../lib/session/policy.ts'
import { OAuthOptionsSchema } from '../lib/oauth/options.ts'
import { OAuthRoutesOptionsSchema } from '../routes/oauth.ts'
import { CsrfOptionsSchema } from '../plugins/csrf.ts'
import { RedisTokenStoreOptionsSchema } from '../plugins/redis-token-store.ts'
import { HealthOptionsSchema } from '../routes/health.ts'
import { DebugOptionsSchema } from '../routes/debug.ts'
import { SessionRegistryPluginOptionsSchema } from '../plugins/session-registry.ts'
import { BackchannelLogoutOptionsSchema } from '../routes/backchannel-logout.ts'
import { Type } from '@sinclair/typebox'

type Schema = TSchema & {
  properties?: Record<string, Schema>
  required?: string[]
  anyOf?: Schema[]
  items?: Schema
  patternProperties?: Record<string, Schema>
  description?: string
  default?: unknown
  tsType?: string
  const?: unknown
  minimum?: number
  maximum?: number
}

/** Each section of the root options and the plugin that owns it, in registration order. */
export const SECTIONS: ReadonlyArray<{ name: string, intro: string, schemas: Schema[] }> = [
  { name: 'secret', intro: 'The `secretKeys` plugin\'s options: where the keys come from.', schemas: [SecretKeysOptionsSchema] },
  { name: 'session', intro: 'The `session` plugin\'s options: the cookie policy and timeouts.', schemas: [SessionOptionsSchema] },
  { name: 'csrf', intro: 'The `csrf` plugin\'s options.', schemas: [CsrfOptionsSchema] },
  { name: 'redis', intro: 'The `redisTokenStore` plugin\'s options.', schemas: [RedisTokenStoreOptionsSchema] },
  { name: 'oauth', intro: 'The `oauthTokens` plugin\'s options, and `redirectAfterLogout`, the `oauthRoutes` plugin\'s one option.', schemas: [OAuthOptionsSchema, OAuthRoutesOptionsSchema] },
  {
    name: 'sessions',
    intro: 'The `sessionRegistry` plugin\'s options, and `backchannel`, the `backchannelLogout` route\'s. Records expire with `session.absoluteTimeout`.',
    schemas: [SessionRegistryPluginOptionsSchema, Type.Object({
      backchannel: Type.Optional(Type.Union([Type.Boolean(), BackchannelLogoutOptionsSchema], { description: 'POST /backchannel-logout (OpenID Connect Back-Channel Logout 1.0): on by default with an OpenID Connect provider; `false` leaves it out.' }))
    })]
  },
  { name: 'health', intro: 'The `health` plugin\'s options.', schemas: [HealthOptionsSchema] },
  { name: 'debug', intro: 'The `debug` plugin\'s options.', schemas: [DebugOptionsSchema] }
]

export interface OptionRow {
  path: string
  schema: Schema
  required: boolean
  /** one of the object forms a union allows (`oauth.provider`'s two) */
  inForm: boolean
}

/** Every option of `schemas` (nested objects flattened to dotted paths), in declaration order. */
export function optionRows (prefix: string, schemas: Schema[], inForm = false): OptionRow[] {
  const rows: OptionRow[] = []
  for (const schema of schemas) {
    for (const [name, property] of Object.entries(schema.properties as Record<string, Schema>)) {
      const path = `${prefix}.${name}`
      rows.push({ path, schema: property, required: new Set(schema.required).has(name), inForm })
      const union = property[Kind] === 'Union'
      const objects = (union ? property.anyOf as Schema[] : [property]).filter((s) => s[Kind] === 'Object' && Object.keys(s.properties as object).length > 0)
      rows.push(...optionRows(path, objects, union))
    }
  }
  return rows
}

function typeOf (schema: Schema): string {
  if (schema.tsType !== undefined) return schema.tsType
  switch (schema[Kind]) {
    // Integer options are durations (and a few counts), each with a lower bound.
    case 'Integer': return `integer, ${schema.minimum}${schema.maximum === undefined ? '+' : `–${schema.maximum}`}`
    case 'Literal': return JSON.stringify(schema.const).replace(/"/g, '\'')
    case 'Union': return (schema.anyOf as Schema[]).map(typeOf).join(' | ')
    case 'Array': return `${typeOf(schema.items as Schema)}[]`
    case 'Record': return `Record<string, ${typeOf(Object.values(schema.patternProperties as Record<string, Schema>)[0])}>`
    case 'Object': {
      const names = Object.keys(schema.properties as object)
      const required = new Set(schema.required)
      return names.length === 0 ? 'object' : `{ ${names.map((n) => required.has(n) ? n : `${n}?`).join(', ')} }`
    }
    default: return String(schema[Kind]).toLowerCase()
  }
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
const code = (text: string): string => `\`${text}\``

function defaultOf (row: OptionRow): string {
  if (row.schema.default !== undefined) return code(JSON.stringify(row.schema.default).replace(/"/g, '\''))
  if (!row.required) return '–'
  return row.inForm ? 'required in its form' : 'required'
}

function table (rows: OptionRow[]): string[] {
  return [
    '| option | type | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${code(r.path)} | ${cell(code(typeOf(r.schema)))} | ${cell(defaultOf(r))} | ${cell(String(r.schema.description))} |`)
  ]
}

/** docs/options.md, as `npm run docs:options` writes it. */
export function renderOptionsReference (): string {
  const sections = new Set(SECTIONS.map((s) => s.name))
  const root = optionRows('', [SessionSuiteOptionsSchema as Schema]).map((r) => {
    const path = r.path.slice(1)
    const link = sections.has(path) ? ` See [\`${path}\`](#${path}).` : ''
    return { ...r, path, schema: { ...r.schema, description: `${r.schema.description}${link}` } }
  })
  const lines = [
    '# Options reference',
    '',
    '<!-- Generated by `npm run docs:options` from the TypeBox schemas the plugins validate their options with. Do not edit:',
    '     change the schema, then run the script; test/options-doc.test.ts fails while this file is stale. -->',
    '',
    'Every option is checked once, at registration; a wrong one stops start-up with `FSS_OPTIONS_INVALID` naming it.',
    'Durations say their unit: session, token and record lifetimes are in seconds, call and wait times in milliseconds.',
    'A "default" of – means the option is off or computed, as its meaning says.',
    '',
    '## Root plugin',
    '',
    '`app.register(sessionSuite, options)`. Each section is the options object of the plugin named below, which is also',
    'a named export for registering that part on its own.',
    '',
    ...table(root)
  ]
  for (const { name, intro, schemas } of SECTIONS) {
    lines.push('', `## ${name}`, '', intro, '', ...table(optionRows(name, schemas)))
  }
  return lines.join('\n') + '\n'
}
