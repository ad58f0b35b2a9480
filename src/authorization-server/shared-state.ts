import { StoreUnavailable, isStoreUnavailable, type Store } from '../store/store.ts'

const failClosed = new WeakSet<Store>()

/**
 * The store as the authorization server uses it: whatever a call rejects or throws with becomes
 * `StoreUnavailable`, so every caller fails closed the same way (503 temporarily_unavailable)
 * instead of a 500 for an error type it did not expect. Wrapping twice is a no-op.
 */
export function failingClosed (store: Store): Store {
  if (failClosed.has(store)) return store
  const call = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op()
    } catch (err) {
      throw isStoreUnavailable(err) ? err : new StoreUnavailable('the shared store failed', { cause: err })
    }
  }
  const wrapped: Store = {
    kind: store.kind,
    get up () { return store.up },
    setIfAbsent: async (key, value, ttlMs) => await call(async () => await store.setIfAbsent(key, value, ttlMs)),
    set: async (key, value, ttlMs) => { await call(async () => { await store.set(key, value, ttlMs) }) },
    get: async (key) => await call(async () => await store.get(key)),
    take: async (key) => await call(async () => await store.take(key)),
    delete: async (key) => { await call(async () => { await store.delete(key) }) },
    expire: async (key, ttlMs) => await call(async () => await store.expire(key, ttlMs)),
    compareAndSet: async (key, expected, next, ttlMs) => await call(async () => await store.compareAndSet(key, expected, next, ttlMs)),
    broadcast: async (name, member, expiresAtMs) => { await call(async () => { await store.broadcast(name, member, expiresAtMs) }) },
    subscribe: (name, listener) => { store.subscribe(name, listener) },
    synced: async () => { await store.synced() },
    onStateChange: (listener) => { store.onStateChange(listener) },
    close: async () => { await store.close() },
  }
  failClosed.add(wrapped)
  return wrapped
}

/** A JSON value read back from the store; one that does not parse is a store failure (fail closed), not a 500. */
export function parseStored<T> (value: string, isValid: (parsed: unknown) => parsed is T): T {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (err) {
    throw new StoreUnavailable('the shared store returned a value that is not JSON', { cause: err })
  }
  if (!isValid(parsed)) throw new StoreUnavailable('the shared store returned a value of the wrong shape')
  return parsed
}

/** A TTL for a value that must live until `untilMs` (epoch ms): at least 1 ms, as the store requires a positive one. */
export function ttlUntil (untilMs: number): number {
  return Math.max(1, Math.ceil(untilMs - Date.now()))
}
