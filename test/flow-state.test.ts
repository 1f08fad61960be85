// A login flow's cookie is untrusted input: whatever a client sends back under
// a flow cookie's name reads as a flow this suite wrote, or as none; and the
// bound keeps the newest flows within their count and bytes.
import t from 'tap'
import fc from 'fast-check'
import { HOSTILE_RETURN_TO } from './fixtures/return-to-forms.ts'
import { decodeFlow, encodeFlow, flowCookieName, flowsToDrop, MAX_DROPPED_FLOWS, MAX_FLOWS, MAX_FLOW_BYTES, type FlowState } from '../lib/oauth/flow-state.ts'

const B64 = 'A'.repeat(43)
const good: FlowState = { provider: 'main', state: B64, verifier: 'B'.repeat(43), nonce: 'C'.repeat(43), returnTo: '/a.b?c=d.e', startedAt: 1_795_000_000_000 }
const raw = (fields: string[]): string => Buffer.from(fields.join('.')).toString('base64url')

t.test('a flow reads back as written, returnTo with dots included', async (t) => {
  t.same(decodeFlow(encodeFlow(good)), good)
  t.same(decodeFlow(encodeFlow({ ...good, nonce: null, returnTo: null })), { ...good, nonce: null, returnTo: null }, 'plain OAuth 2, no returnTo')
})

t.test('anything this module did not write reads as no flow', async (t) => {
  const cases: Array<[string, string]> = [
    ['too few fields', raw(['main', B64, B64, '', '1'])],
    ['a provider name out of pattern', raw(['Main!', B64, B64, '', '1', ''])],
    ['a short state', raw(['main', 'abc', B64, '', '1', ''])],
    ['a verifier with a space', raw(['main', B64, 'a b'.repeat(10), '', '1', ''])],
    ['a nonce out of alphabet', raw(['main', B64, B64, '%'.repeat(20), '1', ''])],
    ['a start time that is not a number', raw(['main', B64, B64, '', 'x', ''])],
    ['not base64url at all', '!!!'],
    ['empty', '']
  ]
  for (const [name, value] of cases) t.equal(decodeFlow(value), null, name)
})

t.test('a flow cookie carrying a returnTo that GET /login would refuse reads as no flow, for every hostile form', async (t) => {
  // An empty field is how the cookie says "no returnTo": the default page, as for any refusal.
  for (const [value] of HOSTILE_RETURN_TO.filter(([v]) => v !== '')) {
    t.equal(decodeFlow(raw(['main', B64, B64, '', '1', value])), null, JSON.stringify(value).slice(0, 60))
  }
})

t.test('property: any cookie value decodes to null or to a flow whose fields keep their rules', async (t) => {
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.array(fc.string({ maxLength: 50 }), { maxLength: 8 }).map((f) => raw(f))), (value) => {
    const flow = decodeFlow(value)
    return flow === null || (/^[a-z0-9][a-z0-9_-]{0,31}$/.test(flow.provider) && Number.isSafeInteger(flow.startedAt))
  }), { numRuns: 2000 })
})

t.test('the bound drops the oldest flows past five, and past the bytes all flows may take', async (t) => {
  const prefix = '__Host-fss-flow.'
  const cookies: Record<string, string> = {}
  for (let i = 0; i < MAX_FLOWS; i++) {
    const state = `${'S'.repeat(42)}${i}`
    cookies[flowCookieName(prefix, state)] = encodeFlow({ ...good, state, startedAt: 1000 + i })
  }
  cookies['other-cookie'] = 'kept'
  const dropped = flowsToDrop(cookies, prefix, 100)
  t.equal(dropped.length, 1, 'a sixth flow drops one')
  t.equal(dropped[0]?.flow?.startedAt, 1000, 'the oldest')
  // An unreadable flow cookie counts as the oldest.
  const withJunk = { ...cookies, [`${prefix}${'J'.repeat(22)}`]: 'not-a-flow' }
  const junk = flowsToDrop(withJunk, prefix, 100)
  t.same(junk.map((d) => d.flow?.startedAt ?? null), [1000, null], 'the junk one and the oldest go')
  t.same(flowsToDrop({ [`${prefix}${'a'.repeat(22)}`]: 'x', [`${prefix}${'b'.repeat(22)}`]: 'y' }, prefix, 100, 1).map((d) => d.name).sort(), [`${prefix}${'a'.repeat(22)}`, `${prefix}${'b'.repeat(22)}`], 'two unreadable ones both go when only one flow fits')
  // Bytes: a new flow as large as the budget leaves room for none.
  t.equal(flowsToDrop(cookies, prefix, MAX_FLOW_BYTES).length, MAX_FLOWS, 'every flow goes for one that takes all the room')
  t.same(flowsToDrop({}, prefix, 100), [], 'nothing to drop')
})

t.test('only names flowCookieName() could make are dropped, and at most ten per login (table)', async (t) => {
  const prefix = '__Host-fss-flow.'
  const cases: Array<[string, string, boolean]> = [
    ['22 base64url characters', 'A'.repeat(21) + '_', true],
    ['21 characters', 'A'.repeat(21), false],
    ['23 characters', 'A'.repeat(23), false],
    ['a space', 'A'.repeat(10) + ' ' + 'A'.repeat(11), false],
    ['a tab', 'A'.repeat(21) + '\t', false],
    ['non-ASCII', 'A'.repeat(21) + '\u00e9', false],
    ['a dot', 'A'.repeat(21) + '.', false],
    ['empty', '', false]
  ]
  for (const [name, tail, ours] of cases) {
    t.equal(flowsToDrop({ [prefix + tail]: 'x' }, prefix, 100, 1).length, ours ? 1 : 0, name)
  }
  t.equal(MAX_DROPPED_FLOWS, 10, 'twice MAX_FLOWS')
  const many: Record<string, string> = {}
  for (let i = 0; i < 300; i++) many[flowCookieName(prefix, `state-${i}`)] = 'junk'
  t.equal(flowsToDrop(many, prefix, 100).length, 10, '300 planted flow cookies: ten expired')
})

t.test('property: whatever cookies arrive, what is dropped is few and serializable (fast-check)', async (t) => {
  const prefix = '__Host-fss-flow.'
  const tail = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{22}$/), fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 24 }))
  const value = fc.oneof(fc.constant(encodeFlow(good)), fc.string({ maxLength: 40 }))
  fc.assert(fc.property(fc.array(fc.tuple(tail, value), { maxLength: 400 }), (pairs) => {
    const cookies = Object.fromEntries(pairs.map(([n, v]) => [prefix + n, v]))
    const dropped = flowsToDrop(cookies, prefix, 100)
    return dropped.length <= MAX_DROPPED_FLOWS && dropped.every((d) => /^__Host-fss-flow\.[A-Za-z0-9_-]{22}$/.test(d.name))
  }), { numRuns: 300 })
  t.pass('300 cookie sets')
})
