// The throughput rows (1–7): which server, which route, which baseline each
// is compared with, and the goal set for it. A row is one entry here; a suite
// row that needs other root options passes them as JSON in
// BENCH_SUITE_OPTIONS (see bench/servers/suite.ts), e.g.
//   { id: '4r', label: '…', server: SUITE, env: { BENCH_MODE: 'tokens',
//     BENCH_SUITE_OPTIONS: JSON.stringify({ session: { … } }) }, path: '/me',
//     login: '/bench/login', targets: [{ baseline: '4', min: 0.9, text: '≥ 0.9× #4' }] }
export interface Target {
  /** the row this one is divided by (`this ÷ baseline`), or divides (`invert`) */
  baseline: string
  min: number
  /** compare `baseline ÷ this` instead, for "the suite is ≥ N× the peer" */
  invert?: boolean
  text: string
}

export interface ThroughputCase {
  id: string
  label: string
  server: string
  env?: Record<string, string>
  path: string
  /** route that logs the client in; its Set-Cookie headers become the load's Cookie */
  login?: string
  /** send the Cookie header another row logged in with (a server with no login route of its own) */
  cookieFrom?: string
  followCookies?: boolean
  /** always shown, no target: the ratio to this row */
  baseline?: string
  targets?: Target[]
  /** the rolling row reports Set-Cookie share against one re-issue per interval per connection */
  rollingIntervalSeconds?: number
}

const SUITE = 'bench/servers/suite.ts'

export function throughputCases ({ rollingIntervalSeconds }: { rollingIntervalSeconds: number }): ThroughputCase[] {
  return [
    { id: '1', label: 'bare fastify, JSON route (ceiling)', server: 'bench/servers/bare.ts', path: '/json' },
    {
      id: '2',
      label: 'suite registered, route never touches the session',
      server: SUITE,
      env: { BENCH_MODE: 'untouched' },
      path: '/json',
      targets: [{ baseline: '1', min: 0.95, text: '≥ 0.95× #1' }]
    },
    // what every request of a logged-in browser carries: bare fastify is
    // slower with it too (a larger header to read), so #2c is compared with
    // #2b, not with #1
    { id: '2b', label: 'bare fastify, same route, receiving #2c\'s 1.7 KB session cookie', server: 'bench/servers/bare.ts', path: '/json', cookieFrom: '2c' },
    {
      id: '2c',
      label: 'suite, route never touches the session, 1.7 KB session cookie sent',
      server: SUITE,
      env: { BENCH_MODE: 'untouched' },
      path: '/json',
      login: '/bench/login',
      baseline: '2',
      targets: [{ baseline: '2b', min: 0.95, text: '≥ 0.95× #2b' }]
    },
    { id: '3', label: 'raw @fastify/secure-session, read 1.7 KB token set', server: 'bench/servers/secure-session.ts', path: '/me', login: '/bench/login', baseline: '1' },
    {
      id: '4',
      label: 'suite, authenticated route reads the stored token',
      server: SUITE,
      env: { BENCH_MODE: 'tokens' },
      path: '/me',
      login: '/bench/login',
      targets: [{ baseline: '3', min: 1.3, text: '≥ 1.3× #3' }]
    },
    {
      id: '4r',
      label: 'suite, same read with the session registry on (memory)',
      server: SUITE,
      env: { BENCH_MODE: 'registry', BENCH_SUITE_OPTIONS: JSON.stringify({ sessions: { store: 'memory' } }) },
      path: '/me',
      login: '/bench/login',
      targets: [{ baseline: '4', min: 0.9, text: '≥ 0.9× #4' }]
    },
    {
      id: '5',
      label: 'suite, same, session chunked over two cookies',
      server: SUITE,
      env: { BENCH_MODE: 'chunked' },
      path: '/me',
      login: '/bench/login',
      targets: [{ baseline: '4', min: 0.8, text: '≥ 0.8× #4' }]
    },
    // the bytes alone: bare fastify receiving #5's 6 KB of cookies instead of
    // #2c's 1.7 KB (#5b ÷ #2b) is the floor of #5 ÷ #4 set by the larger
    // header, before any session code runs
    { id: '5b', label: 'bare fastify, same route, receiving #5\'s 6 KB chunked session cookies', server: 'bench/servers/bare.ts', path: '/json', cookieFrom: '5', baseline: '2b' },
    {
      id: '6',
      label: `suite, rolling every ${rollingIntervalSeconds} s, clients follow Set-Cookie`,
      server: SUITE,
      env: { BENCH_MODE: 'rolling', BENCH_ROLLING_INTERVAL: String(rollingIntervalSeconds) },
      path: '/me',
      login: '/bench/login',
      followCookies: true,
      baseline: '4',
      rollingIntervalSeconds
    },
    {
      id: '7a',
      label: 'suite, authenticated counter route (writes every request)',
      server: SUITE,
      env: { BENCH_MODE: 'counter' },
      path: '/counter',
      login: '/bench/login',
      followCookies: true,
      targets: [{ baseline: '7d', min: 1, text: '≥ 1.0× #7d' }]
    },
    {
      id: '7b',
      label: '@fastify/session (memory store), same counter route',
      server: 'bench/servers/fastify-session.ts',
      path: '/counter',
      login: '/bench/login',
      followCookies: true,
      targets: [{ baseline: '7a', min: 1.5, invert: true, text: '#7a ≥ 1.5× this' }]
    },
    {
      id: '7c',
      label: 'express 5 + express-session (memory store), same counter route',
      server: 'bench/servers/express-session.ts',
      path: '/counter',
      login: '/bench/login',
      followCookies: true,
      targets: [{ baseline: '7a', min: 6, invert: true, text: '#7a ≥ 6× this' }]
    },
    {
      // the layer the suite writes through: the floor #7a is held to
      id: '7d',
      label: 'raw @fastify/secure-session, same counter route',
      server: 'bench/servers/secure-session.ts',
      path: '/counter',
      login: '/bench/login-user',
      followCookies: true
    }
  ]
}
