import { LRUCache } from 'lru-cache'
import { decodeJwt } from 'jose'
import type { Principal } from '../../authn/principal.ts'
import { AccessTokenVerifier, InvalidAccessToken } from '../../authn/verify-access-token.ts'
import type { SigningKeySet } from '../keys.ts'

/**
 * Access tokens revoked before they expire, by `jti` — today only those issued from an
 * authorization code that was then replayed (RFC 6749 §4.1.2: the AS "SHOULD revoke (when
 * possible) all tokens previously issued based on that authorization code").
 * TODO(scale-out): a Redis set behind the same interface, so every replica's RS check sees it.
 */
export interface RevocationList {
  /** revoke the token with this `jti` until `expiresAt` (epoch seconds), after which it is dead anyway */
  revoke (jti: string, expiresAt: number): Promise<void>
  isRevoked (jti: string): Promise<boolean>
  /** false while nothing is revoked, so the hot path pays nothing; a shared store answers true */
  readonly active: boolean
}

export class MemoryRevocationList implements RevocationList {
  readonly #revoked = new LRUCache<string, true>({ max: 100_000 })

  async revoke (jti: string, expiresAt: number): Promise<void> {
    this.#revoked.set(jti, true, { ttl: Math.max(1, expiresAt * 1000 - Date.now()) })
  }

  async isRevoked (jti: string): Promise<boolean> {
    return this.#revoked.has(jti)
  }

  get active (): boolean {
    return this.#revoked.size > 0
  }
}

/**
 * The resource-server check with the revocation list consulted after it — signature, issuer,
 * audience and expiry first (from the verifier's cache when it has the token), then the `jti`.
 * The hook for the RS: build the gateway's verifier as this class, or call `isRevoked` from
 * `AccessTokenVerifier.verify` directly.
 */
export class RevocationCheckingVerifier extends AccessTokenVerifier {
  readonly #revocations: RevocationList

  constructor (issuer: string, keys: () => SigningKeySet, revocations: RevocationList) {
    super(issuer, keys)
    this.#revocations = revocations
  }

  override async verify (token: string, resource: string): Promise<Principal> {
    const principal = await super.verify(token, resource)
    if (this.#revocations.active) {
      // The token verified, so its payload is ours and decodes.
      const { jti } = decodeJwt(token)
      if (typeof jti === 'string' && await this.#revocations.isRevoked(jti)) throw new InvalidAccessToken('revoked', 'The access token has been revoked')
    }
    return principal
  }
}
