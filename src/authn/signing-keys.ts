import type { CryptoKey, JWK } from 'jose'

/** The gateway's own signing keys: its authorization server signs access tokens with them, its resource server checks them. */

/** Algorithms the gateway signs access tokens with (RFC 9068 at+jwt). */
export const SIGNING_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as const
export type SigningAlgorithm = typeof SIGNING_ALGORITHMS[number]
export type KeyStatus = 'current' | 'next' | 'retired'

export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlgorithm
  readonly status: KeyStatus
  readonly privateKey: CryptoKey
  /** the public half, as published at /oauth/jwks */
  readonly publicJwk: JWK
}

export interface SigningKeySet {
  /** signs every new access token */
  readonly current: SigningKey
  /** current, next and retired: every key a token in circulation may be signed with */
  readonly verificationKeys: readonly SigningKey[]
  /** `{ keys: [...] }` of the public keys, for /oauth/jwks */
  readonly publicJwks: { readonly keys: readonly JWK[] }
  readonly ephemeral: boolean
}
