import type { Store } from '../store/store.ts'
import { digest } from './login/pkce.ts'
import { failingClosed, ttlUntil } from './shared-state.ts'

/**
 * Single use of assertion `jti`s (EMA §7.4.2: replay detection "REQUIRED in this profile"):
 * `claim` records a jti until it can no longer be valid and answers false if it was there.
 */
export interface ReplayStore {
  /** true the first time (issuer, jti) is seen before `expiresAt` (epoch seconds); false on reuse */
  claim (issuer: string, jti: string, expiresAt: number): Promise<boolean>
}

/**
 * The replay ledger in the shared store: one SET NX PX per claim, so the check-and-set is atomic
 * across replicas. The key is the SHA-256 of issuer and jti (bounded, whatever their length).
 * An unreachable store rejects with StoreUnavailable and the grant is refused (503).
 */
export class StoreReplayStore implements ReplayStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = failingClosed(store)
  }

  async claim (issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    return await this.#store.setIfAbsent(`jti:${digest(`${issuer}\n${jti}`)}`, '1', ttlUntil(expiresAt * 1000))
  }
}
