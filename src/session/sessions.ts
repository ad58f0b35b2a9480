import { PeerAuth } from './peer-auth.ts'
import { SessionSealer } from './sealed-session-id.ts'
import type { SessionKeys } from './session-keys.ts'

/**
 * How this replica names, recognises and routes MCP sessions: ids sealed under the shared key,
 * peer requests signed under it, and this replica's own address (known once it listens), which
 * bridged sessions carry as their owner.
 */
export class Sessions {
  readonly sealer: SessionSealer
  readonly peerAuth: PeerAuth
  /** true without PORTCULLIS_SESSION_KEY: sessions work on this instance only */
  readonly ephemeralKey: boolean
  #self: string | undefined

  constructor (keys: SessionKeys, self?: string) {
    this.sealer = new SessionSealer(keys.sealing)
    this.peerAuth = new PeerAuth(keys.peer)
    this.ephemeralKey = keys.ephemeral
    this.#self = self
  }

  /** listen.advertiseUrl, or the bound address: where other replicas reach this one */
  get self (): string {
    if (this.#self === undefined) throw new Error('the advertise URL is not known before listening')
    return this.#self
  }

  set self (url: string) {
    this.#self = url
  }
}
