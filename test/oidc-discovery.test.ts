// Discovery against the real provider's /.well-known/openid-configuration:
// the issuer must match exactly, every failure is coded and names the URL and
// the fix (never a query or a credential), and the options are checked once.
import t from 'tap'
import fc from 'fast-check'
import { startOidcServer, type OidcServer } from './fixtures/oidc-server.ts'
import { CLIENT_ID, assertRefused, relyingParty } from './oidc-helper.ts'
import { createRelyingParty } from '../lib/oidc/relying-party.ts'
import { discoverProvider, discoveryUrl, parseProviderMetadata } from '../lib/oidc/discovery.ts'
import { resolveOidcOptions } from '../lib/oidc/options.ts'
import { displayUrl } from '../lib/oidc/http.ts'

let oidc: OidcServer
let doc: Record<string, unknown>
const WELL_KNOWN = '/.well-known/openid-configuration'
t.before(async () => {
  oidc = await startOidcServer()
  doc = await (await fetch(oidc.endpoints.discovery)).json() as Record<string, unknown>
})
t.teardown(() => oidc.stop())

function serveDocument (edits: Record<string, unknown>): void {
  oidc.answerPath(WELL_KNOWN, { body: JSON.stringify({ ...doc, ...edits }) })
}
t.afterEach(() => { oidc.answerPath(WELL_KNOWN, null) })

t.test('discovery reads the provider\'s metadata and keeps the known fields', async (t) => {
  const rp = await relyingParty(oidc)
  t.match(rp.metadata, {
    issuer: oidc.issuer,
    jwks_uri: oidc.endpoints.jwks,
    authorization_endpoint: oidc.endpoints.authorize,
    token_endpoint: oidc.endpoints.token,
    userinfo_endpoint: oidc.endpoints.userinfo,
    end_session_endpoint: oidc.endpoints.endSession,
    id_token_signing_alg_values_supported: ['RS256']
  })
  t.notOk('introspection_endpoint' in rp.metadata, 'fields the suite does not read are dropped')
  t.equal(rp.callbackIssuerRequired, false, 'this provider does not advertise RFC 9207')
  t.same(rp.options.profileClaims, ['name', 'email', 'email_verified', 'picture', 'preferred_username'])
})

t.test('a discovery document naming another issuer stops start-up', async (t) => {
  // The configured issuer has a trailing slash the provider's does not: not the same issuer.
  const err = await assertRefused(t, createRelyingParty({ issuer: `${oidc.issuer}/`, clientId: CLIENT_ID }), 'FSS_OIDC_ISSUER_MISMATCH', 'mismatch')
  t.match(err.message, oidc.endpoints.discovery, 'names the URL')
  t.match(err.message, /Fix: set the issuer to exactly/, 'and the fix')

  serveDocument({ issuer: 'https://user:hunter2-password@evil.example/tenant?access_token=leaked-query-value' })
  const other = await assertRefused(t, relyingParty(oidc), 'FSS_OIDC_ISSUER_MISMATCH', 'mismatch', ['hunter2-password', 'leaked-query-value'])
  t.match(other.message, 'https://evil.example/tenant', 'the found issuer, without userinfo or query')
  serveDocument({ issuer: 'not a url at all' })
  t.match((await assertRefused(t, relyingParty(oidc), 'FSS_OIDC_ISSUER_MISMATCH', 'mismatch')).message, '(not a URL)')
})

t.test('a discovery endpoint that never answers is a bounded, coded timeout', async (t) => {
  oidc.answerPath(WELL_KNOWN, { hang: true })
  const err = await assertRefused(t, relyingParty(oidc, { timeout: 150 }), 'FSS_OIDC_DISCOVERY_TIMEOUT', 'timeout')
  t.equal(err.statusCode, 504)
  t.match(err.message, `${oidc.endpoints.discovery} did not answer within 150 ms`)
})

t.test('a discovery endpoint that stalls mid-body times out too', async (t) => {
  // A raw loopback server: headers, a first chunk, then nothing.
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"issuer":') })
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  await assertRefused(t, discoverProvider(issuer, { timeout: 150 }), 'FSS_OIDC_DISCOVERY_TIMEOUT', 'timeout')
})

