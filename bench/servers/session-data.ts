// Session fields the bench servers store, on the SessionData interface that
// @fastify/secure-session and the suite share. Prefixed so that they cannot
// clash with the fields the suite's own plugins declare.
import type { TokenSet } from '../lib/tokens.ts'

declare module '@fastify/secure-session' {
  interface SessionData {
    benchUser: string
    benchCount: number
    benchTokens: TokenSet & { expires_at: number }
  }
}
