/** A policy decision as the console shows it (design §5a `/api/decisions`). */
export interface DecisionEntry {
  /** ISO 8601 */
  readonly time: string
  readonly server: string
  readonly kind: 'tool' | 'prompt' | 'resource'
  readonly name: string
  readonly decision: 'allow' | 'deny' | 'would_deny' | 'step_up'
  readonly ruleId: string
  readonly reason: string
  /** the audit log's pseudonym, never the subject */
  readonly user: string | undefined
  readonly clientId: string | undefined
  readonly traceId: string | undefined
}

/**
 * The last `capacity` decisions, in process memory: filled by records.ts from the same record the
 * audit line is written from, read by the console. Overwrites the oldest; never grows.
 */
export class DecisionRing {
  readonly capacity: number
  readonly #slots: Array<DecisionEntry | undefined>
  #next = 0
  #size = 0

  constructor (capacity = 500) {
    this.capacity = capacity
    this.#slots = new Array<DecisionEntry | undefined>(capacity)
  }

  add (entry: DecisionEntry): void {
    this.#slots[this.#next] = entry
    this.#next = (this.#next + 1) % this.capacity
    if (this.#size < this.capacity) this.#size++
  }

  /** Newest first, at most `limit`. */
  recent (limit = this.capacity): DecisionEntry[] {
    const out: DecisionEntry[] = []
    const n = Math.min(Math.max(0, limit), this.#size)
    for (let i = 1; i <= n; i++) {
      const entry = this.#slots[(this.#next - i + this.capacity) % this.capacity]
      if (entry !== undefined) out.push(entry)
    }
    return out
  }
}
