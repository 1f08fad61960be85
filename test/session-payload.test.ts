// What the session seals: every field of the data as it is, then the
// internal times, which no field can shadow.
import t from 'tap'
import { buildPayload, checkPayload, nowSeconds } from '../lib/session/payload.ts'

t.test('the payload is the data, then the issue and creation times', async (t) => {
  const data = { user: 'ann', n: 1, nested: { list: [1, 2] }, 7: 'integer-like' }
  const payload = buildPayload(data, 1_700_000_000, 1_700_000_500)
  t.equal(JSON.stringify(payload), '{"7":"integer-like","user":"ann","n":1,"nested":{"list":[1,2]},"__ts":1700000500,"__i":1700000500,"__c":1700000000}')
  t.not(payload, data, 'a new object: the session data is left as it was')
  t.same(Object.keys(data), ['7', 'user', 'n', 'nested'])
})

t.test('a field named __proto__ is sealed as a field and changes no prototype', async (t) => {
  const data = JSON.parse('{"__proto__":{"isAdmin":true},"user":"ann"}') as Record<string, unknown>
  const payload = buildPayload(data, 1, 2)
  t.equal(Object.getPrototypeOf(payload), Object.prototype)
  t.equal((payload as { isAdmin?: boolean }).isAdmin, undefined)
  t.equal(JSON.stringify(payload), '{"__proto__":{"isAdmin":true},"user":"ann","__ts":2,"__i":2,"__c":1}')
})

t.test('the data of a decoded session, from which fields were deleted, is copied whole', async (t) => {
  const data = { ...JSON.parse('{"a":1,"__ts":5,"b":2,"c":3}') } as Record<string, unknown>
  delete data.__ts
  t.same(buildPayload(data, 1, 2), { a: 1, b: 2, c: 3, __ts: 2, __i: 2, __c: 1 })
})

t.test('the payload holds exactly the data fields and the three times, no other key', async (t) => {
  for (const data of [{}, { a: 1 }, { a: 1, b: undefined, c: null }]) {
    const payload = buildPayload(data, 1, 2)
    t.same(Object.keys(payload), [...Object.keys(data), '__ts', '__i', '__c'], JSON.stringify(data))
    t.notOk(Object.hasOwn(payload, 'undefined'))
  }
})

t.test('a __proto__ field is an ordinary field of the payload: enumerable, writable, configurable', async (t) => {
  const data = JSON.parse('{"__proto__":{"isAdmin":true}}') as Record<string, unknown>
  const payload = buildPayload(data, 1, 2)
  t.same(Object.getOwnPropertyDescriptor(payload, '__proto__'), { value: { isAdmin: true }, writable: true, enumerable: true, configurable: true })
  t.same(Object.getOwnPropertyDescriptor(payload, 'user'), undefined)
  t.same(Object.getOwnPropertyDescriptor(buildPayload({ user: 'ann' }, 1, 2), 'user'), { value: 'ann', writable: true, enumerable: true, configurable: true })
})

t.test('a field named like a 0.1.0 suite field is written with an (empty) suite field, so it is never adopted as ours', async (t) => {
  const cases: Array<[Record<string, unknown>, unknown]> = [
    [{ oauth: 'mine' }, {}],
    [{ tokenRef: 'mine' }, {}],
    [{ fssPersistenceTest: true }, {}],
    [{ oauth: 'mine', fss: { sessionId: 'x' } }, { sessionId: 'x' }],
    [{ oauth: undefined }, undefined],
    [{ user: 'ann', persistenceTest: true }, undefined],
    [{ user: 'ann' }, undefined]
  ]
  for (const [data, fss] of cases) {
    const payload = buildPayload(data, 1, 2)
    t.same(payload.fss, fss, JSON.stringify(data))
    t.equal(Object.hasOwn(payload, 'fss'), fss !== undefined)
  }
})

t.test('a payload without a suite field (release 0.1.0) has exactly its three suite fields moved under one', async (t) => {
  const now = nowSeconds()
  const open = (fields: Record<string, unknown>): Record<string, unknown> => {
    const opened = checkPayload({ ...fields, __i: now, __c: now }, undefined, 3600, 7200)
    if (typeof opened === 'string') throw new Error(opened)
    return opened.data
  }
  const oauth = { access_token: 'a' }
  const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
    [{ user: 'ann', oauth, tokenRef: 'r1', fssPersistenceTest: true }, { user: 'ann', fss: { oauth, tokenRef: 'r1', persistenceTest: true } }],
    [{ oauth }, { fss: { oauth } }],
    [{ tokenRef: 'r1' }, { fss: { tokenRef: 'r1' } }],
    [{ fssPersistenceTest: false }, { fss: { persistenceTest: false } }],
    [{ oauth: null, user: 'ann' }, { user: 'ann', fss: { oauth: null } }],
    // Names that were never suite fields stay where they are.
    [{ user: 'ann', persistenceTest: true, fss_oauth: 1 }, { user: 'ann', persistenceTest: true, fss_oauth: 1 }],
    [{}, {}],
    // With a suite field, same-named top-level fields are the service's own.
    [{ fss: { sessionId: 's' }, oauth: 'the service\'s', tokenRef: 'its own' }, { fss: { sessionId: 's' }, oauth: 'the service\'s', tokenRef: 'its own' }],
    [{ fss: {}, fssPersistenceTest: 1 }, { fss: {}, fssPersistenceTest: 1 }]
  ]
  for (const [fields, data] of cases) {
    const opened = open(fields)
    t.same(opened, data, JSON.stringify(fields))
    t.same(Object.keys(opened).sort(), Object.keys(data).sort(), 'no other key, not even an undefined one')
    if (data.fss !== undefined) t.same(Object.keys(opened.fss as object).sort(), Object.keys(data.fss as object).sort())
  }
})

t.test('a 0.1.0 field the service wrote survives a round trip: written with an empty suite field, read back as its own', async (t) => {
  const now = nowSeconds()
  const sealed = JSON.parse(JSON.stringify(buildPayload({ oauth: 'the service\'s own' }, now, now))) as Record<string, unknown>
  delete sealed.__ts // secure-session's data() takes it out
  const opened = checkPayload(sealed, undefined, 3600, 7200)
  t.same(opened, { data: { oauth: 'the service\'s own', fss: {} }, createdAt: now, issuedAt: now })
})
