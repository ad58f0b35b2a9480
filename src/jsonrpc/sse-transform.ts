import { Transform, type TransformCallback } from 'node:stream'
import { SseDecoder, encodeSseEvent, type SseDecoderOptions, type SseEvent, type SseFieldEvent } from './sse.ts'

/**
 * Called with each event whose data is JSON (plain JSON.parse: the upstream is not the
 * client), in stream order. Return a replacement message to rewrite the event's data, or
 * undefined to pass the event on unchanged. A throw errors the stream.
 */
export type SseMessageHandler = (msg: unknown, ev: SseFieldEvent) => unknown

export interface SseMessageTransformOptions extends SseDecoderOptions {
  /**
   * Re-encode every event in the canonical form of `encodeSseEvent`. Default false: events
   * the handler leaves alone are written back byte for byte as they came (protocol.md §5.6:
   * "forward everything else byte-for-byte"), whatever their line endings and field order.
   */
  readonly canonical?: boolean
}

/**
 * A text/event-stream → text/event-stream Transform that lets `onMessage` read and rewrite
 * the JSON-RPC messages in flight (tools/list filtering, pairing responses with requests).
 *
 * Every event is written as soon as its blank line has been read — never waiting for more
 * input — so the first event of a stream reaches the client before the upstream finishes.
 * Comments, events without data, `retry` and priming events pass through; data that is not
 * JSON passes through unchanged. A replaced event keeps its `id`, `event` and `retry` and
 * gets the canonical encoding with the replacement's JSON serialisation as its one data line.
 */
export function createSseMessageTransform (onMessage: SseMessageHandler, opts: SseMessageTransformOptions = {}): Transform {
  const rewriter = createSseMessageRewriter(onMessage, opts)
  return new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      let out: string
      try {
        out = rewriter.push(chunk)
      } catch (err) {
        callback(err as Error)
        return
      }
      if (out.length > 0) this.push(out)
      callback()
    },
    flush (callback: TransformCallback): void {
      rewriter.end()
      callback()
    }
  })
}

/**
 * The same rewriting without a stream around it: `push` takes the next chunk and returns what
 * to write (possibly nothing yet); `end` checks the input ended cleanly. Both throw as the
 * Transform would error. For a relay that writes straight into the response.
 */
export function createSseMessageRewriter (onMessage: SseMessageHandler, opts: SseMessageTransformOptions = {}): { push: (chunk: Buffer) => string; end: () => void } {
  return new SseMessageRewriter(onMessage, opts)
}

/** createSseMessageRewriter's rewriter, as a class: one object per stream, no closures. */
export class SseMessageRewriter {
  readonly #decoder: SseDecoder
  readonly #onMessage: SseMessageHandler
  readonly #canonical: boolean

  constructor (onMessage: SseMessageHandler, opts: SseMessageTransformOptions = {}) {
    this.#decoder = new SseDecoder(opts)
    this.#onMessage = onMessage
    this.#canonical = opts.canonical === true
  }

  push (chunk: Buffer): string {
    return render(this.#decoder.push(chunk), this.#onMessage, this.#canonical)
  }

  end (): void {
    this.#decoder.end()
  }
}

function render (events: SseEvent[], onMessage: SseMessageHandler, canonical: boolean): string {
  let out = ''
  for (const ev of events) {
    if (ev.type === 'event' && ev.data !== '') {
      const replacement = inspect(ev, onMessage)
      if (replacement !== undefined) {
        out += encodeSseEvent({ ...ev, data: replacement, hasData: true })
        continue
      }
    }
    out += canonical || ev.raw === undefined ? encodeSseEvent(ev) : ev.raw
  }
  return out
}

/** The replacement data for this event, or undefined to keep it. */
function inspect (ev: SseFieldEvent, onMessage: SseMessageHandler): string | undefined {
  let msg: unknown
  try {
    msg = JSON.parse(ev.data)
  } catch {
    return undefined
  }
  const replacement = onMessage(msg, ev)
  if (replacement === undefined) return undefined
  const data: unknown = JSON.stringify(replacement)
  if (typeof data !== 'string') throw new TypeError('an SSE message replacement must serialise to JSON')
  return data
}
