import type { ServerResponse } from 'node:http'

export interface StallLimits {
  /** how long a stream may stay unable to write (its client reads nothing) */
  readonly streamStallMs: number
  /** unread bytes it may hold meanwhile */
  readonly maxStreamBufferBytes: number
}

/**
 * Backpressure's last resort for an SSE stream to a client that stopped reading. Relayed
 * Streamable HTTP streams already stop reading the upstream while the client's socket is full;
 * bridged sessions' transports write regardless. Either way a stream that cannot write for
 * `streamStallMs`, or that holds more than `maxStreamBufferBytes` unread, is closed (`onStall`
 * counts it): one stalled client costs a bounded amount of memory, never the replica.
 */
export function closeWhenStalled (res: ServerResponse, limits: StallLimits, onStall: () => void): void {
  const guarded = res as Guarded
  if (guarded[GUARD] !== undefined) throw new Error('closeWhenStalled: this response has a stall guard already')
  guarded[GUARD] = { limits, onStall, write: res.write as Write, timer: undefined }
  res.write = guardedWrite as ServerResponse['write']
  // `on`, not `once`: a response closes once, and `once` wraps every listener in a closure of its own
  res.on('close', drained)
}

type Write = (this: ServerResponse, ...args: unknown[]) => boolean

/** What a guarded response carries: one object, the listeners below being shared by every stream. */
interface StallGuard {
  readonly limits: StallLimits
  readonly onStall: () => void
  /** the response's own write */
  readonly write: Write
  timer: NodeJS.Timeout | undefined
}

const GUARD = Symbol('stall guard')

type Guarded = ServerResponse & { [GUARD]?: StallGuard }

function guardedWrite (this: Guarded, ...args: unknown[]): boolean {
  const guard = this[GUARD]!
  const ok = guard.write.apply(this, args)
  if (ok) return true
  if (this.writableLength > guard.limits.maxStreamBufferBytes) stalled(this)
  else if (guard.timer === undefined) {
    guard.timer = setTimeout(stalled, guard.limits.streamStallMs, this)
    this.once('drain', drained)
  }
  return false
}

function stalled (res: Guarded): void {
  const guard = res[GUARD]!
  clearTimeout(guard.timer)
  guard.timer = undefined
  if (res.destroyed) return
  guard.onStall()
  res.destroy()
}

function drained (this: Guarded): void {
  const guard = this[GUARD]!
  clearTimeout(guard.timer)
  guard.timer = undefined
}
