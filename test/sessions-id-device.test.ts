import t from 'tap'
import fc from 'fast-check'
import Bowser from 'bowser'
import { createSessionId, isSessionId } from '../lib/sessions/id.ts'
import { deviceLabel, DEVICE_LABEL_MAX, UNKNOWN_DEVICE } from '../lib/sessions/device.ts'

t.test('a session id is 128 random bits in 22 base64url characters, and never repeats', async (t) => {
  const ids = Array.from({ length: 2000 }, createSessionId)
  t.ok(ids.every(isSessionId), 'each passes its own shape check')
  t.equal(new Set(ids).size, 2000)
  const id = createSessionId()
  t.equal(id.length, 22)
  t.equal(Buffer.from(id, 'base64url').length, 16)
})

t.test('isSessionId accepts exactly the canonical encoding of 16 bytes', async (t) => {
  // Every 16 bytes encode to an accepted id, and decoding it gives them back.
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
    const id = Buffer.from(bytes).toString('base64url')
    return isSessionId(id) && Buffer.from(id, 'base64url').equals(Buffer.from(bytes))
  }), { numRuns: 2000 })
  // Anything accepted is exactly such an encoding: it round-trips through 16 bytes.
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (value) => {
    if (!isSessionId(value)) return true
    const bytes = Buffer.from(value, 'base64url')
    return bytes.length === 16 && bytes.toString('base64url') === value
  }), { numRuns: 5000 })
  // Near misses: a valid id with one character changed to anything outside the alphabet, or its length off by one.
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(21), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    (bytes, at, ch) => {
      const id = Buffer.from(bytes).toString('base64url')
      const changed = id.slice(0, at) + ch + id.slice(at + 1)
      if (/^[A-Za-z0-9_-]$/.test(ch)) return true
      return !isSessionId(changed) && !isSessionId(id + 'A') && !isSessionId(id.slice(1))
    }), { numRuns: 2000 })
  for (const bad of [undefined, null, 42, {}, [], '', 'A'.repeat(21) + 'B', 'A'.repeat(22) + '=', ' ' + 'A'.repeat(21), Buffer.alloc(16)]) {
    t.notOk(isSessionId(bad), `refuses ${JSON.stringify(bad)}`)
  }
  t.ok(isSessionId('A'.repeat(21) + 'w'))
})

const UAS: Array<[string, string]> = [
  ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', 'Chrome on Linux'],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1', 'Safari on iOS'],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0', 'Firefox on Windows'],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15', 'Safari on macOS'],
  ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36', 'Chrome on Android'],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0', 'Microsoft Edge on Windows'],
  // A browser bowser names, on no system it knows.
  ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'Googlebot'],
  // A system it knows, with a browser it can only echo from the user agent.
  ['EvilBrowser/1.0 (Windows NT 10.0; Win64)', 'Browser on Windows'],
  ['curl/8.5.0', UNKNOWN_DEVICE],
  ['<script>alert(1)</script>/1.0 (x)', UNKNOWN_DEVICE],
  ['', UNKNOWN_DEVICE],
  ['   ', UNKNOWN_DEVICE]
]

t.test('deviceLabel names the browser and system from bowser, or says it does not know', async (t) => {
  for (const [ua, label] of UAS) t.equal(deviceLabel(ua), label, ua)
  t.equal(deviceLabel(undefined), UNKNOWN_DEVICE, 'no header')
  t.equal(deviceLabel(['Chrome']), UNKNOWN_DEVICE, 'not a string (a repeated header)')
  t.equal(deviceLabel('x'.repeat(100_000) + '/1.0 '), UNKNOWN_DEVICE, 'a huge user agent is read only in part')
})

// Every label deviceLabel can give: built only from bowser's own tables.
const browsers = Object.values(Bowser.BROWSER_MAP) as string[]
const systems = Object.values(Bowser.OS_MAP) as string[]
function possible (label: string): boolean {
  if (label === UNKNOWN_DEVICE) return true
  if (browsers.includes(label)) return true
  const on = label.lastIndexOf(' on ')
  if (on === -1) return false
  const [browser, os] = [label.slice(0, on), label.slice(on + 4)]
  return systems.includes(os) && (browser === 'Browser' || browsers.includes(browser))
}

t.test('deviceLabel never carries client-chosen text, never throws, and stays short, whatever the header', async (t) => {
  const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9._-]{0,20}$/)
  const userAgent = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    // Shaped like real user agents, with client-chosen product names and comments.
    fc.tuple(token, token, fc.string({ maxLength: 60 }), fc.constantFrom('', ' Chrome/120.0', ' Firefox/121.0', ' Safari/605.1.15'))
      .map(([product, version, comment, tail]) => `${product}/${version} (${comment})${tail}`),
    fc.tuple(fc.constantFrom(...UAS.map(([ua]) => ua)), fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(200))
      .map(([ua, noise, at]) => ua.slice(0, at) + noise + ua.slice(at))
  )
  fc.assert(fc.property(userAgent, (ua) => {
    const label = deviceLabel(ua)
    return label.length <= DEVICE_LABEL_MAX && possible(label)
  }), { numRuns: 3000 })
  t.pass('every label came from the tables')
})
