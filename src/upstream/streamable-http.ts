import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { Pool } from 'undici'
import type { ServerConfig, StreamableHttpUpstream as StreamableHttpUpstreamConfig } from '../config/types.ts'
import type { McpExchange } from '../mcp/exchange.ts'
import { GatewayError } from '../errors.ts'
import { buildUpstreamRequestHeaders, headerValue, pickResponseHeaders } from './headers.ts'
import { relayJson, relaySse } from './relay.ts'
import { upstreamFailure, upstreamStatusFailure } from './errors.ts'
import type { SessionTable } from './session-table.ts'
import type { Upstream } from './upstream.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { UpstreamCall, type UpstreamErrorReason } from './upstream-call.ts'
import type { GatewayError as GatewayErrorType } from '../errors.ts'
import { UpstreamRequest, type UpstreamResponse } from './dispatch.ts'

/** Largest complete JSON response read from an upstream (SSE responses are streamed, not capped). */
const MAX_JSON_RESPONSE_BYTES = 32 * 1024 * 1024

/**
 * A Streamable HTTP upstream: each client request becomes one upstream request on a keep-alive
 * pool (undici), its body the re-serialised parsed message, its response streamed back.
 */
export class StreamableHttpUpstream implements Upstream {
  readonly transport = 'streamable-http'
  readonly #server: ServerConfig
  readonly #config: StreamableHttpUpstreamConfig
  readonly #pool: Pool
  readonly #path: string
  readonly #sessions: SessionTable
  readonly #log: FastifyBaseLogger
  readonly #metrics: Metrics

