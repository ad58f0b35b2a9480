/** Gives back what `acquire` took; calling it again does nothing. */
export type Release = () => void

/**
 * How many of something (open streams, bridged sessions) each key holds at once, and no more
 * than `max`. Counted in this process only, with no store round trip: a concurrency cap is local
 * to a replica by nature (what is held is a socket or a child process of this replica), so the
 * cap is per replica — N replicas let one key hold N × max.
 */
export class ConcurrencyLimiter {
  /** a reload may change it; what is held already stays held */
  max: number
  readonly #held = new Map<string, number>()

  constructor (max: number) {
    this.max = max
  }

  /** A release function, or undefined when `key` already holds `max`. */
  acquire (key: string): Release | undefined {
    const held = this.#held.get(key) ?? 0
    if (held >= this.max) return undefined
    this.#held.set(key, held + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#held.get(key) ?? 1) - 1
      if (left <= 0) this.#held.delete(key)
      else this.#held.set(key, left)
    }
  }

  /** Would `acquire(key)` be refused now? */
  full (key: string): boolean {
    return (this.#held.get(key) ?? 0) >= this.max
  }

  held (key: string): number {
    return this.#held.get(key) ?? 0
  }
}
