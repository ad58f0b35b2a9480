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
  const write = res.write.bind(res) as (...args: unknown[]) => boolean
  let timer: NodeJS.Timeout | undefined
  const stalled = (): void => {
    clearTimeout(timer)
    timer = undefined
    if (res.destroyed) return
    onStall()
    res.destroy()
  }
  const drained = (): void => {
    clearTimeout(timer)
    timer = undefined
  }
  res.write = ((...args: unknown[]): boolean => {
    const ok = write(...args)
    if (ok) return true
    if (res.writableLength > limits.maxStreamBufferBytes) stalled()
    else if (timer === undefined) {
      timer = setTimeout(stalled, limits.streamStallMs)
      res.once('drain', drained)
    }
    return false
  }) as ServerResponse['write']
  res.once('close', drained)
}
