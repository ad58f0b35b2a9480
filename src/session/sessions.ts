import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Store } from '../store/store.ts'
import { PeerAuth } from './peer-auth.ts'
import { SessionSealer } from './sealed-session-id.ts'
import type { SessionKeys } from './session-keys.ts'

/** How long a session ended by DELETE stays refused (ids are stateless: the list is what ends them). */
const ENDED_TTL_MS = 24 * 3600_000
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

  #remember (key: string, until: number): void {
    const now = Date.now()
    if (this.#ended.size >= 10_000) for (const [k, u] of this.#ended) if (u <= now) this.#ended.delete(k)
    this.#ended.set(key, until)
  }
}

function digest (sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url').slice(0, 22)
}
