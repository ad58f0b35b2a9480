import { setTimeout as sleep } from 'node:timers/promises'
import { StoreUnavailable, type Store } from '../store/store.ts'

/** Slices of the lifetime: an expired member is still counted for at most one slice. */
const BUCKETS = 32
const CAS_ATTEMPTS = 50

/**
 * How many members are alive, where a member lives `ttlMs` after it was last touched — counted
 * in the shared store with single-key operations only. Each member is counted in the time
 * bucket of its last touch (its record remembers which); a bucket's counter expires once every
 * member counted in it has, so the total is the sum of the buckets of the last `ttlMs`. It errs
 * high, never low: a member that expired is counted until its bucket ends (ttlMs / 32 at most).
 */
export class ExpiringCount {
  readonly #store: Store
  readonly #name: string
  readonly #ttlMs: number
  readonly #widthMs: number

  constructor (store: Store, name: string, ttlMs: number) {
    this.#store = store
    this.#name = name
    this.#ttlMs = ttlMs
    this.#widthMs = Math.ceil(ttlMs / BUCKETS)
  }

  /** the bucket a member touched now belongs to */
  bucketNow (): number {
    return Math.floor(Date.now() / this.#widthMs)
  }

  /** members touched in the last ttlMs (and those of the oldest bucket's rest) */
  async total (): Promise<number> {
    const last = this.bucketNow()
    const first = Math.floor((Date.now() - this.#ttlMs) / this.#widthMs)
    const buckets = Array.from({ length: last - first + 1 }, (_, i) => first + i)
    const values = await Promise.all(buckets.map(async (b) => await this.#store.get(this.#key(b))))
    return values.reduce((sum, v) => sum + (Number(v ?? 0) || 0), 0)
  }

  /** add `delta` to a bucket's counter (never below 0): read, then compare-and-set until it holds (contended: StoreUnavailable) */
  async add (bucket: number, delta: number): Promise<void> {
    const key = this.#key(bucket)
    // lives until the last member touched in this bucket has expired
    const ttlMs = (bucket + 1) * this.#widthMs + this.#ttlMs - Date.now()
    if (ttlMs <= 0) return
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.#store.get(key)
      const next = String(Math.max(0, (Number(current ?? 0) || 0) + delta))
      const written = current === undefined
        ? await this.#store.setIfAbsent(key, next, ttlMs)
        : await this.#store.compareAndSet(key, current, next, ttlMs)
      if (written) return
      // another writer won: back off a random while (up to 100 ms) so a crowd spreads out
      await sleep(Math.random() * Math.min(100, 2 ** attempt))
    }
    throw new StoreUnavailable(`the counter ${this.#name} is too contended`)
  }

  #key (bucket: number): string {
    return `count:${this.#name}:${bucket}`
  }
}
