// What the session seals: every field of the data as it is, then the
// internal times, which no field can shadow.
import t from 'tap'
import { buildPayload } from '../lib/session/payload.ts'

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
