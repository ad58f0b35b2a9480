import { LRUCache } from 'lru-cache'

/**
 * Single use of assertion `jti`s (EMA §7.4.2: replay detection "REQUIRED in this profile"):
 * `claim` records a jti until it can no longer be valid and answers false if it was there.
 * The check-and-set is atomic within a process.
 * TODO(scale-out): a Redis SET NX PX implementation behind the same interface, so replicas share it.
 */
export interface ReplayStore {
  /** true the first time (issuer, jti) is seen before `expiresAt` (epoch seconds); false on reuse */
  claim (issuer: string, jti: string, expiresAt: number): Promise<boolean>
}

export class MemoryReplayStore implements ReplayStore {
  readonly #seen = new LRUCache<string, true>({ max: 1_000_000, ttlAutopurge: false })

  async claim (issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    const key = `${issuer}\n${jti}`
    if (this.#seen.has(key)) return false
    const ttl = Math.max(1, expiresAt * 1000 - Date.now())
    this.#seen.set(key, true, { ttl })
    return true
  }
}
