import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerConfig } from '../../config/types.ts'
import type { McpExchange } from '../../mcp/exchange.ts'
import { ANONYMOUS, type Principal } from '../../authn/principal.ts'
import { GatewayError } from '../../errors.ts'
import { principalBinding } from '../../session/sealed-session-id.ts'
import type { Sessions } from '../../session/sessions.ts'
import type { Upstream } from '../upstream.ts'
import { BridgedSession } from './bridged-session.ts'
import { loadSdk, type Sdk } from './sdk.ts'
import { PeerForwarder } from './peer-forwarder.ts'
import type { Metrics } from '../../telemetry/metrics.ts'
import { UpstreamCall } from '../upstream-call.ts'
import { UpstreamCircuit } from '../circuit.ts'
import { closeWhenStalled } from '../stall.ts'
import { upstreamHealth } from '../health.ts'
import { streamKey, type UpstreamLimits } from '../upstream-limits.ts'
import { holdUntilClosed } from '../http-forwarder.ts'
import { ConcurrencyLimiter } from '../../limits/concurrency-limiter.ts'
import { limitKey } from '../../limits/limit-key.ts'
import { overLimit } from '../../limits/over-limit.ts'

export interface BridgeOptions {
  readonly transport: 'stdio' | 'sse'
  readonly maxSessions: number
  /** of which one principal may hold this many (on this replica) */
  readonly maxSessionsPerPrincipal: number
  readonly idleTimeoutMs: number
  readonly requestTimeoutMs: number
  /** how long opening the upstream channel may take */
  readonly startTimeoutMs: number
  /** a new upstream channel for one client session (not yet started) */
  readonly connect: (sdk: Sdk, principal: Principal | null) => Transport
  /** release what the channels shared (an HTTP agent), once no session is left */
  readonly dispose?: () => Promise<void>
}

/**
 * An upstream reached through a per-session message channel (stdio child or legacy HTTP+SSE),
 * presented to clients as Streamable HTTP. `initialize` without a session opens a session and
 * its channel on this replica; every later request must carry that session's Mcp-Session-Id,
 * a sealed id naming this replica as the owner. A request for a session another replica owns is
 * forwarded there (peer-forwarder.ts); the owner serves its peers' requests through `servePeer`.
 *
 * Limits: at most maxSessions sessions (503), of which maxSessionsPerPrincipal for one principal
 * (429); an SSE answer counts against the principal's open streams of the server until it closes
 * (429 beyond limits.maxStreamsPerPrincipal), at the replica the client talks to (a forwarded
 * request is counted by the peer forwarder, not again by the owner).
 */
export class BridgeUpstream implements Upstream {
  readonly transport: 'stdio' | 'sse'
  readonly #server: ServerConfig
  readonly #opts: BridgeOptions
  readonly #sessions: Sessions
  readonly #peers: PeerForwarder
  readonly #log: FastifyBaseLogger
  readonly #metrics: Metrics
  readonly #limits: UpstreamLimits
  /** sessions by principal (limitKey) */
  readonly #perPrincipal: ConcurrencyLimiter
  readonly #circuit: UpstreamCircuit
  readonly #live = new Map<string, BridgedSession>()
  /** sessions still starting or initializing, counted against maxSessions */
  readonly #all = new Set<BridgedSession>()
  #closing = false
  #disposed: Promise<void> | undefined

  constructor (server: ServerConfig, opts: BridgeOptions, sessions: Sessions, peerAgent: Dispatcher, limits: UpstreamLimits,
    log: FastifyBaseLogger, metrics: Metrics) {
    this.#metrics = metrics
    this.#limits = limits
    this.#perPrincipal = new ConcurrencyLimiter(opts.maxSessionsPerPrincipal)
    loadSdk().catch((err: unknown) => { log.error({ err }, 'the MCP SDK could not be loaded: bridged sessions will fail') })
    this.#circuit = new UpstreamCircuit(server, metrics, log)
    this.transport = opts.transport
    this.#server = server
    this.#opts = opts
    this.#sessions = sessions
    this.#peers = new PeerForwarder(server, peerAgent, sessions.peerAuth, limits, log, metrics)
    this.#log = log
  }

  async post (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    let session: BridgedSession
    if (exchange.sessionId === undefined) {
      if (!exchange.operations.some((op) => op.method === 'initialize')) {
        throw new GatewayError('PORTCULLIS_ERR_SESSION_REQUIRED')
      }
      this.#holdStream(exchange, request, reply)
      session = await this.#open(exchange, request)
    } else {
      const local = this.#live.get(exchange.sessionId)
      if (local === undefined) return await this.#forward(exchange, request, reply)
      this.#holdStream(exchange, request, reply)
      session = local
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
    const session = this.#live.get(exchange.sessionId)
    if (session === undefined) return await this.#forward(exchange, request, reply)
    this.#holdStream(exchange, request, reply)
    session.accept(exchange, 'GET')
    await this.#hand(session, request, reply, undefined, 'get')
  }

  async delete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (exchange.sessionId === undefined) throw new GatewayError('PORTCULLIS_ERR_SESSION_REQUIRED')
    const session = this.#live.get(exchange.sessionId)
    if (session === undefined) return await this.#forward(exchange, request, reply)
    await this.#hand(session, request, reply, undefined, undefined)
    await this.#end(session)
  }

