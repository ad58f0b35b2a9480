import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { ServerConfig } from '../config/types.ts'
import type { McpExchange } from '../mcp/exchange.ts'
import { GatewayError, isGatewayError } from '../errors.ts'
import { headerValue, pickResponseHeaders } from './headers.ts'
import { relayJson, relaySse } from './relay.ts'
import { upstreamFailure, upstreamStatusFailure } from './errors.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { UpstreamCall, type UpstreamErrorReason } from './upstream-call.ts'
import type { UpstreamCircuit } from './circuit.ts'
import { closeWhenStalled } from './stall.ts'
import { UpstreamRequest, type Dispatch, type UpstreamResponse } from './dispatch.ts'
import type { ConnectionGate, Waiting } from './connection-gate.ts'
import { streamKey, type UpstreamLimits } from './upstream-limits.ts'
import { limitKey } from '../limits/limit-key.ts'
import { serializeBody } from '../jsonrpc/parse.ts'
import { overLimit } from '../limits/over-limit.ts'
import type { Release } from '../limits/concurrency-limiter.ts'

/** Where an exchange goes: a path on the dispatcher's one origin (a Pool), or an origin and path (an Agent). */
export interface ForwardTarget {
  readonly origin?: string
  readonly path: string
}

/** Largest complete JSON response read from an upstream (SSE responses are streamed, not capped). */
const MAX_JSON_RESPONSE_BYTES = 32 * 1024 * 1024

/**
 * An exchange forwarded as one HTTP request to a Streamable HTTP endpoint — the upstream itself
 * (streamable-http.ts), or the replica that owns a bridged session (bridge/peer-forwarder.ts) —
 * its body the re-serialised parsed messages, its response streamed back through the relay, so
 * every answer is observed (and lists filtered) in flight whoever produced it. Subclasses say
 * which headers go out and come back, and what an unreachable target means.
 *
 * Limits (config `limits`): a request waits at most upstreamWaitMs for a connection to its
 * target (connection-gate.ts); an SSE answer counts against its principal's open streams until
 * it closes, and a request that would open one stream too many is refused before it is sent
 * (a GET always streams; a POST with requests may, so it is refused once the principal holds the
 * maximum). The streams are counted here, at the replica the client talks to.
 */
export abstract class HttpForwarder {
  protected readonly server: ServerConfig
  protected readonly log: FastifyBaseLogger
  protected readonly metrics: Metrics
  readonly #dispatcher: Dispatch
  readonly #target: (exchange: McpExchange) => ForwardTarget
  readonly #gate: (exchange: McpExchange) => ConnectionGate
  readonly #limits: UpstreamLimits
  /** the upstream's circuit breaker (none towards other replicas: an owner that is gone is a lost session) */
  readonly #circuit: UpstreamCircuit | undefined
  /** the labels of this server's open-stream gauges, and what a stalled stream counts: one of each per forwarder, not per stream */
  readonly #streamLabels: { readonly post: { server: string; kind: 'post' }; readonly get: { server: string; kind: 'get' } }
  readonly #onStall: () => void

  constructor (server: ServerConfig, dispatcher: Dispatch, target: (exchange: McpExchange) => ForwardTarget,
    gate: (exchange: McpExchange) => ConnectionGate, limits: UpstreamLimits, log: FastifyBaseLogger, metrics: Metrics, circuit?: UpstreamCircuit) {
    this.server = server
    this.#circuit = circuit
    this.#dispatcher = dispatcher
    this.#target = target
    this.#gate = gate
    this.#limits = limits
    this.log = log
    this.metrics = metrics
    this.#streamLabels = { post: { server: server.name, kind: 'post' }, get: { server: server.name, kind: 'get' } }
    const stalled = { server: server.name }
    this.#onStall = () => { metrics.streamsStalled.inc(stalled) }
  }

  /** The request headers for the target. */
  protected abstract requestHeaders (exchange: McpExchange, request: FastifyRequest, call: UpstreamCall, method: string, body: string | undefined): Record<string, string>
  /** A failure to reach the target or read its answer, as the client's answer. */
  protected abstract unreachable (err: unknown, call: UpstreamCall): GatewayError
  /** The response headers a client may see. */
  protected responseHeaders (_exchange: McpExchange, headers: IncomingHttpHeaders): Record<string, string> {
    return pickResponseHeaders(headers)
  }

  /** The target's response head arrived. */
  protected answered (_exchange: McpExchange, _res: UpstreamResponse, _call: UpstreamCall): void {}
  /** The target answered 404 to a request in a session: the session is gone. */
  protected sessionGone (_exchange: McpExchange): void {}

