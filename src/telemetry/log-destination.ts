import type pino from 'pino'
// the package's module is the class, which carries itself as `SonicBoom` (ESM sees no named export)
import sonicBoom, { type SonicBoom } from 'sonic-boom'

/** In `contentMode: 'buffer'` sonic-boom's `write` takes bytes (its README); its types only name strings. */
type BytesSink = { write (data: Uint8Array): boolean }

/**
 * Where the gateway's log lines go (the audit lines are most of them): a file descriptor, written
 * through sonic-boom as `pino.destination` makes it (buffered, EAGAIN retried, a broken pipe
 * stops logging instead of the process), synchronously, one write(2) per `minLength` bytes of
 * lines and at least every `periodicFlush` ms, flushed when the gateway stops.
 *
 * pino hands each line over as a string. sonic-boom in its default mode appends it to one pending
 * string and measures that string's UTF-8 length again on every line (`Buffer.byteLength`). In
 * `contentMode: 'buffer'` it keeps a byte count per chunk instead, so each line is encoded once
 * here and the pending bytes are joined once per write(2) (figures in test/bench/README.md).
 * That mode is sonic-boom's own option, hence sonic-boom as a direct dependency, pinned to the
 * minor it was checked against (4.2.1); test/unit/log-destination.test.ts fails when a line takes
 * the string path again.
 */
export class LogDestination implements pino.DestinationStream {
  readonly #dest: SonicBoom
  /** false once the reader of the descriptor is gone (EPIPE) */
  #open = true

  constructor (options: { readonly fd: number; readonly minLength: number; readonly periodicFlush: number }) {
    this.#dest = new sonicBoom.SonicBoom({ fd: options.fd, sync: true, minLength: options.minLength, periodicFlush: options.periodicFlush, contentMode: 'buffer' })
    // As pino.destination does: EPIPE stops logging; any other error is the stream's.
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EPIPE') {
        this.#open = false
        return
      }
      this.#dest.removeListener('error', onError)
      this.#dest.emit('error', err)
    }
    this.#dest.on('error', onError)
  }

  write (line: string): boolean {
    return this.#open ? (this.#dest as unknown as BytesSink).write(Buffer.from(line)) : true
  }

  /** Write out what is pending (pino's `logger.flush()` calls this). */
  flush (cb?: (err?: Error) => void): void {
    this.#dest.flush(cb)
  }

  flushSync (): void {
    if (this.#open) this.#dest.flushSync()
  }

  /** Write out what is pending, stop the periodic flush and close the descriptor (not 1 or 2). */
  end (): void {
    if (this.#open) this.#dest.end()
  }
}