  /**
   * A peer's request for a session of this replica, already authenticated and judged by the
   * peer (listener/peer-routes.ts checked the peer's signature). Answered by the session's own
   * transport; the peer relays the answer to its client. A session this replica no longer has → 404.
   */
  async servePeer (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = exchange.sessionId === undefined ? undefined : this.#live.get(exchange.sessionId)
    if (session === undefined) throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
    if (request.method === 'DELETE') {
      await this.#hand(session, request, reply, undefined, undefined)
      await this.#end(session)
      return
    }
    session.accept(exchange, request.method === 'GET' ? 'GET' : 'POST')
    const body = request.method !== 'POST' ? undefined : exchange.batch ? exchange.messages.map((m) => m.raw) : exchange.messages[0]?.raw
    // the peer stops reading when its client does: the same bound here, not counted twice
    closeWhenStalled(reply.raw, this.#limits.stall, () => {})
    await this.#hand(session, request, reply, body, undefined)
  }

  sessionCount (): number {
    return this.#all.size
  }

  async close (): Promise<void> {
    this.#closing = true
    await Promise.allSettled([...this.#all].map((session) => session.close()))
    await this.#dispose()
  }

  async retire (): Promise<void> {
    // No new sessions; the open ones end as they would have (DELETE, idle timeout, process exit).
    this.#closing = true
    if (this.#all.size === 0) await this.#dispose()
  }

  #dispose (): Promise<void> {
    this.#disposed ??= this.#opts.dispose?.() ?? Promise.resolve()
    return this.#disposed
  }

  /** A GET, or a POST with requests, is answered with an SSE stream: it counts until it closes. */
  #holdStream (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): void {
    if (request.method === 'POST' && !exchange.messages.some((m) => m.kind === 'request')) return
    const release = this.#limits.streams.acquire(streamKey(this.#server.name, limitKey(exchange, request)))
    if (release === undefined) {
      throw overLimit(this.#metrics, this.#server.name, 'streams', `at most ${this.#limits.streams.max} open streams per client on this server`)
    }
    holdUntilClosed(reply, release)
  }

  /** DELETE: the session ends here, and every replica refuses its id from now on. */
  async #end (session: BridgedSession): Promise<void> {
    if (session.sessionId !== undefined) this.#sessions.end(session.sessionId)
    await session.close()
  }

  /** Not a session of this replica: another replica owns it, or it is gone. */
  async #forward (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const owner = exchange.session?.owner
    if (owner === undefined || owner === this.#sessions.self) throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
    await this.#peers.forward(exchange, request, reply)
  }

  async #open (exchange: McpExchange, request: FastifyRequest): Promise<BridgedSession> {
    // Loaded since this upstream was built (sdk.ts); from here to the session's start nothing
    // awaits, so the session caps below are checked and taken in one step.
    const sdk = await loadSdk()
    const server = this.#server.name
    // One principal's sessions must not take everyone's: its own cap first (429), then the server's (503).
    const release = this.#perPrincipal.acquire(limitKey(exchange, request))
    if (release === undefined) {
      throw overLimit(this.#metrics, server, `${this.transport}_sessions`, `at most ${this.#perPrincipal.max} sessions per client on this server`)
    }
    if (this.#closing || this.#all.size >= this.#opts.maxSessions) {
      release()
      throw new GatewayError('PORTCULLIS_ERR_TOO_MANY_SESSIONS', undefined, { headers: { 'retry-after': '5' } })
    }
    const principal = exchange.principal
    const owner = this.#sessions.self
    let channel: Transport
    try {
      channel = this.#opts.connect(sdk, principal)
    } catch (err) {
      release()
      throw err
    }
    const session: BridgedSession = new BridgedSession(sdk, channel, {
      server,
      sessionId: () => this.#sessions.sealer.seal({ server, principal: principalBinding(principal ?? ANONYMOUS), upstream: undefined, owner }),
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      idleTimeoutMs: this.#opts.idleTimeoutMs,
      log: this.#log,
      onAnswered: (method, seconds) => {
        this.#metrics.upstreamSeries.get(server, method).observe(seconds)
        upstreamHealth(this.#metrics).answered(server)
      },
      onFailure: (reason) => {
        this.#metrics.upstreamErrors.inc({ server, reason })
        upstreamHealth(this.#metrics).failed(server, reason)
      },
      onOpen: (sessionId) => { this.#live.set(sessionId, session) },
      onClose: (sessionId) => {
        release()
        this.#all.delete(session)
        if (sessionId !== undefined) this.#live.delete(sessionId)
        if (this.#closing && this.#all.size === 0) this.#dispose().catch(() => {})
      },
    })
    this.#all.add(session)
    try {
      // Starting a process or a legacy SSE connection is what fails when the upstream is down:
      // after a run of failures the circuit answers at once instead of spawning again.
      await this.#circuit.run(async () => { await withTimeout(session.start(), this.#opts.startTimeoutMs) })
    } catch (err) {
      await session.close()
      if (err instanceof GatewayError && err.code === 'PORTCULLIS_ERR_CIRCUIT_OPEN') {
        this.#metrics.upstreamErrors.inc({ server, reason: 'circuit_open' })
        throw err
      }
      this.#metrics.upstreamErrors.inc({ server, reason: 'start_failed' })
      upstreamHealth(this.#metrics).failed(server, 'start_failed')
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
      closeWhenStalled(reply.raw, this.#limits.stall, () => { this.#metrics.streamsStalled.inc({ server: this.#server.name }) })
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