  async forwardPost (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // The call injects the trace context into the messages, so it comes before serialising them.
    const key = streamKey(this.server.name, limitKey(exchange, request))
    if (exchange.messages.some((m) => m.kind === 'request') && this.#limits.streams.full(key)) throw this.#tooManyStreams()
    const call = new UpstreamCall(exchange, request, this.metrics)
    const body = serializeBody(exchange)
    const res = await this.#request('POST', exchange, request, reply, body, call)
    if (res === undefined) return
    const contentType = headerValue(res.headers, 'content-type') ?? ''
    if (res.statusCode === 202 || res.statusCode === 204) {
      await res.dump()
      reply.code(res.statusCode).headers(this.responseHeaders(exchange, res.headers)).send()
      return
    }
    if (isEventStream(contentType)) {
      // Another request of the principal's may have opened a stream meanwhile.
      const release = this.#limits.streams.acquire(key)
      if (release === undefined) {
        res.abort(new GatewayError('PORTCULLIS_ERR_RATE_LIMITED'))
        throw this.#tooManyStreams()
      }
      holdUntilClosed(reply, release)
      this.#sendSse(exchange, reply, res, call, 'post')
      return
    }
    if (!JSON_TYPE.test(contentType)) {
      await res.dump()
      throw this.failure(call, 'bad_response', new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', `unexpected content type ${JSON.stringify(contentType.slice(0, 64))}`))
    }
    const bytes = await readBody(res).catch((err: unknown) => { throw this.failure(call, 'bad_response', upstreamFailure(err)) })
    const out = relayJson(bytes, exchange)
    if (out === undefined) throw this.failure(call, 'bad_response', new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', 'response is not JSON'))
    // Not awaited: a Reply is a thenable that settles when the response has finished, which
    // costs a listener and a promise per request and tells this handler nothing it needs.
    // The text goes out as it is: for a string payload Fastify would otherwise append
    // `; charset=utf-8` to the upstream's JSON content type (the client must see the upstream's).
    reply.code(res.statusCode).headers(this.responseHeaders(exchange, res.headers)).serializer(asIs).send(out)
  }

  async forwardGet (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const release = this.#limits.streams.acquire(streamKey(this.server.name, limitKey(exchange, request)))
    if (release === undefined) throw this.#tooManyStreams()
    holdUntilClosed(reply, release)
    const call = new UpstreamCall(exchange, request, this.metrics)
    const res = await this.#request('GET', exchange, request, reply, undefined, call)
    if (res === undefined) return
    if (isEventStream(headerValue(res.headers, 'content-type') ?? '')) {
      this.#sendSse(exchange, reply, res, call, 'get')
      return
    }
    await this.#passThrough(exchange, reply, res)
  }

  /** Resolves with the target's status once the answer is passed on. */
  async forwardDelete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<number> {
    const res = await this.#request('DELETE', exchange, request, reply, undefined, new UpstreamCall(exchange, request, this.metrics))
    if (res === undefined) return 404
    await this.#passThrough(exchange, reply, res)
    return res.statusCode
  }

  protected failure (call: UpstreamCall, reason: UpstreamErrorReason, failure: GatewayError): GatewayError {
    call.failed(reason)
    return failure
  }

  /**
   * Send the request. Statuses the client must not see are turned into gateway errors here; 4xx
   * statuses (400 bodies carry era detection, 404 a dead session, 405 no GET stream) are answered
   * unchanged and `undefined` is returned.
   */
  async #request (method: 'POST' | 'GET' | 'DELETE', exchange: McpExchange, request: FastifyRequest, reply: FastifyReply,
    body: string | undefined, call: UpstreamCall): Promise<UpstreamResponse | undefined> {
    const headers = this.requestHeaders(exchange, request, call, method, body)
    if (body !== undefined) headers['content-type'] = 'application/json'
    const gate = this.#gate(exchange)
    // A client that goes away cancels its upstream request (2026-07-28: closing the stream is
    // cancellation; before it, plain resource hygiene) — or leaves the queue, never sent.
    const attempt: Attempt = { waiting: undefined, upstream: undefined }
    exchange.cancels.push(cancelling(attempt, call, reply.raw))
    const send = async (): Promise<UpstreamResponse> => {
      let permit = gate.tryAcquire()
      if (permit === undefined) {
        attempt.waiting = gate.wait(this.#limits.upstreamWaitMs)
        try {
          permit = await attempt.waiting.ready
        } catch (err) {
          if (err instanceof GatewayError && err.code === 'PORTCULLIS_ERR_UPSTREAM_BUSY') {
            this.log.warn({ server: this.server.name, waitMs: this.#limits.upstreamWaitMs }, 'no upstream connection came free in time')
            throw this.failure(call, 'pool_timeout', err)
          }
          throw err
        }
        attempt.waiting = undefined
      }
      if (reply.raw.destroyed) {
        // the client left before its request could be sent (its close handlers may have run already)
        permit()
        throw new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED')
      }
      const upstream = new UpstreamRequest(this.#dispatcher, { ...this.#target(exchange), method, headers, body }, permit)
      attempt.upstream = upstream
      let sent: UpstreamResponse
      try {
        sent = await upstream.response()
      } catch (err) {
        // The client went away and its close aborted the upstream request: nobody failed upstream.
        if (upstream.aborted) throw new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED', undefined, { cause: err })
        throw this.unreachable(err, call)
      }
      this.answered(exchange, sent, call)
      const { statusCode } = sent
      if (statusCode >= 500 || statusCode === 401 || statusCode === 407) {
        await sent.dump()
        this.log.warn({ server: this.server.name, statusCode }, 'upstream answered with an error status')
        throw this.failure(call, statusCode >= 500 ? (statusCode === 503 ? 'overloaded' : 'status_5xx') : 'status_401',
          upstreamStatusFailure(statusCode, headerValue(sent.headers, 'retry-after')))
      }
      return sent
    }
    // An open circuit refuses before a connection slot is taken or anything is sent.
    const res = this.#circuit === undefined
      ? await send()
      : await this.#circuit.run(send).catch((err: unknown) => {
        throw isGatewayError(err) && err.code === 'PORTCULLIS_ERR_CIRCUIT_OPEN' ? this.failure(call, 'circuit_open', err) : err
      })
    const { statusCode } = res
    if (statusCode >= 400) {
      if (statusCode === 404 && exchange.sessionId !== undefined) this.sessionGone(exchange)
      await this.#passThrough(exchange, reply, res)
      return undefined
    }
    return res
  }

  #tooManyStreams (): GatewayError {
    return overLimit(this.metrics, this.server.name, 'streams', `at most ${this.#limits.streams.max} open streams per client on this server`)
  }

  /**
   * Relay an SSE answer. Returns once the head is sent: the relay goes on by itself until the
   * response closes (relay.ts), holding no request handler, promise or closure chain meanwhile —
   * an idle GET stream may stay open for hours, and each one costs what it holds.
   */
  #sendSse (exchange: McpExchange, reply: FastifyReply, res: UpstreamResponse, call: UpstreamCall, kind: 'post' | 'get'): void {
    const raw = reply.raw
    const gauge = this.metrics.openStreams
    const labels = this.#streamLabels[kind]
    gauge.inc(labels)
    raw.on('close', () => { gauge.dec(labels) })
    closeWhenStalled(raw, this.#limits.stall, this.#onStall)
    // The relay writes the response itself, event by event (relay.ts); Fastify steps aside.
    reply.hijack()
    raw.writeHead(res.statusCode, {
      ...this.responseHeaders(exchange, res.headers),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    })
    // Node holds the response head until the first body byte; an SSE stream that is quiet at
    // first (a GET stream, a slow tool) must not leave the client waiting for its headers.
    raw.flushHeaders()
    relaySse(raw, res, exchange, (failure) => {
      call.failed('stream_closed')
      this.log.warn({ server: this.server.name, err: failure.cause ?? failure }, 'upstream SSE stream ended before answering')
    })
  }

  async #passThrough (exchange: McpExchange, reply: FastifyReply, res: UpstreamResponse): Promise<void> {
    const bytes = await readBody(res)
    reply.code(res.statusCode).headers(this.responseHeaders(exchange, res.headers)).send(bytes)
  }
}

const EVENT_STREAM = /^text\/event-stream/i
const JSON_TYPE = /^application\/json/i

function isEventStream (contentType: string): boolean {
  return EVENT_STREAM.test(contentType)
}

/** Hold `release` until the client's response closes (at once if it already has). */
export function holdUntilClosed (reply: FastifyReply, release: Release): void {
  if (reply.raw.destroyed) release()
  // `on`, not `once`: a response closes once, and `once` wraps every listener in a closure of its own
  else reply.raw.on('close', release)
}

/** One upstream request of an exchange, as far as the client's close has to know: the wait for a connection, then the request. */
interface Attempt {
  waiting: Waiting | undefined
  upstream: UpstreamRequest | undefined
}

/**
 * How the client's close cancels `attempt`. It outlives the send (it stays in `exchange.cancels`
 * as long as the response is open, hours for a stream), so it is made here, holding these three
 * and not the send's headers, body and request.
 */
function cancelling (attempt: Attempt, call: UpstreamCall, raw: ServerResponse): () => void {
  return () => {
    call.end()
    attempt.waiting?.cancel()
    if (!raw.writableFinished) attempt.upstream?.abort(new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED'))
  }
}

function asIs (payload: unknown): string {
  return payload as string
}

function readBody (res: UpstreamResponse): Promise<Buffer> {
  return res.bytes(MAX_JSON_RESPONSE_BYTES, () => new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', 'response too large'))
}
