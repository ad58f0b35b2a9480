/**
 * An incremental text/event-stream codec following the WHATWG HTML "event stream
 * interpretation" rules, shaped for a proxy (protocol.md §5.5, §5.6, B7):
 *
 * - the stream is decoded as UTF-8 (invalid bytes become U+FFFD, as for EventSource), a
 *   character split across chunks is kept whole, one leading BOM is dropped;
 * - lines end with CRLF, LF or CR — a CR ends its line at once (a following LF, even in the
 *   next chunk, is skipped), so no event ever waits for more input once its blank line came;
 * - every block of field lines ending with a blank line is an event, including blocks the
 *   EventSource API would not dispatch (`id:` alone, or only unknown fields): their ids and
 *   `retry` still matter to the client;
 * - `data` lines are joined with `\n`; one space after the colon is dropped; `id` containing
 *   NUL and `retry` that is not all ASCII digits (or has more than 15) are ignored, as are
 *   unknown fields;
 * - a comment line outside a block is an event of its own (keep-alives are forwarded as they
 *   arrive); a comment line inside a block stays in that block's `raw` text only;
 * - each decoded event keeps `raw`, the exact text it was decoded from, so an event passed
 *   on unchanged can be written back byte for byte. Text that belongs to no event — a blank
 *   line ending no block, the LF of a CRLF split across chunks — is appended to the last
 *   event of the same `push`, else put in front of the next one: the raw texts of all events
 *   put together are the stream, however it was cut into chunks;
 * - at the end of the stream an unfinished block is discarded, as EventSource does.
 */

/** A block of field lines ended by a blank line. */
export interface SseFieldEvent {
  readonly type: 'event'
  readonly id?: string
  readonly event?: string
  /** the `data` lines joined with `\n` */
  readonly data: string
  readonly retry?: number
  /** at least one `data` line (a priming event `id: 7\ndata:\n\n` has data '' and hasData true) */
  readonly hasData: boolean
  /** the text this event was decoded from; absent for events built by the gateway */
  readonly raw?: string
}

/** A comment line (`:` first), e.g. a keep-alive; `text` is what follows `:` and one space. */
export interface SseComment {
  readonly type: 'comment'
  readonly text: string
  readonly raw?: string
}

export type SseEvent = SseFieldEvent | SseComment

export interface SseDecoderOptions {
  /** Largest pending event (its raw text, in UTF-16 code units). Default 16 MiB. */
  readonly maxEventLength?: number
}

/** One event grew beyond `maxEventLength` before its blank line came. */
export class SseEventTooLargeError extends Error {
  readonly code = 'SSE_EVENT_TOO_LARGE'
  readonly limit: number
  constructor (limit: number) {
    super(`an event-stream event exceeds ${limit} characters`)
    this.name = 'SseEventTooLargeError'
    this.limit = limit
  }
}

const LF = 0x0a
const CR = 0x0d

export class SseDecoder {
  /**
   * The bytes of a UTF-8 sequence cut by the end of the last chunk. Decoding chunk by chunk with
   * no decoder object: a streaming TextDecoder (or StringDecoder) holds ~2 KiB of native state per
   * instance, and there is one decoder per open stream.
   */
  private carry: Buffer | undefined = undefined
  private readonly maxEventLength: number
  private started = false
  /** the LF of a CRLF may still come */
  private afterCR = false
  /** an unterminated line from earlier chunks */
  private partial = ''
  /** text to put in front of the next event: stray blank lines, a late LF */
  private prefix = ''
  // the block being read
  private blockRaw = ''
  private inBlock = false
  private dataLines: string[] = []
  private id: string | undefined = undefined
  private event: string | undefined = undefined
  private retry: number | undefined = undefined

  constructor (opts: SseDecoderOptions = {}) {
    this.maxEventLength = opts.maxEventLength ?? 16 * 1024 * 1024
  }

  /** The events completed by this chunk, in order. */
  push (chunk: Buffer | Uint8Array | string): SseEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decode(chunk)
    if (!this.started && text.length > 0) {
      this.started = true
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    const out: SseEvent[] = []
    let pos = 0
    if (this.afterCR && text.length > 0) {
      this.afterCR = false
      if (text.charCodeAt(0) === LF) {
        if (this.inBlock) this.blockRaw += '\n'
        else this.prefix += '\n'
        pos = 1
      }
    }
    let nextLF = -2
    let nextCR = -2
    while (pos < text.length) {
      if (nextLF !== -1 && nextLF < pos) nextLF = text.indexOf('\n', pos)
      if (nextCR !== -1 && nextCR < pos) nextCR = text.indexOf('\r', pos)
      let end: number
      if (nextLF === -1) end = nextCR
      else if (nextCR === -1) end = nextLF
      else end = Math.min(nextLF, nextCR)
      if (end === -1) {
        this.partial += text.slice(pos)
        this.checkSize()
        break
      }
      let after = end + 1
      if (text.charCodeAt(end) === CR) {
        if (after === text.length) this.afterCR = true
        else if (text.charCodeAt(after) === LF) after++
      }
      const line = this.partial.length === 0 ? text.slice(pos, end) : this.partial + text.slice(pos, end)
      const rawLine = this.partial.length === 0 ? text.slice(pos, after) : this.partial + text.slice(pos, after)
      this.partial = ''
      this.line(line, rawLine, out)
      pos = after
    }
    const last = out.at(-1)
    if (this.prefix.length > 0 && last !== undefined) {
      // blank lines after the last item (`: ping\n\n`) leave with it rather than wait
      out[out.length - 1] = { ...last, raw: (last.raw ?? '') + this.prefix }
      this.prefix = ''
    }
    return out
  }