  constructor (server: ServerConfig, config: StreamableHttpUpstreamConfig, sessions: SessionTable, log: FastifyBaseLogger, metrics: Metrics) {
    this.#server = server
    this.#metrics = metrics
    this.#config = config
    this.#sessions = sessions
    this.#log = log
    const url = new URL(config.url)
    this.#path = `${url.pathname}${url.search}`
    // Each open SSE stream holds one upstream connection: the pool must be sized for streams,
    // or stream N+1 waits forever behind the first N (design.md §9; undici defaults to no cap,
    // reply-from to 128).
    this.#pool = new Pool(url.origin, {
      connections: config.maxConnections,
      pipelining: 1,
      connect: { timeout: config.connectTimeoutMs, rejectUnauthorized: config.tlsVerify },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      keepAliveTimeout: 4_000,
    })
  }

  async post (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // The call injects the trace context into the messages, so it comes before serialising them.
    const call = new UpstreamCall(exchange, request, this.#metrics)
    const body = JSON.stringify(exchange.batch ? exchange.messages.map((m) => m.raw) : exchange.messages[0]?.raw)
    const res = await this.#request('POST', exchange, request, reply, body, call)
    if (res === undefined) return
    const contentType = headerValue(res.headers, 'content-type') ?? ''
    this.#rememberSession(exchange, res)

    if (res.statusCode === 202 || res.statusCode === 204) {
      await res.dump()
      reply.code(res.statusCode).headers(pickResponseHeaders(res.headers)).send()
      return
    }
    if (isEventStream(contentType)) {
      await this.#sendSse(exchange, reply, res, call, 'post')
      return
    }
    if (!JSON_TYPE.test(contentType)) {
      await res.dump()
      throw this.#failure(call, 'bad_response', new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', `unexpected content type ${JSON.stringify(contentType.slice(0, 64))}`))
    }
    const bytes = await readBody(res).catch((err: unknown) => { throw this.#failure(call, 'bad_response', upstreamFailure(err)) })
    const out = relayJson(bytes, exchange)
    if (out === undefined) throw this.#failure(call, 'bad_response', new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', 'response is not JSON'))
    // Not awaited: a Reply is a thenable that settles when the response has finished, which
    // costs a listener and a promise per request and tells this handler nothing it needs.
    // The text goes out as it is: for a string payload Fastify would otherwise append
    // `; charset=utf-8` to the upstream's JSON content type (the client must see the upstream's).
    reply.code(res.statusCode).headers(pickResponseHeaders(res.headers)).serializer(asIs).send(out)
  }

  async get (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const call = new UpstreamCall(exchange, request, this.#metrics)
    const res = await this.#request('GET', exchange, request, reply, undefined, call)
    if (res === undefined) return
    if (isEventStream(headerValue(res.headers, 'content-type') ?? '')) {
      await this.#sendSse(exchange, reply, res, call, 'get')
      return
    }
    await this.#passThrough(reply, res)
  }

  async delete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const res = await this.#request('DELETE', exchange, request, reply, undefined, new UpstreamCall(exchange, request, this.#metrics))
    if (res === undefined) return
    if (exchange.sessionId !== undefined && (res.statusCode < 300 || res.statusCode === 404)) {
      this.#sessions.close(this.#server.name, exchange.sessionId)
    }
    await this.#passThrough(reply, res)
  }

  sessionCount (): number {
    return this.#sessions.count(this.#server.name)
  }

  async close (): Promise<void> {
    await this.#pool.destroy()
  }

  async retire (): Promise<void> {
    // undici's close() waits for the requests in flight (open streams included) to finish.
    await this.#pool.close()
  }

  /**
   * Send the request upstream. Statuses the client must not see are turned into gateway
   * errors here; 4xx statuses (400 bodies carry era detection, 404 a dead session, 405 no GET
   * stream) are answered unchanged and `undefined` is returned.
   */
  async #request (method: 'POST' | 'GET' | 'DELETE', exchange: McpExchange, request: FastifyRequest, reply: FastifyReply,
    body: string | undefined, call: UpstreamCall): Promise<UpstreamResponse | undefined> {
    const headers = buildUpstreamRequestHeaders(request.headers, this.#config.headers, exchange.principal, call.traceFields)
    if (body !== undefined) headers['content-type'] = 'application/json'
    const upstream = new UpstreamRequest(this.#pool, { path: this.#path, method, headers, body })
    // A client that goes away cancels its upstream request (2026-07-28: closing the stream is
    // cancellation; before it, plain resource hygiene).
    exchange.onClose.push(() => {
      call.end()
      if (!reply.raw.writableFinished) upstream.abort(new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED'))
    })

    let res: UpstreamResponse
    try {
      res = await upstream.response()
    } catch (err) {
      // The client went away and its close aborted the upstream request: nobody failed upstream.
      if (upstream.aborted) throw new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED', undefined, { cause: err })
      const failure = upstreamFailure(err)
      throw this.#failure(call, failure.code === 'PORTCULLIS_ERR_UPSTREAM_TIMEOUT' ? 'timeout' : failure.code === 'PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE' ? 'bad_response' : 'refused', failure)
    }
    call.answered()
    const { statusCode } = res
    if (statusCode >= 500 || statusCode === 401 || statusCode === 407) {
      await res.dump()
      this.#log.warn({ server: this.#server.name, statusCode }, 'upstream answered with an error status')
      throw this.#failure(call, statusCode >= 500 ? (statusCode === 503 ? 'overloaded' : 'status_5xx') : 'status_401',
        upstreamStatusFailure(statusCode, headerValue(res.headers, 'retry-after')))
    }
    if (statusCode >= 400) {
      if (statusCode === 404 && exchange.sessionId !== undefined) this.#sessions.close(this.#server.name, exchange.sessionId)
      await this.#passThrough(reply, res)
      return undefined
    }
    return res
  }

  #failure (call: UpstreamCall, reason: UpstreamErrorReason, failure: GatewayErrorType): GatewayErrorType {
    call.failed(reason)
    return failure
  }

  async #sendSse (exchange: McpExchange, reply: FastifyReply, res: UpstreamResponse, call: UpstreamCall, kind: 'post' | 'get'): Promise<void> {
    const raw = reply.raw
    const streams = this.#metrics.openStreams.labels({ server: this.#server.name, kind })
    streams.inc()
    raw.once('close', () => streams.dec())
    // The relay writes the response itself, event by event (relay.ts); Fastify steps aside.
    reply.hijack()
    raw.writeHead(res.statusCode, {
      ...pickResponseHeaders(res.headers),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    })
    // Node holds the response head until the first body byte; an SSE stream that is quiet at
    // first (a GET stream, a slow tool) must not leave the client waiting for its headers.
    raw.flushHeaders()
    await relaySse(raw, res, exchange, (reason) => res.abort(reason), (failure) => {
      call.failed('stream_closed')
      this.#log.warn({ server: this.#server.name, err: failure.cause ?? failure }, 'upstream SSE stream ended before answering')
    })
  }

  async #passThrough (reply: FastifyReply, res: UpstreamResponse): Promise<void> {
    const bytes = await readBody(res)
    reply.code(res.statusCode).headers(pickResponseHeaders(res.headers)).send(bytes)
  }

  /** The upstream minted a session on initialize: bind it to the principal that opened it. */
  #rememberSession (exchange: McpExchange, res: UpstreamResponse): void {
    const sessionId = headerValue(res.headers, 'mcp-session-id')
    if (sessionId === undefined || sessionId === exchange.sessionId) return
    if (!exchange.operations.some((op) => op.method === 'initialize')) return
    this.#sessions.open(sessionId, {
      server: this.#server.name,
      principalKey: exchange.principal?.key ?? 'anonymous',
      protocolVersion: undefined,
    })
  }
}

const EVENT_STREAM = /^text\/event-stream/i
const JSON_TYPE = /^application\/json/i

function isEventStream (contentType: string): boolean {
  return EVENT_STREAM.test(contentType)
}

function asIs (payload: unknown): string {
  return payload as string
}

function readBody (res: UpstreamResponse): Promise<Buffer> {
  return res.bytes(MAX_JSON_RESPONSE_BYTES, () => new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', 'response too large'))
}
