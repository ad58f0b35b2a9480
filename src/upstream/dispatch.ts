import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'

/**
 * One upstream HTTP request on undici's low-level `dispatch()` API.
 *
 * `pool.request()` builds, per request, an AbortSignal listener, an AsyncResource and a Readable
 * body that is then drained through an async iterator; on the gateway's hot path (a small JSON
 * answer to every tools/call) that machinery cost more CPU than the rest of the forwarding. Here a
 * complete JSON body is collected as the chunks arrive, and an SSE body is handed chunk by chunk
 * to a sink that writes into the client's response (relay.ts).
 *
 * Errors are undici's own (HeadersTimeoutError, SocketError, …), so callers map them as before.
 */
export interface UpstreamResponse {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  /** the whole body; rejects (and aborts the request) past `maxBytes` */
  bytes: (maxBytes: number, tooLarge: () => Error) => Promise<Buffer>
  /** read and discard the rest */
  dump: () => Promise<void>
  /** hand every chunk to `sink` as it arrives, no stream in between; `resume()` after it said stop */
  pipeTo: (sink: BodySink) => void
  resume: () => void
  /** give up on the request (the client went away, or its body can't be relayed) */
  abort: (reason: Error) => void
}

/** What a request is dispatched on: an undici Pool or Agent, or a RecyclingPool (recycling-pool.ts). */
export type Dispatch = Pick<Dispatcher, 'dispatch'>

/** A consumer of a body's chunks, for relays that write straight into a response. */
export interface BodySink {
  /** the next chunk; false: stop reading the upstream until `resume()` */
  readonly data: (chunk: Buffer) => boolean
  readonly end: () => void
  readonly error: (err: Error) => void
}

export interface DispatchOptions {
  /** needed when the dispatcher is an Agent (many origins); a Pool has its own */
  readonly origin?: string
  readonly path: string
  readonly method: 'POST' | 'GET' | 'DELETE'
  readonly headers: Record<string, string>
  readonly body: string | undefined
}

type Mode =
  | { kind: 'buffer'; chunks: Buffer[]; size: number }
  | { kind: 'collect'; chunks: Buffer[]; size: number; max: number; tooLarge: () => Error; resolve: (b: Buffer) => void; reject: (e: unknown) => void }
  | { kind: 'sink'; sink: BodySink }
  | { kind: 'dump'; resolve: () => void }

/** The handler of one dispatched request; `abort()` may come at any time (the client went away). */
export class UpstreamRequest implements Dispatcher.DispatchHandler, UpstreamResponse {
  statusCode = 0
  headers: IncomingHttpHeaders = {}
  /** the client went away and the request was aborted on its behalf */
  aborted = false
  readonly #started: Promise<UpstreamResponse>
  #resolveStart!: (r: UpstreamResponse) => void
  #rejectStart!: (e: unknown) => void
  #controller: Dispatcher.DispatchController | null = null
  #mode: Mode = { kind: 'buffer', chunks: [], size: 0 }
  /** set when the body ended (undefined) or failed (the error) before a consumer was chosen */
  #done: { error: unknown } | undefined
  #responded = false
  /** told once, when the request is over (its connection is free again) */
  #onOver: (() => void) | undefined

