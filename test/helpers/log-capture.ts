import { Writable } from 'node:stream'

export interface CapturedLogs {
  /** a stream to hand to pino (`logger: { stream }`) */
  readonly stream: Writable
  /** every JSON line, parsed */
  readonly logs: Record<string, unknown>[]
  /** every line as written, for "no secret anywhere" checks */
  readonly rawLogs: string[]
}

/** Collect a pino logger's lines in memory. */
export function captureLogs (): CapturedLogs {
  const rawLogs: string[] = []
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        rawLogs.push(line)
        try { logs.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not JSON */ }
      }
      cb()
    },
  })
  return { stream, logs, rawLogs }
}
