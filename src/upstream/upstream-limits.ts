import type { LimitsConfig } from '../config/types.ts'
import { ConcurrencyLimiter } from '../limits/concurrency-limiter.ts'
import { ConnectionGate } from './connection-gate.ts'
import type { StallLimits } from './stall.ts'

/**
 * The `limits` every upstream of this replica obeys, one object shared by all of them and kept
 * across reloads (so what is held stays counted when an upstream is replaced); a reload updates
 * the numbers.
 */
export class UpstreamLimits {
  /** open SSE streams by server and principal (`streamKey`): limits.maxStreamsPerPrincipal */
  readonly streams: ConcurrencyLimiter
  /** how long a request may wait for an upstream connection: limits.upstreamWaitMs */
  upstreamWaitMs: number
  /** when a stream whose client stopped reading is closed: limits.streamStallMs, maxStreamBufferBytes */
  stall: StallLimits
  readonly #peerConnections: number
  readonly #peerGates = new Map<string, ConnectionGate>()

  constructor (limits: LimitsConfig, peerConnections: number) {
    this.streams = new ConcurrencyLimiter(limits.maxStreamsPerPrincipal)
    this.upstreamWaitMs = limits.upstreamWaitMs
    this.stall = { streamStallMs: limits.streamStallMs, maxStreamBufferBytes: limits.maxStreamBufferBytes }
    this.#peerConnections = peerConnections
  }

  update (limits: LimitsConfig): void {
    this.streams.max = limits.maxStreamsPerPrincipal
    this.upstreamWaitMs = limits.upstreamWaitMs
    this.stall = { streamStallMs: limits.streamStallMs, maxStreamBufferBytes: limits.maxStreamBufferBytes }
  }

  /** The connections of the peer agent towards one replica (one gate per replica origin). */
  peerGate (origin: string): ConnectionGate {
    let gate = this.#peerGates.get(origin)
    if (gate === undefined) {
      gate = new ConnectionGate(this.#peerConnections)
      this.#peerGates.set(origin, gate)
    }
    return gate
  }
}

/** The streams limiter's key: per server and principal. */
export function streamKey (server: string, principal: string): string {
  return `${server}\n${principal}`
}
