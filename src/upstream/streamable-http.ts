import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { ServerConfig, StreamableHttpUpstream as StreamableHttpUpstreamConfig } from '../config/types.ts'
import type { McpExchange } from '../mcp/exchange.ts'
import type { GatewayError } from '../errors.ts'
import { principalBinding } from '../session/sealed-session-id.ts'
import type { Sessions } from '../session/sessions.ts'
import { buildUpstreamRequestHeaders, pickResponseHeaders } from './headers.ts'
import { upstreamFailure } from './errors.ts'
import type { SessionTable } from './session-table.ts'
import type { Upstream } from './upstream.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { UpstreamCall } from './upstream-call.ts'
import { HttpForwarder } from './http-forwarder.ts'
import { UpstreamCircuit } from './circuit.ts'
import { ConnectionGate } from './connection-gate.ts'
import { RecyclingPool } from './recycling-pool.ts'
import type { UpstreamLimits } from './upstream-limits.ts'

/**
 * A Streamable HTTP upstream: each client request becomes one upstream request on a keep-alive
 * pool (undici), its body the re-serialised parsed message, its response streamed back.
 *
 * Sessions: the upstream's Mcp-Session-Id never reaches the client. The client gets a sealed id
 * that carries it (with the principal binding), and every replica unseals it on the way back, so
 * the upstream sees only its own id and any replica can serve the session.
 */
export class StreamableHttpUpstream extends HttpForwarder implements Upstream {
  readonly transport = 'streamable-http'
  readonly #config: StreamableHttpUpstreamConfig
  readonly #pool: RecyclingPool
  readonly #sessions: SessionTable
  readonly #shared: Sessions

  constructor (server: ServerConfig, config: StreamableHttpUpstreamConfig, sessions: SessionTable, shared: Sessions, limits: UpstreamLimits,
    log: FastifyBaseLogger, metrics: Metrics) {
    const url = new URL(config.url)
    const path = `${url.pathname}${url.search}`
    // Each open SSE stream holds one upstream connection: the pool must be sized for streams,
    // or stream N+1 waits forever behind the first N (design.md §9; undici defaults to no cap,
    // reply-from to 128). A burst of streams leaves as many Clients behind: recycling-pool.ts.
    const pool = new RecyclingPool(url.origin, {
      connections: config.maxConnections,
      pipelining: 1,
      connect: { timeout: config.connectTimeoutMs, rejectUnauthorized: config.tlsVerify },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      keepAliveTimeout: 4_000,
    })
    const target = { path }
    // The pool's connections, counted by us, so a request waits for one at most limits.upstreamWaitMs.
    const gate = new ConnectionGate(config.maxConnections)
    super(server, pool, () => target, () => gate, limits, log, metrics, new UpstreamCircuit(server, metrics, log))
    this.#config = config
    this.#pool = pool
    this.#sessions = sessions
    this.#shared = shared
  }

  async post (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await this.forwardPost(exchange, request, reply)
  }

  async get (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await this.forwardGet(exchange, request, reply)
  }

  async delete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const status = await this.forwardDelete(exchange, request, reply)
    if (exchange.sessionId !== undefined && (status < 300 || status === 404)) {
      this.#sessions.close(exchange.sessionId)
      this.#shared.end(exchange.sessionId)
    }
  }

  sessionCount (): number {
    return this.#sessions.count(this.server.name)
  }

  async close (): Promise<void> {
    await this.#pool.destroy()
  }

  async retire (): Promise<void> {
    // undici's close() waits for the requests in flight (open streams included) to finish.
    await this.#pool.close()
  }

  protected requestHeaders (exchange: McpExchange, request: FastifyRequest, call: UpstreamCall): Record<string, string> {
    const headers = buildUpstreamRequestHeaders(request.headers, this.#config.headers, exchange.principal, call.traceFields)
    const upstreamId = exchange.session?.upstream
    if (upstreamId !== undefined) headers['mcp-session-id'] = upstreamId
    return headers
  }

  /** The upstream's session id goes back to the client sealed (the same sealed id the client sent, once it has one). */
  protected override responseHeaders (exchange: McpExchange, headers: IncomingHttpHeaders): Record<string, string> {
    const out = pickResponseHeaders(headers)
    const upstreamId = out['mcp-session-id']
    if (upstreamId === undefined) return out
    if (exchange.sessionId !== undefined && exchange.session?.upstream === upstreamId) {
      out['mcp-session-id'] = exchange.sessionId
      return out
    }
    const sealed = this.#shared.sealer.seal({
      server: this.server.name,
      principal: principalBinding(exchange.principal ?? { key: 'anonymous' }),
      upstream: upstreamId,
      owner: undefined,
    })
    if (exchange.operations.some((op) => op.method === 'initialize')) this.#sessions.open(this.server.name, sealed)
    out['mcp-session-id'] = sealed
    return out
  }

  protected unreachable (err: unknown, call: UpstreamCall): GatewayError {
    const failure = upstreamFailure(err)
    return this.failure(call, failure.code === 'PORTCULLIS_ERR_UPSTREAM_TIMEOUT' ? 'timeout' : failure.code === 'PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE' ? 'bad_response' : 'refused', failure)
  }

  protected override answered (exchange: McpExchange, _res: unknown, call: UpstreamCall): void {
    call.answered()
    if (exchange.sessionId !== undefined) this.#sessions.touch(exchange.sessionId)
  }

  /** The upstream ended the session: every replica refuses its id from now on, without asking the upstream again. */
  protected override sessionGone (exchange: McpExchange): void {
    if (exchange.sessionId === undefined) return
    this.#sessions.close(exchange.sessionId)
    this.#shared.end(exchange.sessionId)
  }
}
