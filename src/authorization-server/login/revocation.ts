import type { Principal } from '../../authn/principal.ts'
import { AccessTokenVerifier, InvalidAccessToken } from '../../authn/verify-access-token.ts'
import type { Store } from '../../store/store.ts'
import type { SigningKeySet } from '../keys.ts'
import { failingClosed } from '../shared-state.ts'

/**
 * Access tokens revoked before they expire, by `jti` — today only those issued from an
 * authorization code that was then replayed (RFC 6749 §4.1.2: the AS "SHOULD revoke (when
 * possible) all tokens previously issued based on that authorization code").
 */
export interface RevocationList {
  /** revoke the token with this `jti` until `expiresAt` (epoch seconds), after which it is dead anyway */
  revoke (jti: string, expiresAt: number): Promise<void>
  /** local and synchronous: the MCP request path never waits on the store */
  isRevoked (jti: string): boolean
  /** false while nothing is revoked, so the hot path pays nothing */
  readonly active: boolean
}

const REVOKED = 'revoked'

/**
 * Revocations shared by every replica: `revoke` broadcasts the jti through the store, and each
 * replica keeps its own copy of the set (jti → expiry), filled by its subscription — the store
 * also replays what it holds at subscription and after a reconnection. So the resource-server
 * check reads process memory only. Entries go when the token would have expired anyway; none is
 * evicted earlier (that would let a revoked token through).
 */
export class SharedRevocationList implements RevocationList {
  readonly #store: Store
  /** jti → epoch ms until which it is refused */
  readonly #revoked = new Map<string, number>()
  #nextSweep = 0

  constructor (store: Store) {
    this.#store = failingClosed(store)
    this.#store.subscribe(REVOKED, (jti, expiresAtMs) => { this.#remember(jti, expiresAtMs) })
  }

  async revoke (jti: string, expiresAt: number): Promise<void> {
    // This replica refuses it at once, even if the broadcast then fails.
    this.#remember(jti, expiresAt * 1000)
    await this.#store.broadcast(REVOKED, jti, expiresAt * 1000)
  }

  isRevoked (jti: string): boolean {
    const until = this.#revoked.get(jti)
    return until !== undefined && until > Date.now()
  }

  get active (): boolean {
    if (this.#revoked.size === 0) return false
    const now = Date.now()
    if (now >= this.#nextSweep) this.#sweep(now)
    return this.#revoked.size > 0
  }

  #remember (jti: string, untilMs: number): void {
    if (untilMs <= Date.now()) return
    this.#revoked.set(jti, Math.max(untilMs, this.#revoked.get(jti) ?? 0))
  }

  #sweep (now: number): void {
    for (const [jti, until] of this.#revoked) if (until <= now) this.#revoked.delete(jti)
    this.#nextSweep = now + 10_000
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
    // The jti was read when the token was verified (and is cached with it): no decode per request.
    const jti = principal.tokenJti
    if (this.#revocations.active && jti !== undefined && this.#revocations.isRevoked(jti)) {
      throw new InvalidAccessToken('revoked', 'The access token has been revoked')
    }
    return principal
  }
}
