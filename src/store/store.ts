/**
 * The state that replicas share (design.md §7): ID-JAG `jti` replay records, authorization codes,
 * pending logins, registered clients, revocations. One interface, two implementations: process
 * memory (one instance, the default) and Redis (`store.url`, any number of replicas).
 *
 * Every operation touches exactly one key, so each is atomic on its own (SET NX PX, GETDEL, a Lua
 * script for compare-and-set) and a Redis Cluster with hash tags could serve it. Keys are given
 * without the configured prefix; the store adds it. Values are strings (callers keep JSON).
 *
 * The store is on the grant path, never on the MCP request path: nothing here is awaited per MCP
 * request. A store that cannot answer rejects with `StoreUnavailable` within its command timeout —
 * never a hang — and callers fail closed (503 temporarily_unavailable).
 */
export interface Store {
  readonly kind: 'memory' | 'redis'
  /** SET NX [PX]: true when the key was absent and now holds `value` (for `ttlMs`, or until deleted); false when it exists */
  setIfAbsent (key: string, value: string, ttlMs: number | undefined): Promise<boolean>
  /** SET [PX]: `ttlMs` undefined keeps the value until it is deleted */
  set (key: string, value: string, ttlMs: number | undefined): Promise<void>
  get (key: string): Promise<string | undefined>
  /** GETDEL: the value, removed in the same step (single use) */
  take (key: string): Promise<string | undefined>
  delete (key: string): Promise<void>
  /** PEXPIRE: a new lifetime for an existing key; false when the key does not exist */
  expire (key: string, ttlMs: number): Promise<boolean>
  /**
   * Replace the value only if it is still exactly `expected` (and give it `ttlMs`, or keep no
   * expiry when undefined): true when replaced. The building block of every read-modify-write.
   */
  compareAndSet (key: string, expected: string, next: string, ttlMs: number | undefined): Promise<boolean>
  /**
   * A broadcast set: `member` is added under `name` until `expiresAtMs` (epoch ms) and every
   * replica's `subscribe` listener hears of it within seconds.
   */
  broadcast (name: string, member: string, expiresAtMs: number): Promise<void>
  /**
   * Hear every member added to the broadcast set `name`, by any replica. The listener is also
   * called for every unexpired member at subscription and again after each reconnection (a
   * resync: what was added while this replica could not hear is not lost).
   */
  subscribe (name: string, listener: (member: string, expiresAtMs: number) => void): void
  /**
   * Settles once every listener subscribed so far has heard the members that were already in
   * its set (its first resync). Never rejects; while the store cannot be reached it stays
   * pending — callers bound the wait.
   */
  synced (): Promise<void>
  /** reachable now (memory: always) */
  readonly up: boolean
  /** called with the new state whenever `up` changes */
  onStateChange (listener: (up: boolean) => void): void
  close (): Promise<void>
}

/** The store could not be reached or did not answer in time; the operation may or may not have happened. */
export class StoreUnavailable extends Error {
  override readonly name = 'StoreUnavailable'
  constructor (message = 'the shared store is unavailable', options?: { cause?: unknown }) {
    super(message, options)
  }
}

export function isStoreUnavailable (err: unknown): err is StoreUnavailable {
  return err instanceof StoreUnavailable
}