  /** The end of the stream: an unfinished event is discarded. */
  end (): SseEvent[] {
    this.carry = undefined
    this.partial = ''
    this.prefix = ''
    this.resetBlock()
    return []
  }

  /** UTF-8 → text, malformed bytes as U+FFFD; an incomplete last sequence waits for the next chunk. */
  private decode (chunk: Buffer | Uint8Array): string {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.carry !== undefined) {
      bytes = Buffer.concat([this.carry, bytes])
      this.carry = undefined
    }
    const end = completeUtf8Length(bytes)
    if (end < bytes.length) this.carry = Buffer.from(bytes.subarray(end))
    return bytes.toString('utf8', 0, end)
  }

  private line (line: string, rawLine: string, out: SseEvent[]): void {
    if (line.length === 0) {
      if (!this.inBlock) {
        this.prefix += rawLine
        this.checkSize()
        return
      }
      const ev: { -readonly [K in keyof SseFieldEvent]: SseFieldEvent[K] } = {
        type: 'event',
        data: this.dataLines.join('\n'),
        hasData: this.dataLines.length > 0,
        raw: this.prefix + this.blockRaw + rawLine
      }
      if (this.id !== undefined) ev.id = this.id
      if (this.event !== undefined) ev.event = this.event
      if (this.retry !== undefined) ev.retry = this.retry
      out.push(ev)
      this.prefix = ''
      this.resetBlock()
      return
    }
    const colon = line.indexOf(':')
    if (colon === 0) {
      if (this.inBlock) {
        this.blockRaw += rawLine
        this.checkSize()
      } else {
        out.push({ type: 'comment', text: stripSpace(line.slice(1)), raw: this.prefix + rawLine })
        this.prefix = ''
      }
      return
    }
    this.inBlock = true
    this.blockRaw += rawLine
    this.checkSize()
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : stripSpace(line.slice(colon + 1))
    switch (field) {
      case 'data': this.dataLines.push(value); break
      case 'event': this.event = value; break
      case 'id': if (!value.includes('\0')) this.id = value; break
      case 'retry': if (/^[0-9]{1,15}$/.test(value)) this.retry = Number(value); break
    }
  }

  private resetBlock (): void {
    this.blockRaw = ''
    this.inBlock = false
    this.dataLines = []
    this.id = undefined
    this.event = undefined
    this.retry = undefined
  }

  private checkSize (): void {
    if (this.partial.length + this.blockRaw.length + this.prefix.length > this.maxEventLength) {
      throw new SseEventTooLargeError(this.maxEventLength)
    }
  }
}

function stripSpace (value: string): string {
  return value.charCodeAt(0) === 0x20 ? value.slice(1) : value
}

/**
 * The canonical text of an event: `id`, `event`, `retry`, then one `data:` line per line of
 * data (CRLF, CR and LF all split), then a blank line; a comment is `: text` plus a blank
 * line; an event with none of these fields is ''. `raw` is ignored. Throws a TypeError for an `id`/`event` holding a line break (or an
 * `id` holding NUL), which would smuggle fields into the stream.
 */
export function encodeSseEvent (ev: SseEvent): string {
  if (ev.type === 'comment') {
    return ev.text.split(/\r\n|\r|\n/).map(line => `: ${line}\n`).join('') + '\n'
  }
  let out = ''
  if (ev.id !== undefined) {
    if (/[\r\n\0]/.test(ev.id)) throw new TypeError('an event-stream id cannot contain CR, LF or NUL')
    out += `id: ${ev.id}\n`
  }
  if (ev.event !== undefined) {
    if (/[\r\n]/.test(ev.event)) throw new TypeError('an event-stream event type cannot contain CR or LF')
    out += `event: ${ev.event}\n`
  }
  if (ev.retry !== undefined) {
    if (!Number.isSafeInteger(ev.retry) || ev.retry < 0) throw new TypeError('retry must be a non-negative integer')
    out += `retry: ${ev.retry}\n`
  }
  if (ev.hasData || ev.data !== '') {
    for (const line of ev.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`
  }
  return out === '' ? '' : out + '\n' // a block of unknown fields only says nothing
}

/**
 * How many leading bytes of `bytes` end on a UTF-8 sequence boundary: all of them, unless the last
 * (up to 4) bytes start a multi-byte sequence that the buffer cuts short. Bytes that cannot start
 * or continue a sequence count as complete (they decode as U+FFFD either way).
 */
export function completeUtf8Length (bytes: Buffer): number {
  const n = bytes.length
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!
    if ((b & 0xc0) === 0x80) continue // a continuation byte: the sequence starts further back
    const need = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 1
    return need > back ? n - back : n
  }
  return n
}
