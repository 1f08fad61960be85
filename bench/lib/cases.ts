// The throughput rows (1–7): which server, which route, which baseline each
// is compared with, and the target set for it.
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
  followCookies?: boolean
  /** always shown, no target: the ratio to this row */
  baseline?: string
  targets?: Target[]
  /** the rolling row reports Set-Cookie share against one re-issue per interval per connection */
  rollingIntervalSeconds?: number
}

export function throughputCases ({ rollingIntervalSeconds }: { rollingIntervalSeconds: number }): ThroughputCase[] {
  return [
    { id: '1', label: 'bare fastify, JSON route (ceiling)', server: 'bench/servers/bare.ts', path: '/json' },
    {
      id: '2',
      label: 'suite registered, route never touches the session',
      server: 'bench/servers/suite.ts',
      env: { BENCH_MODE: 'untouched' },
      path: '/json',
      targets: [{ baseline: '1', min: 0.95, text: '≥ 0.95× #1' }]
    },
    { id: '3', label: 'raw @fastify/secure-session, read 1.7 KB token set', server: 'bench/servers/secure-session.ts', path: '/me', login: '/bench/login', baseline: '1' },
    {
      id: '4',
      label: 'suite, authenticated route reads the stored token',
      server: 'bench/servers/suite.ts',
      env: { BENCH_MODE: 'tokens' },
      path: '/me',
      login: '/bench/login',
      targets: [{ baseline: '3', min: 0.95, text: '≥ 0.95× #3' }]
    },
    {
      id: '5',
      label: 'suite, same, session chunked over two cookies',
      server: 'bench/servers/suite.ts',
      env: { BENCH_MODE: 'chunked' },
      path: '/me',
      login: '/bench/login',
      baseline: '4'
    },
    {
      id: '6',
      label: `suite, rolling every ${rollingIntervalSeconds} s, clients follow Set-Cookie`,
      server: 'bench/servers/suite.ts',
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
      server: 'bench/servers/suite.ts',
      env: { BENCH_MODE: 'counter' },
      path: '/counter',
      login: '/bench/login',
      followCookies: true,
      baseline: '1'
    },
    {
      id: '7b',
      label: '@fastify/session (memory store), same counter route',
      server: 'bench/servers/fastify-session.ts',
      path: '/counter',
      login: '/bench/login',
      followCookies: true,
      targets: [{ baseline: '7a', min: 2, invert: true, text: '#7a ≥ 2× this' }]
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
      // no target: the layer the suite writes through, to explain #7a
      id: '7d',
      label: 'reference: raw @fastify/secure-session, same counter route',
      server: 'bench/servers/secure-session.ts',
      path: '/counter',
      login: '/bench/login-user',
      followCookies: true,
      baseline: '7a'
    }
  ]
}
