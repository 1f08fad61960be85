// URLs as the suite shows them (/health, the debug routes, oauthInfo) or logs
// them: scheme, host, port and path only. Userinfo (`user:password@`) is a
// credential, and a query string or fragment may carry a code, a state or an
// API key, so neither ever leaves in a display form.

/**
 * `https://user:pw@idp.example:8443/realm?x=1#y` → `https://idp.example:8443/realm`;
 * a bare origin stays bare (`https://idp.example`). Throws for an unparsable URL.
 */
export function displayUrl (url: string): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`
}

/** A request URL (`/path?query`) as logged: the path only. */
export function displayPath (url: string): string {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** The request fields a log line carries, the query string left out (a Fastify `logSerializers.req`). */
export function requestForLog (req: { method: string, url: string, host: string, ip: string }): Record<string, unknown> {
  return { method: req.method, url: displayPath(req.url), host: req.host, remoteAddress: req.ip }
}
