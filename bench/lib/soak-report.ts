// The soak's closing report, in markdown: requests, statuses, 5xx, lost
// sessions, RSS after warm-up / middle / end, and token-endpoint refresh calls
// against what the clients saw and what the time logged in implies.
import type { SoakStats } from './soak-client.ts'
import type { OidcProvider } from './oidc.ts'
import { machine } from './report.ts'

export interface RssSample { t: number, rss: number }

function at (samples: RssSample[], t: number): RssSample {
  return samples.reduce((best, s) => Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best, samples[0])
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const verdict = (ok: boolean): string => ok ? 'met' : 'missed'

export interface SoakInput { stats: SoakStats, rss: RssSample[], provider: OidcProvider, elapsed: number, users: number, tokenLifetime: number, app: string, command: string }

export function soakReport ({ stats, rss, provider, elapsed, users, tokenLifetime, app, command }: SoakInput): string {
  const fiveXx = Object.entries(stats.byStatus).filter(([s]) => s.startsWith('5')).reduce((n, [, c]) => n + c, 0)
  // warm-up: the first fifth of the run (JIT, pools, the provider's first keys)
  const afterWarmup = at(rss, elapsed / 5)
  const middle = at(rss, elapsed / 2)
  const end = rss[rss.length - 1]
  const peak = rss.reduce((max, s) => Math.max(max, s.rss), 0)
  const growth = (end.rss - afterWarmup.rss) / afterWarmup.rss
  const refreshCalls = [...provider.refreshCalls.values()]
  const calls = refreshCalls.reduce((a, b) => a + b, 0)
  const reused = refreshCalls.filter((c) => c > 1).length
  // a token is refreshed once fewer than min(60, lifetime / 2) seconds remain
  const period = tokenLifetime - Math.min(60, tokenLifetime / 2)
  const estimate = stats.sessionSeconds.reduce((n, s) => n + Math.floor(s / period), 0)
  const m = machine()
  return [
    '## Soak',
    '',
    `\`${command}\` — app ${app}; ${users} clients for ${elapsed.toFixed(0)} s on ${m.cpu} (${m.cores} cores), Node ${m.node}. Access tokens from the real OAuth server live ${tokenLifetime} s.`,
    '',
    '| measure | value | target | result |',
    '|---|---|---|---|',
    `| requests | ${stats.requests} (${(stats.requests / elapsed).toFixed(0)}/s) | — | — |`,
    `| responses by status | ${Object.entries(stats.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')} | — | — |`,
    `| network errors | ${stats.networkErrors}${Object.keys(stats.networkErrorKinds).length > 0 ? ' (' + Object.entries(stats.networkErrorKinds).map(([k, n]) => `${k}: ${n}`).join(', ') + ')' : ''}; besides ${stats.oversizeResets} 20 KB headers the server hung up on | 0 | ${verdict(stats.networkErrors === 0)} |`,
    `| 5xx | ${fiveXx} | 0 | ${verdict(fiveXx === 0)} |`,
    `| lost sessions | ${stats.lostSessions} | 0 | ${verdict(stats.lostSessions === 0)} |`,
    `| logins / logouts | ${stats.logins} / ${stats.logouts} | — | — |`,
    `| logouts that left the session readable | ${stats.failedLogouts} | 0 | ${verdict(stats.failedLogouts === 0)} |`,
    `| tampered / oversize cookie requests | ${stats.tampered} / ${stats.oversize} | — | — |`,
    `| server RSS after warm-up / middle / end | ${mb(afterWarmup.rss)} (${afterWarmup.t.toFixed(0)} s) / ${mb(middle.rss)} (${middle.t.toFixed(0)} s) / ${mb(end.rss)} (${end.t.toFixed(0)} s): ${(growth * 100).toFixed(1)} %; peak ${mb(peak)} | flat within 10 % | ${verdict(Math.abs(growth) <= 0.1)} |`,
    `| token-endpoint refresh calls | ${calls} for ${refreshCalls.length} refresh tokens (${reused} used more than once) | 1 per refresh token | ${verdict(reused === 0)} |`,
    // each client reads sequentially, so every refresh shows as a new token
    // generation to it, except one cut short by a logout: at most one per client
    `| refresh calls vs refreshes seen by clients (time logged in implies ~${estimate}) | ${calls} vs ${stats.generations} | equal, ± 1 per client | ${verdict(Math.abs(calls - stats.generations) <= users)} |`,
    `| token-endpoint calls by grant | ${Object.entries(provider.grants).map(([g, n]) => `${g}: ${n}`).join(', ')} | — | — |`
  ].join('\n')
}
