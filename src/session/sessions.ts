import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Store } from '../store/store.ts'
import { PeerAuth } from './peer-auth.ts'
import { SessionSealer } from './sealed-session-id.ts'
import type { SessionKeys } from './session-keys.ts'

/**
 * How long a session ended by DELETE stays refused here (ids are stateless: the list is what ends
 * them; after it, the upstream's own answer for its dead id stands), and how many are kept at most.
 */
const ENDED_TTL_MS = 3600_000
const MAX_ENDED = 100_000
const ENDED = 'ended-sessions'

/**
 * How this replica names, recognises and routes MCP sessions: ids sealed under the shared key,
 * peer requests signed under it, this replica's own address (known once it listens), which
 * bridged sessions carry as their owner, and the sessions ended by DELETE at any replica — heard
 * through the store's broadcast into a local set, so the request path never waits for the store.
 */
export class Sessions {
  readonly sealer: SessionSealer
  readonly peerAuth: PeerAuth
  /** true without PORTCULLIS_SESSION_KEY: sessions work on this instance only */
  readonly ephemeralKey: boolean
  readonly #store: Store
  readonly #log: Pick<FastifyBaseLogger, 'warn'>
  /** digest of an ended session id → until when it stays refused (epoch ms) */
  readonly #ended = new Map<string, number>()
  #self: string | undefined

  constructor (keys: SessionKeys, store: Store, log: Pick<FastifyBaseLogger, 'warn'>, self?: string) {
    this.sealer = new SessionSealer(keys.sealing)
    this.peerAuth = new PeerAuth(keys.peer)
    this.ephemeralKey = keys.ephemeral
    this.#store = store
    this.#log = log
    this.#self = self
    store.subscribe(ENDED, (member, until) => { this.#remember(member, until) })
  }

  /** listen.advertiseUrl, or the bound address: where other replicas reach this one */
  get self (): string {
    if (this.#self === undefined) throw new Error('the advertise URL is not known before listening')
    return this.#self
  }

  set self (url: string) {
    this.#self = url
  }

  /** Whether the session was ended (DELETE) at any replica. */
  ended (sessionId: string): boolean {
    if (this.#ended.size === 0) return false
    const until = this.#ended.get(digest(sessionId))
    return until !== undefined && until > Date.now()
  }

  /** The session was ended here: refuse it here at once, and at every replica as soon as they hear. */
  end (sessionId: string): void {
    const key = digest(sessionId)
    const until = Date.now() + ENDED_TTL_MS
    this.#remember(key, until)
    this.#store.broadcast(ENDED, key, until).catch((err: unknown) => {
      this.#log.warn({ err }, 'could not tell the other replicas that a session ended: they answer for it until its upstream does')
    })
  }

  /**
   * One TTL for all, so insertion order is expiry order: expired entries leave from the front, and
   * past MAX_ENDED the oldest goes — a client that ends sessions in a loop costs bounded memory and
   * constant work per entry, never a scan.
   */
  #remember (key: string, until: number): void {
    const now = Date.now()
    if (until <= now) return
    this.#ended.delete(key)
    this.#ended.set(key, until)
    for (const [k, u] of this.#ended) {
      if (u > now && this.#ended.size <= MAX_ENDED) break
      this.#ended.delete(k)
    }
  }

  /** sessions currently refused as ended (tests) */
  get endedCount (): number {
    return this.#ended.size
  }
}

function digest (sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url').slice(0, 22)
}
