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

/**
 * A ledger, not a cache: an entry evicted before its expiry would let an assertion be replayed,
 * so nothing is ever evicted early. Entries go when they expire; when the ledger is full the
 * claim fails and the grant is refused (fail closed: 503 temporarily_unavailable). Memory grows
 * with real traffic only (a preallocated LRU of this size costs ~25 MB at start).
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #until = new Map<string, number>()
  readonly #max: number
  #nextSweep = 0

  constructor (max = 1_000_000) {
    this.#max = max
  }

  async claim (issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    const now = Date.now()
    if (now >= this.#nextSweep || this.#until.size >= this.#max) this.#sweep(now)
    const key = `${issuer}\n${jti}`
    const until = this.#until.get(key)
    if (until !== undefined && until > now) return false
    if (this.#until.size >= this.#max) throw new Error('replay ledger is full')
    // Re-inserting keeps the map roughly in expiry order, which the sweep relies on.
    this.#until.delete(key)
    this.#until.set(key, expiresAt * 1000)
    return true
  }

  /** Drop expired entries from the front (insertion order ≈ expiry order); cheap and incremental. */
  #sweep (now: number): void {
    for (const [key, until] of this.#until) {
      if (until > now) break
      this.#until.delete(key)
    }
    this.#nextSweep = now + 1_000
  }
}
