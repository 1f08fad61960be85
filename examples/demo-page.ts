// The demo's one page: who is logged in, each provider connection's token
// state (never a value), and the controls. Log in and connect are links that
// send this page's path as returnTo, so a flow lands back where it started;
// log out and disconnect are plain POST forms carrying the session's CSRF token
// (a GET would let any page do it with an <img>); the routes answer a form post
// with a 303 back here, so no script is needed.
import type { TokenMetadata } from '../index.ts'

export interface PageModel {
  user: { sub: string, name?: string } | null
  /** the user comes from an id_token the suite verified (OpenID Connect) */
  verified?: boolean
  token: TokenMetadata | null
  /** an FSS_* code when the user could not be shown */
  problem: string | null
  /** the issuer or token endpoint's origin; null when OAuth is not configured */
  provider: string | null
  csrfToken: string | null
  /** the user's sessions from the registry (GET /api/sessions has the same) and the CSRF token their buttons send; null when not known */
  sessions?: { csrfToken: string, list: Array<{ id: string, device: string, lastSeenAt: number, current: boolean }> } | null
  /** this page's own path and query: the login and connect links send it as returnTo */
  returnTo?: string
  /** every provider connection, the login's first; absent: the login's token only */
  connections?: Connection[]
}

export interface Connection {
  name: string
  label: string
  /** the provider the user logged in with */
  login: boolean
  token: TokenMetadata | null
  /** who the provider says the connected account is (kept by onLogin), if known */
  account?: { sub: string, name?: string }
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

function tokenRows (token: TokenMetadata): string {
  return `
    <tr><th>token expires</th><td class="expires">${new Date(token.expiresAt * 1000).toISOString()}${token.expired ? ' (expired)' : ''}</td></tr>
    <tr><th>refresh token</th><td>${token.hasRefreshToken ? 'yes' : 'no'}</td></tr>
    <tr><th>scopes</th><td>${escapeHtml(token.scopes.join(' ') || '(none)')}</td></tr>
    <tr><th>fields stored</th><td>${escapeHtml(token.fields.join(', '))}</td></tr>`
}

const back = (m: PageModel): string => encodeURIComponent(m.returnTo ?? '/')

function connection (m: PageModel, c: Connection, csrf: string): string {
  const id = escapeHtml(c.name)
  const head = `<h2 id="connection-${id}" data-connected="${c.token !== null}">${escapeHtml(c.label)}${c.login ? ' <small>(logged in with)</small>' : ''}</h2>`
  if (c.token === null) {
    return `${head}
  <p><a id="connect-${id}" class="button" href="/login/${id}?returnTo=${back(m)}">Connect ${escapeHtml(c.label)}</a></p>`
  }
  const account = c.account === undefined
    ? ''
    : `
    <tr><th>account</th><td class="account">${escapeHtml(c.account.name ?? c.account.sub)}</td></tr>`
  const control = c.login
    ? ''
    : `
  <form id="disconnect-${id}-form" method="post" action="/disconnect/${id}">${csrf}<button id="disconnect-${id}" type="submit">Disconnect</button></form>`
  return `${head}
  <table>${account}${tokenRows(c.token)}
  </table>${control}`
}

function loggedIn (m: PageModel, token: TokenMetadata): string {
  const who = m.user === null ? 'someone (no user info)' : `${escapeHtml(m.user.name ?? m.user.sub)} <small>(${escapeHtml(m.user.sub)})</small>`
  const csrf = m.csrfToken === null ? '' : `<input type="hidden" name="_csrf" value="${escapeHtml(m.csrfToken)}">`
  const proof = m.verified === true ? ' <small id="verified">(verified id_token)</small>' : ''
  const connections = m.connections === undefined
    ? `<table>${tokenRows(token)}
  </table>`
    : m.connections.map((c) => connection(m, c, csrf)).join('\n  ')
  return `
  <p id="who" data-state="logged-in">Logged in as <strong id="user">${who}</strong>${proof}</p>
  ${connections}
  ${m.problem === null ? '' : `<p class="problem">Could not load the user: ${escapeHtml(m.problem)}</p>`}
  <form id="logout-form" method="post" action="/logout">${csrf}<button id="logout" type="submit">Log out</button></form>
  ${yourSessions(m)}`
}

// "Your sessions": DELETE /api/sessions/:id and POST /api/sessions/revoke-others, with the
// page's CSRF token in the x-csrf-token header (a form cannot send DELETE).
function yourSessions (m: PageModel): string {
  if (m.sessions === null || m.sessions === undefined) return ''
  const rows = m.sessions.list.map((s) => `<li class="session" data-id="${escapeHtml(s.id)}"${s.current ? ' data-current="true"' : ''}>
      ${escapeHtml(s.device)}${s.current ? ' <strong>(this device)</strong>' : ''} <small>last seen ${new Date(s.lastSeenAt).toISOString()}</small>
      ${s.current ? '' : `<button class="sign-out" type="button" data-id="${escapeHtml(s.id)}">Sign out</button>`}</li>`).join('\n    ')
  return `<h2>Your sessions</h2>
  <ul id="sessions">
    ${rows}
  </ul>
  <button id="sign-out-others" type="button">Sign out everywhere else</button>
  <script>
    const csrf = ${JSON.stringify(m.sessions.csrfToken).replace(/</g, '\\u003c')}
    const send = (method, url) => fetch(url, { method, headers: { 'x-csrf-token': csrf } }).then(() => location.reload())
    for (const b of document.querySelectorAll('.sign-out')) b.addEventListener('click', () => send('DELETE', '/api/sessions/' + b.dataset.id))
    document.getElementById('sign-out-others').addEventListener('click', () => send('POST', '/api/sessions/revoke-others'))
  </script>`
}

export function renderPage (m: PageModel): string {
  const body = m.token === null
    ? `<p id="who" data-state="logged-out">Not logged in.</p>
  <p><a id="login" class="button" href="/login?returnTo=${back(m)}">Log in</a> <small>with ${escapeHtml(m.provider ?? 'the identity provider')}</small></p>`
    : loggedIn(m, m.token)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastify-session-suite demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #222 }
  h1 { font-size: 1.4rem } h2 { font-size: 1.1rem; margin-top: 1.5rem } th { text-align: left; padding-right: 1rem; font-weight: 500; color: #555; white-space: nowrap }
  .button, button { display: inline-block; padding: .4rem 1rem; border: 1px solid #333; border-radius: 4px; background: #fff; color: #222; text-decoration: none; font: inherit; cursor: pointer }
  .problem { color: #a00 } footer { margin-top: 2rem; font-size: .9rem; color: #555 }
</style>
</head>
<body>
  <h1>fastify-session-suite demo</h1>
  ${body}
  <footer>Inspect: <a href="/health">/health</a> · <a href="/api/session/debug">session debug</a> ·
  <a href="/api/oauth/test-flow">OAuth test flow</a> · <a href="/api/session/test-persistence">persistence test</a> ·
  <a href="/docs">API docs</a></footer>
</body>
</html>
`
}