t.test('garbage from the discovery endpoint is a coded error naming the URL and the fix', async (t) => {
  const cases: Array<[string, Parameters<OidcServer['answerPath']>[1], string, RegExp]> = [
    ['an HTML page', { body: '<html>hello</html>', contentType: 'text/html' }, 'not_json', /is not JSON/],
    ['HTTP 404', { status: 404, body: '' }, 'http_status', /HTTP status other than 200/],
    ['a JSON array', { body: '[]' }, 'invalid', /not provider metadata\. Fix/],
    ['no jwks_uri', { body: JSON.stringify({ ...doc, jwks_uri: undefined }) }, 'invalid', /not provider metadata: jwks_uri/],
    ['a jwks_uri that is not a URL', { body: JSON.stringify({ ...doc, jwks_uri: 'file:///etc/passwd' }) }, 'invalid', /jwks_uri/],
    ['over 256 KiB', { body: JSON.stringify({ ...doc, pad: 'x'.repeat(300 * 1024) }) }, 'too_large', /over 262144 bytes/],
    ['a dropped connection', { reset: true }, 'unreachable', /could not be reached\. Fix: check the issuer URL and that this host can reach/]
  ]
  for (const [name, answer, reason, message] of cases) {
    oidc.answerPath(WELL_KNOWN, answer)
    const err = await assertRefused(t, relyingParty(oidc), 'FSS_OIDC_DISCOVERY_FAILED', reason)
    t.match(err.message, message, name)
    t.match(err.message, oidc.endpoints.discovery, `${name}: names the URL`)
    t.equal(err.statusCode, 502)
  }
})

t.test('an https issuer may not point at plain-http endpoints', async (t) => {
  const issuer = 'https://login.example.org/tenant'
  const good = { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }
  t.same(parseProviderMetadata(good, issuer), good)
  const err = await assertRefused(t, () => parseProviderMetadata({ ...good, jwks_uri: 'http://login.example.org/jwks' }, issuer), 'FSS_OIDC_DISCOVERY_FAILED', 'invalid')
  t.match(err.message, 'jwks_uri is plain http under an https issuer')
  t.match(err.message, 'https://login.example.org/tenant/.well-known/openid-configuration')
})

t.test('an endpoint that matches the URL pattern but does not parse is refused at discovery, not at first use', async (t) => {
  const issuer = 'https://login.example.org/tenant'
  const good = { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }
  for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint', 'revocation_endpoint']) {
    const err = await assertRefused(t, () => parseProviderMetadata({ ...good, [name]: 'https://://:@a.aa' }, issuer), 'FSS_OIDC_DISCOVERY_FAILED', 'invalid')
    t.match(err.message, `${name} is not a URL`, name)
  }
})

t.test('the id_token algorithms: advertised, narrowed, asymmetric only', async (t) => {
  serveDocument({ id_token_signing_alg_values_supported: ['none', 'HS256', 'ES256', 'RS256', 'XX999'] })
  t.same((await relyingParty(oidc)).algorithms, ['ES256', 'RS256'], 'none, HMAC and unknown names are dropped')
  t.same((await relyingParty(oidc, { idTokenSigningAlgs: ['RS256', 'PS256'] })).algorithms, ['RS256'], 'configured and advertised')
  await assertRefused(t, relyingParty(oidc, { idTokenSigningAlgs: ['PS256'] }), 'FSS_OIDC_DISCOVERY_FAILED', 'algorithm')
  serveDocument({ id_token_signing_alg_values_supported: ['none', 'HS256'] })
  const err = await assertRefused(t, relyingParty(oidc), 'FSS_OIDC_DISCOVERY_FAILED', 'algorithm')
  t.match(err.message, /never none or HMAC/)
  serveDocument({ id_token_signing_alg_values_supported: undefined })
  t.same((await relyingParty(oidc)).algorithms, ['RS256'], 'not advertised: RS256, the one every provider supports')
})

t.test('a provider advertising RFC 9207 makes the callback iss required', async (t) => {
  serveDocument({ authorization_response_iss_parameter_supported: true })
  const rp = await relyingParty(oidc)
  t.equal(rp.callbackIssuerRequired, true)
  await assertRefused(t, () => rp.checkCallbackIssuer(undefined), 'FSS_OAUTH_ISSUER_INVALID', 'missing')
  t.doesNotThrow(() => rp.checkCallbackIssuer(oidc.issuer))
})

