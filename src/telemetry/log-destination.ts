import type pino from 'pino'
// the package's module is the class, which carries itself as `SonicBoom` (ESM sees no named export)
import sonicBoom, { type SonicBoom } from 'sonic-boom'

/** In `contentMode: 'buffer'` sonic-boom's `write` takes bytes (its README); its types only name strings. */
type BytesSink = { write (data: Uint8Array): boolean }

/** How many bytes of lines may wait for a full descriptor before new lines are dropped (and counted). */
export const MAX_PENDING_BYTES = 16 * 1024 * 1024
/** How long a flush at stop waits for the reader of a full descriptor before it gives up on what is left. */
export const STOP_WAIT_MS = 2_000

const EMPTY = new Uint8Array(0)

/**
 * Where the gateway's log lines go (the audit lines are most of them): a file descriptor, written
 * through sonic-boom as `pino.destination` makes it (buffered, a broken pipe stops logging
 * instead of the process), synchronously, one write(2) per `minLength` bytes of lines and at
 * least every `periodicFlush` ms.
 *
 * pino hands each line over as a string. sonic-boom in its default mode appends it to one pending
 * string and measures that string's UTF-8 length again on every line (`Buffer.byteLength`). In
 * `contentMode: 'buffer'` it keeps a byte count per chunk instead, so each line is encoded once
 * here and the pending bytes are joined once per write(2) (figures in test/bench/README.md).
 * That mode is sonic-boom's own option, hence sonic-boom as a direct dependency, pinned to the
 * minor it was checked against (4.2.1); test/unit/log-destination.test.ts fails when a line takes
 * the string path again.
 *
 * A reader that falls behind (a container runtime's log pipe, stdout made non-blocking by
 * libuv) fills the pipe and the write fails with EAGAIN. sonic-boom's answer in sync mode is to
 * stop the whole thread for 100 ms and try again, as often as it takes: every request in flight
 * waits, and a reader that stays behind stalls the gateway in 100 ms steps (the p99 of the tails
 * benchmark at c=100 was such steps). Here EAGAIN is not retried on the spot: the bytes stay
 * pending in sonic-boom and go out at the next line's write or the periodic flush, once the
 * reader has made room. Up to MAX_PENDING_BYTES wait; past that, new lines are dropped and
 * counted (`dropped`, portcullis_log_lines_dropped_total) rather than stalling every request,
 * and `onDropsEnded` hears how many once lines get through again. Only a flush at stop waits for
 * the reader (up to STOP_WAIT_MS): nothing else is left for the process to do.
 */
export class LogDestination implements pino.DestinationStream {
  readonly #dest: SonicBoom
  readonly #minLength: number
  readonly #stopWaitMs: number
  readonly #maxPendingBytes: number
  /** bytes taken and not yet written */
  #pending = 0
  /** false once the reader of the descriptor is gone (EPIPE) */
  #open = true
  /** while a flush at stop runs: until when EAGAIN is waited out instead of left pending */
  #waitUntil = 0
  /** a flush at stop waited out its time once: the reader is stuck, later flushes do not wait again */
  #gaveUp = false
  /** lines dropped because MAX_PENDING_BYTES were already waiting */
  #dropped = 0
  /** of those, the ones not yet reported through onDropsEnded */
  #unreported = 0
  /** told how many lines were dropped, once lines reach the descriptor again */
  onDropsEnded: ((dropped: number) => void) | undefined

  constructor (options: { readonly fd: number; readonly minLength: number; readonly periodicFlush: number; readonly maxPendingBytes?: number; readonly stopWaitMs?: number }) {
    this.#minLength = options.minLength
    this.#stopWaitMs = options.stopWaitMs ?? STOP_WAIT_MS
    this.#maxPendingBytes = options.maxPendingBytes ?? MAX_PENDING_BYTES
    this.#dest = new sonicBoom.SonicBoom({
      fd: options.fd,
      sync: true,
      minLength: options.minLength,
      periodicFlush: options.periodicFlush,
      contentMode: 'buffer',
      maxLength: this.#maxPendingBytes,
      retryEAGAIN: () => Date.now() < this.#waitUntil,
    })
    // As pino.destination does: EPIPE stops logging; any other error is the stream's. EAGAIN not
    // retried leaves the bytes pending (see above).
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EAGAIN' || err.code === 'EBUSY') return
      if (err.code === 'EPIPE') {
        this.#open = false
        return
      }
      this.#dest.removeListener('error', onError)
      this.#dest.emit('error', err)
    }
    this.#dest.on('error', onError)
    this.#dest.on('drop', (data: Uint8Array) => {
      this.#pending -= data.length
      this.#dropped++
      this.#unreported++
    })
    this.#dest.on('write', (written: number) => {
      this.#pending -= written
      if (this.#unreported === 0) return
      const dropped = this.#unreported
      this.#unreported = 0
      // not from inside sonic-boom's write: the report is itself a line
      setImmediate(() => this.onDropsEnded?.(dropped))
    })
  }

  /** Lines dropped so far because the descriptor's reader was too far behind. */
  get dropped (): number {
    return this.#dropped
  }

  write (line: string): boolean {
    if (!this.#open) return true
    const bytes = Buffer.from(line)
    // sonic-boom drops a line that does not fit before it tries to write: try first, the reader
    // may have made room since the last attempt
    if (this.#pending + bytes.length > this.#maxPendingBytes) this.#startWrite()
    this.#pending += bytes.length
    return (this.#dest as unknown as BytesSink).write(bytes)
  }

  /**
   * Try to write out what is pending now, through sonic-boom's write path: flush() starts a write
   * when minLength > 0, an empty line does when it is 0.
   */
  #startWrite (): void {
    if (this.#minLength > 0) this.#dest.flush()
    else (this.#dest as unknown as BytesSink).write(EMPTY)
  }

  /**
   * Write out everything pending, waiting up to `stopWaitMs` (STOP_WAIT_MS) for a reader that is
   * behind (pino's `logger.flush()` calls this; the gateway does when it stops). What still cannot
   * be written then is given up, and later flushes no longer wait: a stop waits STOP_WAIT_MS at
   * most, however often it flushes.
   */
  flush (cb?: (err?: Error) => void): void {
    this.flushSync()
    cb?.()
  }

  flushSync (): void {
    if (!this.#open) return
    this.#waitUntil = this.#gaveUp ? 0 : Date.now() + this.#stopWaitMs
    try {
      // First what an EAGAIN left pending, through sonic-boom's write path (its flushSync would
      // put those bytes back in its queue out of step with its chunk lengths), then the rest.
      this.#startWrite()
      this.#dest.flushSync()
      this.#pending = 0 // all written (sonic-boom's flushSync emits no 'write')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // the reader still had no room at the deadline: what is left is given up
      if (code === 'EAGAIN' || code === 'EBUSY') {
        this.#gaveUp = true
        return
      }
      if (code === 'EPIPE') {
        this.#open = false
        return
      }
      throw err
    } finally {
      this.#waitUntil = 0
    }
  }

  /** Write out what is pending (waiting as flushSync does), stop the periodic flush and close the descriptor (not 1 or 2). */
  end (): void {
    if (!this.#open) return
    this.flushSync()
    this.#dest.end()
  }
}
