import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerConfig } from '../../config/types.ts'
import type { McpExchange } from '../../mcp/exchange.ts'
import type { Principal } from '../../authn/principal.ts'
import { GatewayError } from '../../errors.ts'
import type { SessionTable } from '../session-table.ts'
import type { Upstream } from '../upstream.ts'
import { BridgedSession } from './bridged-session.ts'
import type { Metrics } from '../../telemetry/metrics.ts'
import { UpstreamCall } from '../upstream-call.ts'

export interface BridgeOptions {
  readonly transport: 'stdio' | 'sse'
  readonly maxSessions: number
  readonly idleTimeoutMs: number
  readonly requestTimeoutMs: number
  /** how long opening the upstream channel may take */
  readonly startTimeoutMs: number
  /** a new upstream channel for one client session (not yet started) */
  readonly connect: (principal: Principal | null) => Transport
}

/**
 * An upstream reached through a per-session message channel (stdio child or legacy HTTP+SSE),
 * presented to clients as Streamable HTTP. `initialize` without a session opens a session and
 * its channel; every later request must carry that session's Mcp-Session-Id.
 */
export class BridgeUpstream implements Upstream {
  readonly transport: 'stdio' | 'sse'
  readonly #server: ServerConfig
  readonly #opts: BridgeOptions
  readonly #table: SessionTable
  readonly #log: FastifyBaseLogger
  readonly #metrics: Metrics
  readonly #live = new Map<string, BridgedSession>()
  /** sessions still starting or initializing, counted against maxSessions */
  readonly #all = new Set<BridgedSession>()
  #closing = false

  constructor (server: ServerConfig, opts: BridgeOptions, table: SessionTable, log: FastifyBaseLogger, metrics: Metrics) {
    this.#metrics = metrics
    this.transport = opts.transport
    this.#server = server
    this.#opts = opts
    this.#table = table
    this.#log = log
  }

  async post (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    let session: BridgedSession
    if (exchange.sessionId === undefined) {
      if (!exchange.operations.some((op) => op.method === 'initialize')) {
        throw new GatewayError('PORTCULLIS_ERR_SESSION_REQUIRED')
      }
      session = await this.#open(exchange.principal)
    } else {
      session = this.#find(exchange.sessionId)
    }
    session.accept(exchange, 'POST')
    // The call injects the trace context into the messages' _meta: the only carrier a stdio or
    // legacy SSE upstream has.
    const call = new UpstreamCall(exchange, request, this.#metrics)
    reply.raw.once('close', () => call.end())
    const body = exchange.batch ? exchange.messages.map((m) => m.raw) : exchange.messages[0]?.raw
    await this.#hand(session, request, reply, body, 'post')
    // An initialize the SDK transport refused opened no session: don't keep its channel.
    if (session.sessionId === undefined) await session.close()
  }

  async get (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (exchange.sessionId === undefined) throw new GatewayError('PORTCULLIS_ERR_SESSION_REQUIRED')
    const session = this.#find(exchange.sessionId)
    session.accept(exchange, 'GET')
    await this.#hand(session, request, reply, undefined, 'get')
  }

  async delete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (exchange.sessionId === undefined) throw new GatewayError('PORTCULLIS_ERR_SESSION_REQUIRED')
    const session = this.#find(exchange.sessionId)
    await this.#hand(session, request, reply, undefined, undefined)
    await session.close()
  }

  sessionCount (): number {
    return this.#all.size
  }

  async close (): Promise<void> {
    this.#closing = true
    await Promise.allSettled([...this.#all].map((session) => session.close()))
  }

  async retire (): Promise<void> {
    // No new sessions; the open ones end as they would have (DELETE, idle timeout, process exit).
    this.#closing = true
  }

  #find (sessionId: string): BridgedSession {
    const session = this.#live.get(sessionId)
    if (session === undefined) throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
    return session
  }

  async #open (principal: Principal | null): Promise<BridgedSession> {
    if (this.#closing || this.#all.size >= this.#opts.maxSessions) {
      throw new GatewayError('PORTCULLIS_ERR_TOO_MANY_SESSIONS', undefined, { headers: { 'retry-after': '5' } })
    }
    const server = this.#server.name
    const session: BridgedSession = new BridgedSession(this.#opts.connect(principal), {
      server,
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      idleTimeoutMs: this.#opts.idleTimeoutMs,
      log: this.#log,
      onAnswered: (method, seconds) => this.#metrics.upstreamSeries.get(server, method).observe(seconds),
      onFailure: (reason) => this.#metrics.upstreamErrors.inc({ server, reason }),
      onOpen: (sessionId) => {
        this.#live.set(sessionId, session)
        this.#table.open(sessionId, { server, principalKey: principal?.key ?? 'anonymous', protocolVersion: undefined })
      },
      onClose: (sessionId) => {
        this.#all.delete(session)
        if (sessionId !== undefined) {
          this.#live.delete(sessionId)
          this.#table.close(server, sessionId)
        }
      },
    })
    this.#all.add(session)
    try {
      await withTimeout(session.start(), this.#opts.startTimeoutMs)
    } catch (err) {
      await session.close()
      this.#metrics.upstreamErrors.inc({ server, reason: 'start_failed' })
      this.#log.warn({ server, err }, 'could not open the upstream channel')
      throw err instanceof GatewayError ? err : new GatewayError('PORTCULLIS_ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: err })
    }
    return session
  }

  /** The SDK transport writes the HTTP response itself (SSE for POST and GET); Fastify steps aside. */
  async #hand (session: BridgedSession, request: FastifyRequest, reply: FastifyReply, body: unknown, stream: 'post' | 'get' | undefined): Promise<void> {
    if (stream !== undefined) {
      const streams = this.#metrics.openStreams.labels({ server: this.#server.name, kind: stream })
      streams.inc()
      reply.raw.once('close', () => streams.dec())
    }
    reply.hijack()
    await session.downstream.handleRequest(request.raw, reply.raw, body)
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new GatewayError('PORTCULLIS_ERR_UPSTREAM_TIMEOUT')), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
