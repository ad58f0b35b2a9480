import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/
/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

export function isS256Challenge (value: string): boolean {
  return S256_CHALLENGE.test(value)
}

export function isCodeVerifier (value: string): boolean {
  return VERIFIER.test(value)
}

export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

/** Whether `verifier` is well formed and hashes to `challenge`, compared in constant time. */
export function pkceMatches (verifier: string, challenge: string): boolean {
  if (!isCodeVerifier(verifier) || !isS256Challenge(challenge)) return false
  return timingSafeEqual(Buffer.from(s256(verifier)), Buffer.from(challenge))
}

/** 32 random bytes, base64url: a PKCE verifier, `state`, `nonce`, code or cookie value. */
export function randomToken (): string {
  return randomBytes(32).toString('base64url')
}

/** What a store keeps instead of a bearer value (a code, a cookie), so a dump of it redeems nothing. */
export function digest (value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url')
}
