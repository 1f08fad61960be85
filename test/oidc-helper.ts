// Helpers for the OpenID Connect core tests: tokens signed by the real
// provider (oauth2-mock-server's issuer, any claims and header), tokens
// forged with jose (alg none, HS256 keyed with the provider's public key,
// another key), and the assertion every refusal gets: its code, its reason,
// and no token, nonce or key value anywhere in the error.
import type { Test } from 'tap'
import { SignJWT, UnsecuredJWT, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose'
import type { OidcServer } from './fixtures/oidc-server.ts'
import { createRelyingParty, type RelyingParty } from '../lib/oidc/relying-party.ts'

export const CLIENT_ID = 'suite-client'
export const NONCE = 'n-0S6_WzA2Mj-this-flow-nonce-0123456789abcdef'

/** Claims to set; `undefined` removes a claim the provider would add. */
export type ClaimEdits = Record<string, unknown>

export interface SignOptions {
  kid?: string
  /** seconds */
  expiresIn?: number
  header?: Record<string, unknown>
}

/** An id_token signed by the provider's real key: sub, aud and nonce by default, then `edits`. */
export async function providerToken (oidc: OidcServer, edits: ClaimEdits = {}, opts: SignOptions = {}): Promise<string> {
  return await oidc.service.issuer.buildToken({
    kid: opts.kid,
    expiresIn: opts.expiresIn,
    scopesOrTransform: (header, payload) => {
      Object.assign(payload, { sub: 'user-1', aud: CLIENT_ID, nonce: NONCE })
      for (const [name, value] of Object.entries(edits)) {
        if (value === undefined) delete payload[name]
        else payload[name] = value
      }
      for (const [name, value] of Object.entries(opts.header ?? {})) {
        if (value === undefined) delete header[name]
        else header[name] = value
      }
    }
  })
}

function now (): number {
  return Math.floor(Date.now() / 1000)
}

/** The claims a good id_token from this provider carries. */
export function goodClaims (oidc: OidcServer, edits: ClaimEdits = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = { iss: oidc.issuer, sub: 'user-1', aud: CLIENT_ID, nonce: NONCE, iat: now(), exp: now() + 600, ...edits }
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
  return claims
}

/** The provider's first public key as published in its JWKS. */
export function publicJwk (oidc: OidcServer): JWK & { kid: string } {
  return oidc.service.issuer.keys.toJSON()[0] as JWK & { kid: string }
}

/**
 * Signed with the provider's own private key by jose, with exactly `header`
 * (the provider's buildToken always adds typ JWT).
 */
export async function signedByProviderKey (oidc: OidcServer, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = oidc.service.issuer.keys.toJSON(true)[0] as JWK & { kid: string }
  const key = await importJWK(jwk, 'RS256')
  return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, ...header }).sign(key)
}

/** alg none: no signature at all. */
export function unsignedToken (claims: Record<string, unknown>): string {
  return new UnsecuredJWT(claims).encode()
}

/** The algorithm-confusion forgery: HS256 keyed with the bytes of the provider's public key (PEM). */
export async function hmacWithPublicKey (oidc: OidcServer, claims: Record<string, unknown>): Promise<string> {
  const jwk = publicJwk(oidc)
  const pem = await exportSPKI(await importJWK(jwk, 'RS256') as Parameters<typeof exportSPKI>[0])
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: jwk.kid, typ: 'JWT' }).sign(Buffer.from(pem))
}

/** Signed with a fresh RSA key the provider never published, under `kid`. */
export async function foreignKeyToken (claims: Record<string, unknown>, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256')
  return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey)
}

export async function relyingParty (oidc: OidcServer, extra: Record<string, unknown> = {}): Promise<RelyingParty> {
  return await createRelyingParty({ issuer: oidc.issuer, clientId: CLIENT_ID, timeout: 2000, ...extra })
}

type Coded = Error & { code?: string, reason?: string, statusCode?: number }

/**
 * `promise` rejects with `code` (and `reason` when given), and neither the
 * message, the stack nor the serialised error holds any of `secrets` or any
 * of their dot-separated parts (a JWT's header, payload, signature).
 */
export async function assertRefused (t: Test, promise: Promise<unknown> | (() => unknown), code: string, reason: string | undefined, secrets: string[] = []): Promise<Coded> {
  let err: Coded | undefined
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (e) {
    err = e as Coded
  }
  if (err === undefined) {
    t.fail(`expected ${code}, nothing was thrown`)
    return new Error('not thrown')
  }
  t.equal(err.code, code, `code ${code}`)
  if (reason !== undefined) t.equal(err.reason, reason, `reason ${reason}`)
  assertNoSecret(t, err, secrets)
  return err
}

export function assertNoSecret (t: Test, err: Coded, secrets: string[]): void {
  const text = [err.message, err.stack ?? '', JSON.stringify(err)].join('\n')
  const parts = secrets.flatMap((s) => [s, ...s.split('.')]).filter((p) => p.length >= 8)
  const leaked = parts.find((p) => text.includes(p))
  t.equal(leaked, undefined, 'no token, nonce or key value in the error')
}
