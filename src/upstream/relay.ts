import type { ServerResponse } from 'node:http'
import type { McpExchange } from '../mcp/exchange.ts'
import { SseMessageRewriter } from '../jsonrpc/sse-transform.ts'
import { encodeSseEvent } from '../jsonrpc/sse.ts'
import { jsonRpcError } from '../jsonrpc/errors.ts'
import { GatewayError } from '../errors.ts'
import type { BodySink, UpstreamResponse } from './dispatch.ts'
import { decodeUtf8Strict } from '../jsonrpc/utf8.ts'

/**
 * The upstream → client half of every exchange: each JSON-RPC message the upstream sends
 * passes `observeUpstreamMessage`, which pairs responses with the request they answer and runs
 * the pipeline's `onUpstreamMessage` stages (pipeline.ts), each of which may rewrite it in flight.
 */
export function observeUpstreamMessage (exchange: McpExchange, message: unknown): unknown {
  let requestMethod: string | undefined
  if (isResponse(message)) {
    requestMethod = exchange.pending.get(message.id)
    exchange.pending.delete(message.id)
  }
  let current: unknown = message
  let replaced = false
  for (const stage of exchange.response.onUpstreamMessage) {
    const next = stage(exchange, current, requestMethod)
    if (next !== undefined) {
      current = next
      replaced = true
    }
  }
  return replaced ? current : undefined
}

function isResponse (message: unknown): message is { id: string | number } {
  if (typeof message !== 'object' || message === null || 'method' in message) return false
  const id = (message as { id?: unknown }).id
  return (typeof id === 'string' || typeof id === 'number') && ('result' in message || 'error' in message)
}

/**
 * Relay an upstream SSE body to the client event by event, never waiting for more than one
 * event (the first event reaches the client before the upstream finishes). Chunks go from the
 * upstream request straight through the SSE rewriter into the response — no stream in between;
 * a full socket pauses the upstream until it drains.
 *
 * If the upstream stream breaks — or simply ends — before answering every request of this
 * exchange, those requests would wait forever; each gets a JSON-RPC error event instead and
 * `onBroken` is told. The exception is a stream that carried event ids: its client resumes it
 * with Last-Event-ID (the 2025-11-25 polling pattern closes streams on purpose) and the
 * upstream replays the answer. A client that goes away stops the upstream request
 * (`body.abort`). The relay runs until the response closes; nothing needs to wait for it.
 */
export function relaySse (res: ServerResponse, body: UpstreamResponse, exchange: McpExchange, onBroken: (failure: GatewayError) => void): void {
  if (res.closed || res.destroyed) {
    // the client is already gone: nothing to relay, and no 'close' event will come
    body.abort(new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED'))
    return
  }
  const relay = new SseRelay(res, body, exchange, onBroken)
  res.on('close', () => { relay.closed() })
  body.pipeTo(relay)
}

/**
 * The state of one relayed stream, in one object: an idle stream (a GET stream may stay open
 * for hours without an event) holds this, and its rewriter only once the first chunk came.
 */
class SseRelay implements BodySink {
  readonly #res: ServerResponse
  readonly #body: UpstreamResponse
  readonly #exchange: McpExchange
  readonly #onBroken: (failure: GatewayError) => void
  #rewriter: SseMessageRewriter | undefined = undefined
  /** an event carried an id: the client can resume the stream */
  #resumable = false
  #finished = false
  #draining = false

  constructor (res: ServerResponse, body: UpstreamResponse, exchange: McpExchange, onBroken: (failure: GatewayError) => void) {
    this.#res = res
    this.#body = body
    this.#exchange = exchange
    this.#onBroken = onBroken
  }

  data (chunk: Buffer): boolean {
    if (this.#finished) return true
    let out: string
    try {
      this.#rewriter ??= new SseMessageRewriter((message, event) => {
        if (event.id !== undefined && event.id !== '') this.#resumable = true
        return observeUpstreamMessage(this.#exchange, message)
      })
      out = this.#rewriter.push(chunk)
    } catch (err) {
      // an event too large, or a rewrite that failed: the stream ends here
      this.#finish(err)
      this.#body.abort(err as Error)
      return true
    }
    if (out.length === 0 || this.#res.write(out)) return true
    if (!this.#draining) {
      this.#draining = true
      this.#res.once('drain', () => {
        this.#draining = false
        this.#body.resume()
      })
    }
    return false
  }

  end (): void {
    try {
      this.#rewriter?.end()
    } catch (err) {
      this.#finish(err)
      return
    }
    this.#finish()
  }

  error (err: Error): void {
    this.#finish(err)
  }

  /** The client's response closed: stop reading the upstream. */
  closed (): void {
    if (this.#finished) return
    this.#finished = true
    this.#body.abort(new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED'))
  }

  #finish (err?: unknown): void {
    if (this.#finished) return
    this.#finished = true
    const res = this.#res
    const exchange = this.#exchange
    if (res.destroyed || res.writableEnded) return
    if (!this.#resumable && exchange.pending.size > 0) {
      const failure = new GatewayError('PORTCULLIS_ERR_UPSTREAM_CLOSED', undefined, { cause: err })
      for (const id of exchange.pending.keys()) {
        const data = JSON.stringify(jsonRpcError(id, failure.rpcCode, failure.publicMessage))
        res.write(encodeSseEvent({ type: 'event', event: 'message', data, hasData: true }))
      }
      exchange.pending.clear()
      this.#onBroken(failure)
    }
    res.end()
  }
}

/**
 * A complete `application/json` upstream body: always parsed (an upstream that answers 200 with
 * broken JSON is a failed upstream, not something to hand a client), re-serialised only when a
 * stage rewrote a message; otherwise the upstream's text passes unchanged — as the string it was
 * decoded to when it is valid UTF-8 (Node writes a string body together with the response head
 * in one write; a Buffer takes a second one), else as the bytes received.
 * Returns undefined when the upstream sent something that is not JSON.
 */
export function relayJson (body: Buffer, exchange: McpExchange): string | Buffer | undefined {
  const decoded = decodeUtf8Strict(body)
  const text = decoded ?? body.toString('utf8')
  const unchanged = decoded ?? body
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (Array.isArray(parsed)) {
    let changed = false
    const rewritten = parsed.map((message: unknown) => {
      const next = observeUpstreamMessage(exchange, message)
      if (next === undefined) return message
      changed = true
      return next
    })
    return changed ? JSON.stringify(rewritten) : unchanged
  }
  const next = observeUpstreamMessage(exchange, parsed)
  return next === undefined ? unchanged : JSON.stringify(next)
}
