import pino from 'pino'

type SonicBoom = ReturnType<typeof pino.destination>
/** sonic-boom's `write` in `contentMode: 'buffer'` takes bytes; its types only name strings. */
type BytesSink = { write (data: Uint8Array): boolean }

/**
 * Where the gateway's log lines go (the audit lines are most of them): a file descriptor, written
 * through pino's own `pino.destination` (sonic-boom: buffered, EAGAIN retried, a broken pipe
 * stops logging instead of the process), synchronously, one write(2) per `minLength` bytes of
 * lines and at least every `periodicFlush` ms, flushed when the gateway stops.
 *
 * pino hands each line over as a string. sonic-boom in its default mode appends it to one pending
 * string and measures that string's UTF-8 length again on every line (`Buffer.byteLength`:
 * flatten and scan up to `minLength` bytes per line, seen as the biggest single cost of the audit
 * line under callgrind). In `contentMode: 'buffer'` it keeps a byte count per chunk instead, so
 * each line is encoded once here and the pending bytes are joined once per write(2).
 */
export class LogDestination implements pino.DestinationStream {
  readonly #dest: SonicBoom

  constructor (options: { readonly fd: number; readonly minLength: number; readonly periodicFlush: number }) {
    this.#dest = pino.destination({ dest: options.fd, sync: true, minLength: options.minLength, periodicFlush: options.periodicFlush, contentMode: 'buffer' } as Parameters<typeof pino.destination>[0])
  }

  write (line: string): boolean {
    // Through the property each time: on EPIPE pino replaces the stream's `write` with a no-op.
    return (this.#dest as unknown as BytesSink).write(Buffer.from(line))
  }

  /** Write out what is pending (pino's `logger.flush()` calls this). */
  flush (cb?: (err?: Error) => void): void {
    this.#dest.flush(cb)
  }

  flushSync (): void {
    this.#dest.flushSync()
  }

  /** Write out what is pending, stop the periodic flush and close the descriptor (not 1 or 2). */
  end (): void {
    this.#dest.end()
  }
}
