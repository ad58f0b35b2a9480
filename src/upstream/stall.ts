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
 *
 * "Unread" counts what the response holds (`writableLength`) and what is queued for it in front
 * of the response (`queuedForWrite`): the MCP SDK's server transport enqueues every message into
 * a web ReadableStream that its HTTP adapter drains only as the response takes it, so a bridged
 * stream's backlog grows there, unbounded, where `writableLength` never sees it (a stdio upstream
 * sending as fast as it could put ~450 MB there within the 1.5 s stall of the slow-reader test).
 */
export function closeWhenStalled (res: ServerResponse, limits: StallLimits, onStall: () => void): void {
  const guarded = res as Guarded
  if (guarded[GUARD] !== undefined) throw new Error('closeWhenStalled: this response has a stall guard already')
  guarded[GUARD] = { limits, onStall, write: res.write as Write, timer: undefined, queued: 0 }
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
  /** characters handed to a writer in front of the response (queuedForWrite) and not yet written through it */
  queued: number
}

const GUARD = Symbol('stall guard')

type Guarded = ServerResponse & { [GUARD]?: StallGuard }

/**
 * `length` characters of messages were handed to a writer that queues them in front of `res`
 * (the SDK's transport): counted as unread until written through the response, and the stream
 * closed (as a stall) once they are more than maxStreamBufferBytes. A response without a stall
 * guard is not counted.
 */
export function queuedForWrite (res: ServerResponse, length: number): void {
  const guard = (res as Guarded)[GUARD]
  if (guard === undefined) return
  guard.queued += length
  if (guard.queued > guard.limits.maxStreamBufferBytes) stalled(res as Guarded)
}

function guardedWrite (this: Guarded, ...args: unknown[]): boolean {
  const guard = this[GUARD]!
  if (guard.queued > 0) guard.queued = Math.max(0, guard.queued - chunkLength(args[0]))
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

/** A written chunk's length: characters of a string (as queuedForWrite counts), bytes otherwise. */
function chunkLength (chunk: unknown): number {
  if (typeof chunk === 'string') return chunk.length
  return chunk instanceof Uint8Array ? chunk.byteLength : 0
}
