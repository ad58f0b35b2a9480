import { StoreUnavailable, type Store } from './store.ts'

interface Entry {
  value: string
  /** epoch ms; Infinity: no expiry */
  until: number
}

/**
 * The store of a single instance: process memory. A ledger, not a cache — nothing is evicted
 * before it expires (an evicted replay record or code would let it be used twice). When `max`
 * live entries are held, writes of new keys fail like an unreachable store (fail closed: 503),
 * and memory grows only with real traffic (nothing is allocated up front).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly up = true
  readonly #entries = new Map<string, Entry>()
  readonly #sets = new Map<string, Map<string, number>>()
  readonly #listeners = new Map<string, Array<(member: string, expiresAtMs: number) => void>>()
  readonly #max: number
  #nextSweep = 0

  constructor (opts: { max?: number } = {}) {
    this.#max = opts.max ?? 1_000_000
  }

  async setIfAbsent (key: string, value: string, ttlMs: number | undefined): Promise<boolean> {
    if (this.#live(key) !== undefined) return false
    this.#write(key, value, ttlMs)
    return true
  }

  async set (key: string, value: string, ttlMs: number | undefined): Promise<void> {
    this.#write(key, value, ttlMs)
  }

  async get (key: string): Promise<string | undefined> {
    return this.#live(key)?.value
  }

  async take (key: string): Promise<string | undefined> {
    const entry = this.#live(key)
    this.#entries.delete(key)
    return entry?.value
  }

  async delete (key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async expire (key: string, ttlMs: number): Promise<boolean> {
    const entry = this.#live(key)
    if (entry === undefined) return false
    entry.until = Date.now() + ttlMs
    return true
  }

  async compareAndSet (key: string, expected: string, next: string, ttlMs: number | undefined): Promise<boolean> {
    if (this.#live(key)?.value !== expected) return false
    this.#write(key, next, ttlMs)
    return true
  }

  async broadcast (name: string, member: string, expiresAtMs: number): Promise<void> {
    let set = this.#sets.get(name)
    if (set === undefined) this.#sets.set(name, set = new Map())
    // expired members leave from the front (mostly expiry order): constant work per broadcast, no scan
    const now = Date.now()
    for (const [m, until] of set) {
      if (until > now) break
      set.delete(m)
    }
    set.delete(member)
    set.set(member, expiresAtMs)
    for (const listener of this.#listeners.get(name) ?? []) listener(member, expiresAtMs)
  }

  subscribe (name: string, listener: (member: string, expiresAtMs: number) => void): void {
    let listeners = this.#listeners.get(name)
    if (listeners === undefined) this.#listeners.set(name, listeners = [])
    listeners.push(listener)
    const now = Date.now()
    for (const [member, until] of this.#sets.get(name) ?? []) if (until > now) listener(member, until)
  }

  /** subscribe replays synchronously: always synced */
  async synced (): Promise<void> {}

  onStateChange (_listener: (up: boolean) => void): void {}

  async close (): Promise<void> {}

  /** number of live entries, for tests */
  get size (): number {
    this.#sweep(Date.now())
    return this.#entries.size
  }

  #live (key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= Date.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  #write (key: string, value: string, ttlMs: number | undefined): void {
    const now = Date.now()
    if (now >= this.#nextSweep || this.#entries.size >= this.#max) this.#sweep(now)
    if (!this.#entries.has(key) && this.#entries.size >= this.#max) throw new StoreUnavailable('the in-memory store is full')
    // Re-inserting keeps the map roughly in insertion order, which the sweep walks.
    this.#entries.delete(key)
    this.#entries.set(key, { value, until: ttlMs === undefined ? Infinity : now + ttlMs })
  }

  /** Drop expired entries (reads ignore them anyway): a full pass at most every 10 s, and when full. */
  #sweep (now: number): void {
    for (const [key, entry] of this.#entries) if (entry.until <= now) this.#entries.delete(key)
    this.#nextSweep = now + 10_000
  }
}
