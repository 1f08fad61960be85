// Mutation testing of the modules that hold the suite's security rules:
// `npm run mutation` runs all seven, `MUTATE=codec npm run mutation` one
// (a comma-separated list works too). Not part of `npm test` or CI: a full
// run takes about half an hour on two cores. StrykerJS 9.6 (10.x needs Node 22),
// tap runner (each test file runs under `node --import tsx`), TypeScript checker
// (mutants that do not type-check are dropped before any test runs).
//
// Each module lists the test files that exercise it: with per-test-file
// coverage, a mutant runs only the listed files that reach its code.
//
// Surviving mutants judged equivalent (no input can tell them apart from the
// original) are named under their module below; any other survivor is a rule
// no test pins, and a test should be added.
const modules = {
  // Equivalent (readCookies' scan of the Cookie header):
  // - `start < length` → `start <= length`: at start === length no '=' lies at or
  //   after start, so that extra turn breaks without collecting a pair.
  // - `if (eq < start)` → `true` / `eq <= start`: searching '=' again from start
  //   finds the same one (only slower; the guard exists for speed).
  // - `if (eq < end)` → `true` / `eq <= end`: with eq past the pair's end the
  //   name would span a ';', and none of our names contains one; eq === end
  //   cannot happen (one character is not both '=' and ';').
  codec: {
    mutate: 'lib/session/codec.ts',
    tests: ['test/session-codec.test.ts', 'test/session-stray-cookies.test.ts', 'test/session-bad-input.test.ts', 'test/session.test.ts']
  },
  // Equivalent:
  // - buildPayload's `if (key === '__proto__')` → `true`: defineProperty with a
  //   writable, enumerable, configurable value is what assignment makes for
  //   every other key (no other key has a setter on Object.prototype); the test
  //   pins the descriptor, so only the guard is left, and it exists for speed.
  payload: {
    mutate: 'lib/session/payload.ts',
    tests: ['test/session-payload.test.ts', 'test/session-payload-bounds.test.ts', 'test/session-sealer.test.ts', 'test/session-bad-input.test.ts', 'test/session-timeouts.test.ts']
  },
  // Equivalent:
  // - TokenInput's `token_type: Type.String({ maxLength: 64 })` → `Type.String({})`:
  //   a longer token_type is never 'bearer' (toLowerCase never shortens a
  //   string), so the Bearer check refuses it: the same FSS_TOKEN_INVALID naming
  //   token_type, only the stated rule differs.
  // - TokenInput's `expires_in: Type.Number({ minimum: 0 })` → `Type.Number({})`
  //   and `expires_at: Type.Number({ minimum: 0 })` → `Type.Number({})`: a
  //   negative number is copied into the stored `expires_in` or becomes a
  //   negative `expires_at`, which StoredTokenSchema's `minimum: 0` refuses
  //   before anything is returned: the same FSS_TOKEN_INVALID naming the same
  //   field (only TypeBox's wording of the rule differs).
  // - normalizeToken's `value !== undefined && value !== null` → `true && …`:
  //   an undefined field is then picked, but TypeBox's Optional accepts
  //   undefined and every later use tests `!== undefined`: the same token.
  // - normalizeToken's `stated.length > 0 && expiresAt > …` → `true && …` /
  //   `stated.length >= 0`: differs only when the assumed lifetime exceeds
  //   MAX_TOKEN_LIFETIME, which oauth.assumedLifetime's schema refuses
  //   (maximum 31622400).
  // Not mutated: firstError's `'invalid'` fallback, unreachable (Check() failed,
  // so Errors() has an entry); a `Stryker disable` comment marks it in the code.
  token: {
    mutate: 'lib/oauth/token.ts',
    tests: ['test/oauth-token.test.ts', 'test/oauth-plugin.test.ts', 'test/oauth-flow.test.ts']
  },
  // Equivalent:
  // - replaced()'s `if (this.#recent.size === 0) return null` → removed (`false`):
  //   with nothing remembered the chain loop's first lookup finds nothing and
  //   breaks, so it returns null without counting a share all the same; the
  //   shortcut only saves hashing the refresh token.
  refresh: {
    mutate: 'lib/oauth/refresh.ts',
    tests: ['test/oauth-refresh-rules.test.ts', 'test/oauth-refresh.test.ts', 'test/oauth-flow.test.ts', 'test/redis-records.test.ts']
  },
  // Equivalent:
  // - decodeMaterial's `if (body.length % 4 === 1) return undefined` → removed
  //   (`false`, `body.length * 4`): one dangling base64 character encodes no
  //   byte, so the canonical re-encoding check below refuses the text anyway;
  //   the early return only saves the decode.
  format: {
    mutate: 'lib/keyring/format.ts',
    tests: ['test/keyring-format.test.ts', 'test/keyring-bounds.test.ts', 'test/keyring-file.test.ts', 'test/keyring-load.test.ts', 'test/app-keys.test.ts']
  },
  // Equivalent:
  // - readKeyText's loop `n = -1` → `+1`: the start value only has to be
  //   non-zero. `length < buf.length` → `true` / `<=`: with the buffer full,
  //   one more read asks for 0 bytes, returns 0 and ends the loop the same way.
  // - parseKeyFile's `lines.length === 0 || …` → `false || …`: every() of no
  //   lines is true, so an empty file is 'empty' either way.
  // - createKeyFile's unreachable `it disappeared right after creation`
  //   (no coverage): only an outside rm between link() and the read lands there.
  // Not observable by any test (durability after a power cut only):
  // - syncDir's function body or its try block emptied, its `open(dir, 'r')` flag → '' (open throws, the
  //   catch swallows it), its `fh.sync()` emptied, and createKeyFile's
  //   `if (created) await syncDir(dir)` → `true` / `false`. Leaving the
  //   descriptor open is observable and pinned (no descriptor left open).
  // Not equivalent, but only a race tells it apart:
  // - readKeyFile's `readKeyText(path, path, false, …)` → `true` (follow):
  //   lstat() has already refused a symlink, so O_NOFOLLOW matters only when
  //   the file is swapped for one between lstat() and open(), which no test can
  //   stage without hooking fs. lstat() comes first so that a device is never
  //   opened; O_NOFOLLOW closes the window after it.
  'key-file': {
    mutate: 'lib/keyring/key-file.ts',
    tests: ['test/keyring-file.test.ts', 'test/keyring-bounds.test.ts', 'test/keyring-rotate.test.ts', 'test/keyring-load.test.ts']
  },
  // Equivalent:
  // - addEntry's `parts?.[1] ?? ''` → any other text: a failed ENTRY match
  //   leaves no address, and '' and that text are both no IP, so both throw
  //   the same FSS_OPTIONS_INVALID.
  // - addEntry's `bits !== undefined && (…)` → `true`: without bits the prefix
  //   is Number(undefined) = NaN, and NaN < 0 and NaN > max are both false.
  // - hostAllowed's `isIP(ipv6) === 6 && …` → `true`, and allowed()'s
  //   `type !== undefined && …` → `true`: BlockList.check() answers false for
  //   any text that is not an address of the family asked (it catches
  //   SocketAddress's throw), so each guard only saves that parse.
  // - clientFilter's default `hosts = []` → `['Stryker was here']`: a Host
  //   with a space fails the HOST pattern before the list is consulted.
  // - `request.socket.remoteAddress ?? ''` → other text (no coverage: only a
  //   destroyed socket has no address): neither text is an IP, both refuse.
  'client-filter': {
    mutate: 'routes/client-filter.ts',
    tests: ['test/debug-access.test.ts', 'test/debug.test.ts']
  }
}

// Test files run as plain `node` processes, where tap's per-file timeout is
// 30 s unless TAP_TIMEOUT says otherwise (.taprc is read by the tap CLI only);
// the test processes inherit this. Stryker's own timeout still catches a mutant
// that loops.
process.env.TAP_TIMEOUT ??= '180'

const names = process.env.MUTATE === undefined || process.env.MUTATE === '' ? Object.keys(modules) : process.env.MUTATE.split(',')
for (const name of names) {
  if (!(name in modules)) throw new Error(`MUTATE: unknown module ${name}; one of ${Object.keys(modules).join(', ')}`)
}
const selected = names.map((name) => modules[name])

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  coverageAnalysis: 'perTest',
  mutate: selected.map((m) => m.mutate),
  tap: {
    testFiles: [...new Set(selected.flatMap((m) => m.tests))],
    nodeArgs: ['--import', 'tsx', '-r', '{{hookFile}}', '{{testFile}}']
  },
  // The machine is shared: one test process at a time. Raise it on a quiet machine.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'coverage', '.tap', 'reports', 'bench/out', '.fss-demo'],
  cleanTempDir: 'always'
}
