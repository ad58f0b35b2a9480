import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, readSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A reader of a process's stdout that falls behind: a FIFO whose write end is non-blocking, as
 * libuv makes a process's stdout pipe, and whose reader (the caller) reads only when it says so.
 */
export interface SlowPipe {
  /** the write end (O_NONBLOCK) */
  readonly writer: number
  /** take what the pipe holds now; everything taken so far */
  read (): Buffer
  /** close the reading end */
  close (): void
}

/** A slow pipe as `dir`/stdout (a directory of the caller's, removed by the caller). */
export function slowPipe (dir: string): SlowPipe {
  const fifo = join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)
  const chunks: Buffer[] = []
  return {
    writer,
    read () {
      const buf = Buffer.alloc(1 << 16)
      for (;;) {
        let n: number
        try {
          n = readSync(reader, buf)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break
          throw err
        }
        if (n === 0) break
        chunks.push(Buffer.from(buf.subarray(0, n)))
      }
      return Buffer.concat(chunks)
    },
    close () { closeSync(reader) },
  }
}
