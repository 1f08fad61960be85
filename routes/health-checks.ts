// The built-in checks behind GET /health (plugins add theirs to the registry in
// lib/health.ts). Every check reads snapshots the plugins keep (policy,
// counters, key info): none touches a request or a session, so /health never
// decrypts a cookie and never sets one.
import { stat } from 'node:fs/promises'
import { formatMode } from '../lib/keyring/key-file.ts'
import type { HealthCheck } from '../lib/health.ts'
import { optionalDecorator, type Decorated } from './decorators.ts'
import type { SecretKeyInfo } from '../plugins/secret-keys.ts'
import type { SessionInfo } from '../plugins/session.ts'
import type { OAuthInfo } from '../plugins/oauth-tokens.ts'

/** `file:/srv/app/secret.key` → `file`: the health answer may be public, so no paths. */
function sourceKind (source: string): string {
  const [kind, rest] = source.split(/:(.*)/s)
  return kind.startsWith('env') ? `${kind}:${rest}` : kind
}

export function keySourceCheck (fastify: Decorated): HealthCheck {
  return () => {
    const info = optionalDecorator<SecretKeyInfo>(fastify, 'secretKeys')
    if (info === undefined) {
      return optionalDecorator(fastify, 'sessionInfo') === undefined
        ? { status: 'fail', detail: 'no key loaded: register the secret-keys plugin' }
        : { status: 'pass', detail: 'key passed to the session plugin directly' }
    }
    const detail = `${sourceKind(info.source)}, ${info.count} key(s), ${info.bits}-bit`
    // The warnings themselves name files: they are in the start-up log and the debug route.
    if (info.warnings.length > 0) return { status: 'warn', detail: `${detail}: ${info.warnings.length} warning(s) in the start-up log` }
    return { status: 'pass', detail }
  }
}

export function keyFileCheck (fastify: Decorated): HealthCheck {
  return async () => {
    const file = optionalDecorator<SecretKeyInfo>(fastify, 'secretKeys')?.file
    if (file === undefined) return { status: 'pass', detail: 'no key file in use' }
    // Re-read the mode now: a chmod or a deleted file after start-up shows here.
    let mode: number
    try {
      mode = (await stat(file.path)).mode & 0o777
    } catch (err) {
      // fs errors always carry a code (ENOENT, EACCES, ...).
      return { status: 'warn', detail: `key file unreadable (${(err as NodeJS.ErrnoException).code}): the next start will not find this key and every session ends` }
    }
    const octal = formatMode(mode)
    if ((mode & 0o077) !== 0) return { status: 'warn', detail: `key file mode ${octal} lets other users read it: chmod 600` }
    return { status: 'pass', detail: `key file mode ${octal}` }
  }
}

export function cookiePolicyCheck (fastify: Decorated): HealthCheck {
  return () => {
    const info = optionalDecorator<SessionInfo>(fastify, 'sessionInfo')
    if (info === undefined) return { status: 'fail', detail: 'session plugin not registered' }
    const { policy, warnings } = info
    const summary = `${policy.cookieName}: Secure=${policy.secure}, HttpOnly=${policy.httpOnly}, SameSite=${policy.sameSite}, Path=${policy.path}` +
      (policy.domain === undefined ? '' : `, Domain=${policy.domain}`)
    // The session plugin's own judgement of its policy (Secure off, HttpOnly off,
    // SameSite=None, a Domain); SameSite=None without Secure never gets this far:
    // it is refused at registration.
    if (warnings.length > 0) return { status: 'warn', detail: `${summary}; ${warnings.join('; ')}` }
    return { status: 'pass', detail: summary }
  }
}

export function cookieSizeCheck (fastify: Decorated): HealthCheck {
  return () => {
    const info = optionalDecorator<SessionInfo>(fastify, 'sessionInfo')
    if (info === undefined) return { status: 'fail', detail: 'session plugin not registered' }
    const { issued, chunked, tooLarge, rejected } = info.counters
    const rejectedText = Object.entries(rejected).map(([reason, n]) => `${reason} ${n}`).join(', ')
    const detail = `${issued} issued, ${chunked} chunked, ${tooLarge} too large` + (rejectedText === '' ? '' : `; rejected: ${rejectedText}`)
    // Rejections are what clients sent (anyone can send any cookie): reported, not judged.
    if (tooLarge > 0) return { status: 'warn', detail: `${detail}: sessions too large for cookies failed their requests; store less in the session` }
    if (chunked > 0) return { status: 'warn', detail: `${detail}: sessions over ${info.policy.maxCookieBytes} bytes needed several cookies` }
    return { status: 'pass', detail }
  }
}

/** ms a provider-side refresh failure keeps the oauth check at `warn` (unless a refresh succeeds first). */
export const REFRESH_FAILURE_WARN_MS = 10 * 60_000

export function oauthCheck (fastify: Decorated): HealthCheck {
  return () => {
    const info = optionalDecorator<OAuthInfo>(fastify, 'oauthInfo')
    if (info === undefined || !info.configured) return { status: 'pass', detail: 'OAuth not configured: sessions only' }
    const failure = info.lastRefreshFailure
    if (failure !== undefined && failure !== null) {
      const at = new Date(failure.at).toISOString()
      // One failure long ago says nothing about the provider now: warn only while it is recent.
      if (Date.now() - failure.at <= REFRESH_FAILURE_WARN_MS) {
        return { status: 'warn', detail: `${info.provider}: last refresh failed with ${failure.code} at ${at}` }
      }
      return { status: 'pass', detail: `${info.provider}: configured, no refresh failure in the last ${REFRESH_FAILURE_WARN_MS / 60_000} minutes (last: ${failure.code} at ${at})` }
    }
    return { status: 'pass', detail: `${info.provider}: configured, no refresh failure` }
  }
}

/** The built-in checks, in the order the answer lists them. */
export function builtInChecks (fastify: Decorated): Array<{ name: string, check: HealthCheck }> {
  return [
    { name: 'secret-key', check: keySourceCheck(fastify) },
    { name: 'key-file', check: keyFileCheck(fastify) },
    { name: 'cookie-policy', check: cookiePolicyCheck(fastify) },
    { name: 'cookie-size', check: cookieSizeCheck(fastify) },
    { name: 'oauth', check: oauthCheck(fastify) }
  ]
}
