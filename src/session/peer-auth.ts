import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** The header that marks a request as coming from another replica of this gateway. */
export const PEER_HEADER = 'portcullis-peer'
/** How far a peer's clock may be off, and how long a signed request may be replayed at most. */
const MAX_SKEW_SECONDS = 30

/** What a peer request is about: each part is covered by the signature. */
export interface PeerRequest {
  readonly method: string
  readonly server: string
  readonly sessionId: string
  /** the request body as sent (empty for GET and DELETE) */
  readonly body: string | Buffer
}

/**
 * Replica-to-replica authentication (design §7): a replica that forwards a bridged session's
 * request to the replica that owns it has already authenticated the client and judged the
 * request, so the owner must be able to tell such a peer from a client — a client that could
 * pass as a peer would skip authentication and policy. The peer signs method, server, session
 * id, body and time with an HMAC key derived from PORTCULLIS_SESSION_KEY, which every replica
 * has and no client does. The client's token is not part of the forwarded request.
 */
export class PeerAuth {
  readonly #keys: readonly Buffer[]

  constructor (keys: readonly Buffer[]) {
    this.#keys = keys
  }

  /** The PEER_HEADER value for `request`, now. */
  sign (request: PeerRequest, now = Date.now()): string {
    const time = Math.floor(now / 1000)
    return `t=${time},s=${mac(this.#keys[0]!, request, time)}`
  }

  /** Whether `header` is a fresh signature of `request` by a replica that holds one of our keys. */
  verify (header: string | undefined, request: PeerRequest, now = Date.now()): boolean {
    const match = header === undefined ? null : /^t=(\d{1,12}),s=([A-Za-z0-9_-]{43})$/.exec(header)
    if (match === null) return false
    const time = Number(match[1])
    if (Math.abs(now / 1000 - time) > MAX_SKEW_SECONDS) return false
    const given = Buffer.from(match[2]!, 'base64url')
    return this.#keys.some((key) => timingSafeEqual(Buffer.from(mac(key, request, time), 'base64url'), given))
  }
}

function mac (key: Buffer, request: PeerRequest, time: number): string {
  const body = createHash('sha256').update(request.body).digest('base64url')
  return createHmac('sha256', key)
    .update(`${request.method}\n${request.server}\n${request.sessionId}\n${time}\n${body}`, 'utf8')
    .digest('base64url')
}
