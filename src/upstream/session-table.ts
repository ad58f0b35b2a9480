import { LRUCache } from 'lru-cache'

/**
 * The sessions opened through this replica and not yet closed, per server: what the
 * `portcullis_sessions` gauge counts. Nothing here decides anything — a session's binding to its
 * principal and its route travel in the sealed session id (session/sealed-session-id.ts), so any
 * replica serves any session; this is bookkeeping of the local share only.
 */
export class SessionTable {
  readonly #sessions: LRUCache<string, string>

  constructor (opts: { max: number, idleTtlMs: number } = { max: 100_000, idleTtlMs: 24 * 3600_000 }) {
    // maxSize, not max: lru-cache preallocates arrays of `max` entries; sized by use instead
    this.#sessions = new LRUCache({ maxSize: opts.max, sizeCalculation: one, ttl: opts.idleTtlMs, updateAgeOnGet: true })
  }

  open (server: string, sessionId: string): void {
    this.#sessions.set(sessionId, server)
  }

  /** a request for the session: it is not idle */
  touch (sessionId: string): void {
    this.#sessions.get(sessionId)
  }

  close (sessionId: string): void {
    this.#sessions.delete(sessionId)
  }

  count (server: string): number {
    let n = 0
    for (const s of this.#sessions.values()) if (s === server) n++
    return n
  }
}

function one (): number {
  return 1
}
