// The suite's own session fields (the cookie store's token, the Redis store's
// reference, the debug nonce) live under one key of the session, `fss`, so a
// service's fields never collide with them: its own `oauth` field is its own.
// Each owner names its field here and validates what it reads back: the
// session is decrypted input, not a typed store.
import type { Session } from '@fastify/secure-session'

/** The one session key the suite keeps its fields under. */
export const SUITE_FIELD = 'fss'

/**
 * The suite field holding the session's id in the session registry: 128
 * random bits, set when a login is registered, and never carried over by
 * regenerate(). A session with one is checked for revocation on every request.
 */
export const SESSION_ID_FIELD = 'sessionId'

export type SuiteFields = Record<string, unknown>

declare module '@fastify/secure-session' {
  interface SessionData {
    /** the suite's own fields (`oauth`, `tokenRef`, `persistenceTest`, `sessionId`); read them through the suite's APIs */
    fss?: SuiteFields
  }
}

function fieldsOf (session: Session): SuiteFields | undefined {
  const fields: unknown = session.get(SUITE_FIELD)
  return typeof fields === 'object' && fields !== null && !Array.isArray(fields) ? fields as SuiteFields : undefined
}

/** The names of the suite fields this session holds. */
export function suiteFieldNames (session: Session): string[] {
  return Object.keys(fieldsOf(session) ?? {})
}

/** The suite field `name`, unchecked: its owner validates it. */
export function getSuiteField (session: Session, name: string): unknown {
  const fields = fieldsOf(session)
  return fields !== undefined && Object.hasOwn(fields, name) ? fields[name] : undefined
}

/** Sets the suite field `name`; `undefined` removes it (and the session is not written when it was not there). */
export function setSuiteField (session: Session, name: string, value: unknown): void {
  const fields = { ...fieldsOf(session) }
  if (value === undefined) {
    if (!Object.hasOwn(fields, name)) return
    delete fields[name]
  } else {
    fields[name] = value
  }
  // A new object each time: the session notices the change, and no caller holds the old one.
  session.set(SUITE_FIELD, Object.keys(fields).length === 0 ? undefined : fields)
}
