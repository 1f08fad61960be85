// Whether the process runs in production, for the development-only features
// (debug routes, the token backup). NODE_ENV is compared without case and
// surrounding blanks: `PRODUCTION` or `production ` is a typo of production,
// never a request for development features. Any other value (unset,
// `development`, `test`, `staging`, ...) is not production.
export function isProduction (env: Record<string, string | undefined> = process.env): boolean {
  return env.NODE_ENV?.trim().toLowerCase() === 'production'
}
