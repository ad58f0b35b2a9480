import { LRUCache } from 'lru-cache'

/**
 * Which principal opened which MCP session (protocol.md §4.7, §5.5): "MCP Servers MUST NOT use
 * sessions for authentication" and SHOULD bind session ids to the user. A session id presented
 * by another principal is answered 404, exactly like a session that does not exist, so session
 * ids can't be probed. Ids the gateway never saw are refused the same way (fail closed).
 *
 * TODO(scale-out): back this with the shared store so any replica can route a session.
 */
export interface SessionRecord {
  readonly server: string
  readonly principalKey: string
  /** negotiated in the initialize result, when the gateway saw it */
  protocolVersion: string | undefined
  readonly createdAt: number
}

export interface SessionTableOptions {
  /** most sessions remembered per process */
  readonly max: number
  /** a session unused this long is forgotten; the client then re-initializes */
  readonly idleTtlMs: number
}

export class SessionTable {
  readonly #sessions: LRUCache<string, SessionRecord>

  constructor (opts: SessionTableOptions = { max: 100_000, idleTtlMs: 24 * 3600_000 }) {
    this.#sessions = new LRUCache({ max: opts.max, ttl: opts.idleTtlMs, updateAgeOnGet: true })
  }

  open (sessionId: string, record: Omit<SessionRecord, 'createdAt'>): void {
    this.#sessions.set(this.#key(record.server, sessionId), { ...record, createdAt: Date.now() })
  }

  /** The session, if it exists on this server and belongs to this principal. */
  lookup (server: string, sessionId: string, principalKey: string): SessionRecord | undefined {
    const record = this.#sessions.get(this.#key(server, sessionId))
    if (record === undefined || record.principalKey !== principalKey) return undefined
    return record
  }

  close (server: string, sessionId: string): void {
    this.#sessions.delete(this.#key(server, sessionId))
  }

  count (server: string): number {
    let n = 0
    const prefix = `${server}\n`
    for (const key of this.#sessions.keys()) if (key.startsWith(prefix)) n++
    return n
  }

  #key (server: string, sessionId: string): string {
    return `${server}\n${sessionId}`
  }
}