  constructor (dispatcher: Dispatch, options: DispatchOptions, done?: () => void) {
    this.#onOver = done
    this.#started = new Promise((resolve, reject) => {
      this.#resolveStart = resolve
      this.#rejectStart = reject
    })
    dispatcher.dispatch({ origin: options.origin, path: options.path, method: options.method, headers: options.headers, body: options.body }, this)
  }

  /** Resolves when the response head arrives; rejects when the request fails before it. */
  response (): Promise<UpstreamResponse> {
    return this.#started
  }

  abort (reason: Error): void {
    if (this.aborted) return
    this.aborted = true
    // Before the request started, undici calls onRequestStart next: abort there.
    this.#controller?.abort(reason)
  }

  // -- Dispatcher.DispatchHandler --------------------------------------------------------------

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.aborted) controller.abort(new Error('aborted by the client'))
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return // 1xx: informational, the real head follows
    // undici leaves the head's raw header buffers on the controller, which lives as long as the
    // response (an SSE stream: hours); the parsed headers are all anyone reads.
    controller.rawHeaders = null
    this.statusCode = statusCode
    this.headers = headers
    this.#responded = true
    this.#resolveStart(this)
    this.#settled()
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const mode = this.#mode
    switch (mode.kind) {
      case 'buffer':
        mode.chunks.push(chunk)
        mode.size += chunk.length
        return
      case 'collect':
        mode.size += chunk.length
        if (mode.size > mode.max) {
          const err = mode.tooLarge()
          mode.chunks = []
          this.#mode = { kind: 'dump', resolve: noop }
          mode.reject(err)
          controller.abort(err)
          return
        }
        mode.chunks.push(chunk)
        return
      case 'sink':
        if (!mode.sink.data(chunk)) controller.pause()
        break
      case 'dump':
    }
  }

  onResponseEnd (): void {
    this.#over()
    const mode = this.#mode
    switch (mode.kind) {
      case 'buffer': this.#done = { error: undefined }; return
      case 'collect': mode.resolve(concat(mode.chunks, mode.size)); return
      case 'sink': this.#done = { error: undefined }; mode.sink.end(); return
      case 'dump': mode.resolve()
    }
  }

  onResponseError (_controller: Dispatcher.DispatchController | null, error: Error): void {
    this.#over()
    if (!this.#responded) {
      this.#rejectStart(error)
      this.#settled()
      return
    }
    const mode = this.#mode
    switch (mode.kind) {
      case 'buffer': this.#done = { error }; return
      case 'collect': mode.reject(error); return
      case 'sink': this.#done = { error }; mode.sink.error(error); return
      case 'dump': mode.resolve()
    }
  }

  // -- UpstreamResponse: choose once how the body is consumed -----------------------------------

  bytes (maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
    const buffered = this.#take()
    if (buffered.size > maxBytes) {
      const err = tooLarge()
      this.#controller?.abort(err)
      return Promise.reject(err)
    }
    if (this.#done !== undefined) {
      return this.#done.error === undefined ? Promise.resolve(concat(buffered.chunks, buffered.size)) : Promise.reject(this.#done.error)
    }
    return new Promise((resolve, reject) => {
      this.#mode = { kind: 'collect', chunks: buffered.chunks, size: buffered.size, max: maxBytes, tooLarge, resolve, reject }
    })
  }

  pipeTo (sink: BodySink): void {
    const buffered = this.#take()
    let more = true
    for (const chunk of buffered.chunks) more = sink.data(chunk) && more
    if (this.#done !== undefined) {
      if (this.#done.error === undefined) sink.end()
      else sink.error(this.#done.error as Error)
      return
    }
    this.#mode = { kind: 'sink', sink }
    if (!more) this.#controller?.pause()
  }

  resume (): void {
    this.#controller?.resume()
  }

  dump (): Promise<void> {
    this.#take()
    if (this.#done !== undefined) return Promise.resolve()
    return new Promise((resolve) => { this.#mode = { kind: 'dump', resolve } })
  }

  /** The start promise is settled: its resolving functions need not live as long as the response. */
  #settled (): void {
    this.#resolveStart = noop
    this.#rejectStart = noop
  }

  #over (): void {
    const done = this.#onOver
    if (done === undefined) return
    this.#onOver = undefined
    done()
  }

  /** What arrived before a consumer was chosen; from now on, further chunks are discarded unless the consumer says otherwise. */
  #take (): { chunks: Buffer[]; size: number } {
    const mode = this.#mode
    if (mode.kind !== 'buffer') throw new Error('the upstream response body was already consumed')
    this.#mode = { kind: 'dump', resolve: noop }
    return mode
  }
}

function noop (): void {}

function concat (chunks: Buffer[], size: number): Buffer {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
}
