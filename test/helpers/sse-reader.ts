/**
 * The tests' reader of text/event-stream bodies, written from the WHATWG HTML standard's "Event
 * stream interpretation" (https://html.spec.whatwg.org/multipage/server-sent-events.html) and
 * nothing else. It is the oracle the gateway's own codec (src/jsonrpc/sse.ts) is checked against,
 * so it must never import it: a test helper that decoded with the production decoder would agree
 * with every bug of it.
 *
 * What it does, step by step as the standard says:
 * - the bytes are decoded as UTF-8 (invalid sequences become U+FFFD); one leading BOM is dropped;
 * - lines end with CRLF, a lone LF or a lone CR;
 * - an empty line dispatches the event; a line starting with `:` is a comment and ignored;
 * - otherwise the field name is what comes before the first `:` (the whole line if there is
 *   none) and the value what comes after it, less one leading space;
 * - `event` sets the event type, `data` appends its value and a LF to the data buffer, `id` sets
 *   the last event ID (unless the value contains NUL), `retry` (ASCII digits only) sets the
 *   reconnection time; any other field is ignored;
 * - on dispatch the last event ID is recorded; an empty data buffer dispatches nothing; else the
 *   final LF is removed and an event of type `event` (default `message`) is fired;
 * - at the end of the stream, an event without its blank line is discarded.
 */

export interface SseTestEvent {
  /** the event type: the last `event` field of the block, or `message` */
  readonly type: string
  /** the `data` fields' values joined with LF */
  readonly data: string
  /** the last event ID when it was dispatched ('' if never set, or reset by an empty `id`) */
  readonly lastEventId: string
}

export class SseReader {
  readonly #utf8 = new TextDecoder('utf-8', { ignoreBOM: true })
  #started = false
  /** a line not yet ended */
  #line = ''
  /** the last chunk ended with CR: a LF at the start of the next one belongs to it */
  #afterCR = false
  #eventType = ''
  #data = ''
  #lastEventId = ''
  /** the reconnection time a `retry` field set, if any */
  reconnectionTime: number | undefined = undefined

  /** Feed a chunk (bytes, or text already decoded); returns the events it completed. */
  push (chunk: Uint8Array | string): SseTestEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.#utf8.decode(chunk, { stream: true })
    if (!this.#started && text !== '') {
      this.#started = true
      if (text.startsWith('\uFEFF')) text = text.slice(1)
    }
    const events: SseTestEvent[] = []
    let from = 0
    if (this.#afterCR && text.length > 0) {
      this.#afterCR = false
      if (text.startsWith('\n')) from = 1
    }
    for (let i = from; i < text.length; i++) {
      const c = text[i]
      if (c !== '\r' && c !== '\n') continue
      this.#processLine(this.#line + text.slice(from, i), events)
      this.#line = ''
      if (c === '\r') {
        if (i + 1 === text.length) this.#afterCR = true
        else if (text[i + 1] === '\n') i++
      }
      from = i + 1
    }
    this.#line += text.slice(from)
    return events
  }

  /** The stream ended: an event (or line) without its end is discarded, never dispatched. */
  end (): void {
    this.#utf8.decode()
    this.#line = ''
    this.#data = ''
    this.#eventType = ''
  }

  #processLine (line: string, events: SseTestEvent[]): void {
    if (line === '') {
      this.#dispatch(events)
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event': this.#eventType = value; break
      case 'data': this.#data += `${value}\n`; break
      case 'id': if (!value.includes('\0')) this.#lastEventId = value; break
      case 'retry': if (/^[0-9]+$/.test(value)) this.reconnectionTime = Number(value); break
      default: break
    }
  }

  #dispatch (events: SseTestEvent[]): void {
    if (this.#data === '') {
      this.#eventType = ''
      return
    }
    const data = this.#data.endsWith('\n') ? this.#data.slice(0, -1) : this.#data
    events.push({ type: this.#eventType === '' ? 'message' : this.#eventType, data, lastEventId: this.#lastEventId })
    this.#data = ''
    this.#eventType = ''
  }
}

/** Every event of a whole event-stream body. */
export function readEventStream (body: Uint8Array | string): SseTestEvent[] {
  const reader = new SseReader()
  const events = reader.push(body)
  reader.end()
  return events
}

/** Events as the chunks of a body arrive. */
export async function * eventsOf (chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseTestEvent> {
  const reader = new SseReader()
  for await (const chunk of chunks) yield * reader.push(chunk)
  reader.end()
}