t.test('an explicit provider (jwksUri) reads no discovery document', async (t) => {
  const before = oidc.requests(WELL_KNOWN)
  const rp = await relyingParty(oidc, { jwksUri: oidc.endpoints.jwks, endSessionEndpoint: oidc.endpoints.endSession, userinfoEndpoint: oidc.endpoints.userinfo })
  t.equal(oidc.requests(WELL_KNOWN), before)
  t.same(rp.metadata, { issuer: oidc.issuer, jwks_uri: oidc.endpoints.jwks, userinfo_endpoint: oidc.endpoints.userinfo, end_session_endpoint: oidc.endpoints.endSession })
  t.same(rp.algorithms, ['RS256'])
  t.same((await relyingParty(oidc, { jwksUri: oidc.endpoints.jwks })).metadata, { issuer: oidc.issuer, jwks_uri: oidc.endpoints.jwks })
})

t.test('options are checked once, naming the option, with defaults applied', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ issuer: 'https://idp.example/?tenant=1' }, /oidc\.issuer/],
    [{ issuer: 'https://user:pw@idp.example' }, /oidc\.issuer/],
    [{ clockTolerance: 301 }, /oidc\.clockTolerance/],
    [{ idTokenSigningAlgs: ['HS256'] }, /oidc\.idTokenSigningAlgs/],
    [{ idTokenSigningAlgs: ['none'] }, /oidc\.idTokenSigningAlgs/],
    [{ endSessionEndpoint: 'https://idp.example/logout' }, /oidc\.endSessionEndpoint: only with jwksUri/],
    [{ userinfoEndpoint: 'https://idp.example/userinfo' }, /oidc\.userinfoEndpoint: only with jwksUri/],
    [{ profileClaims: ['name', 'nonce'] }, /oidc\.profileClaims: nonce is a protocol claim/],
    [{ jwksCooldown: 0 }, /oidc\.jwksCooldown/],
    [{ surprise: true }, /oidc/]
  ]
  for (const [edit, message] of bad) {
    const err = await assertRefused(t, () => resolveOidcOptions({ issuer: 'https://idp.example', clientId: CLIENT_ID, ...edit }), 'FSS_OPTIONS_INVALID', undefined)
    t.match(err.message, message)
  }
  const resolved = resolveOidcOptions({ issuer: 'https://idp.example', clientId: CLIENT_ID, profileClaims: ['groups'] }, 'oauth.oidc')
  t.match(resolved, { timeout: 10_000, clockTolerance: 30, idTokenMaxAge: 600, logoutTokenMaxAge: 120, jwksCooldown: 30_000, jwksCacheMaxAge: 600_000, jwksFailureBackoff: 5_000, profileClaims: ['groups'] })
  t.match((await assertRefused(t, () => resolveOidcOptions({ clientId: 'x' }, 'oauth.oidc'), 'FSS_OPTIONS_INVALID', undefined)).message, /oauth\.oidc/)
})

t.test('the discovery URL and the shown URLs', async (t) => {
  t.equal(discoveryUrl('https://idp.example/'), 'https://idp.example/.well-known/openid-configuration')
  t.equal(discoveryUrl('https://idp.example/tenant'), 'https://idp.example/tenant/.well-known/openid-configuration')
  t.equal(displayUrl('https://u:p@idp.example:8443/a?b=c#d'), 'https://idp.example:8443/a')
  t.equal(displayUrl('::'), '(not a URL)')
})

t.test('any JSON as a discovery document is either metadata for this issuer or a coded refusal', async (t) => {
  const issuer = 'https://idp.example'
  const base = { issuer, authorization_endpoint: `${issuer}/a`, token_endpoint: `${issuer}/t`, jwks_uri: `${issuer}/k` }
  const codes = new Set(['FSS_OIDC_DISCOVERY_FAILED', 'FSS_OIDC_ISSUER_MISMATCH'])
  const document = fc.oneof(
    fc.jsonValue(),
    fc.dictionary(fc.constantFrom(...Object.keys(base), 'end_session_endpoint', 'id_token_signing_alg_values_supported', 'authorization_response_iss_parameter_supported'), fc.jsonValue())
      .map((edits) => ({ ...base, ...edits }))
  )
  fc.assert(fc.property(document, (value) => {
    try {
      const metadata = parseProviderMetadata(value, issuer)
      return metadata.issuer === issuer && metadata.jwks_uri.startsWith('https://')
    } catch (err) {
      return codes.has((err as { code?: string }).code ?? '')
    }
  }), { numRuns: 500 })
  t.pass('500 documents')
})
