import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import type { FastifyBaseLogger } from 'fastify'
import type { McpExchange } from '../../mcp/exchange.ts'
import { GatewayError } from '../../errors.ts'
import { jsonRpcError } from '../../jsonrpc/errors.ts'
import { methodLabel, type MethodLabel } from '../../jsonrpc/method-label.ts'
import { observeUpstreamMessage } from '../relay.ts'
import { queuedForWrite } from '../stall.ts'
import { BoundedEventStore } from './event-store.ts'
import type { Sdk } from './sdk.ts'

type RequestId = string | number

interface InFlight {
  readonly exchange: McpExchange
  readonly timer: NodeJS.Timeout
  /** the request's method as the bounded `method` label */
  readonly method: MethodLabel
  readonly started: number
}

export interface BridgedSessionOptions {
  readonly server: string
  /** the (sealed) session id, made when the upstream's initialize is accepted */
  readonly sessionId: () => string
  readonly requestTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly log: FastifyBaseLogger
  /** called once the downstream session id exists (on the initialize response) */
  readonly onOpen: (sessionId: string) => void
  /** called exactly once, whatever ended the session */
  readonly onClose: (sessionId: string | undefined) => void
  /** a request was answered by the upstream, after `seconds` */
  readonly onAnswered: (method: MethodLabel, seconds: number) => void
  /** the upstream failed a request or the whole session */
  readonly onFailure: (reason: 'timeout' | 'process_exited' | 'refused') => void
}

/**
 * One client session of a bridged upstream: the client side speaks Streamable HTTP (the SDK's
 * server transport, with a bounded event log for Last-Event-ID resumption); the upstream side
 * is one message channel of its own — a child process on stdio, or a legacy HTTP+SSE
 * connection — opened for this session alone and closed with it.
 */
export class BridgedSession {
  readonly downstream: StreamableHTTPServerTransport
  readonly #upstream: Transport
  readonly #opts: BridgedSessionOptions
  readonly #inFlight = new Map<RequestId, InFlight>()
  readonly #progress = new Map<string | number, RequestId>()
  /** each message's JSON size, measured once in #deliver for the stall bound and the event log */
  readonly #sizes = new WeakMap<JSONRPCMessage, number>()
  #streamExchange: McpExchange | undefined
  #idle: NodeJS.Timeout | undefined
  #closed = false

  /** `sdk`: the SDK, loaded (sdk.ts) */
  constructor (sdk: Sdk, upstream: Transport, opts: BridgedSessionOptions) {
    this.#upstream = upstream
    this.#opts = opts
    this.downstream = new sdk.StreamableHTTPServerTransport({
      sessionIdGenerator: opts.sessionId,
      eventStore: new BoundedEventStore({ sizeOf: (message) => this.#sizeOf(message) }),
      onsessioninitialized: (sessionId) => opts.onOpen(sessionId),
    })
    this.downstream.onmessage = (message) => this.#toUpstream(message)
    upstream.onmessage = (message) => this.#toClient(message)
    upstream.onclose = () => this.#upstreamGone(new GatewayError('PORTCULLIS_ERR_UPSTREAM_EXITED'))
    upstream.onerror = (err) => opts.log.warn({ server: opts.server, err }, 'upstream channel error')
    this.touch()
  }

  get sessionId (): string | undefined {
    return this.downstream.sessionId
  }

  async start (): Promise<void> {
    await this.#upstream.start()
    await this.downstream.start()
  }

  /** The exchange about to be handed to the downstream transport: its requests are tracked. */
  accept (exchange: McpExchange, method: 'POST' | 'GET' | 'DELETE'): void {
    this.touch()
    if (method === 'GET') this.#streamExchange = exchange
    for (const message of exchange.messages) {
      if (message.kind !== 'request') continue
      const timer = setTimeout(() => this.#timedOut(message.id), this.#opts.requestTimeoutMs)
      timer.unref()
      this.#inFlight.set(message.id, { exchange, timer, method: methodLabel(message.method), started: performance.now() })
      const token = progressTokenOf(message.params)
      if (token !== undefined) this.#progress.set(token, message.id)
    }
  }

  touch (): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle)
    this.#idle = setTimeout(() => {
      this.#opts.log.info({ server: this.#opts.server }, 'closing idle bridged session')
      void this.close()
    }, this.#opts.idleTimeoutMs)
    this.#idle.unref()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#idle !== undefined) clearTimeout(this.#idle)
    for (const { timer } of this.#inFlight.values()) clearTimeout(timer)
    this.#inFlight.clear()
    this.#opts.onClose(this.sessionId)
    await Promise.allSettled([this.downstream.close(), this.#upstream.close()])
  }

  #toUpstream (message: JSONRPCMessage): void {
    this.#upstream.send(message).catch((err: unknown) => {
      this.#opts.log.warn({ server: this.#opts.server, err }, 'could not send to upstream')
      this.#opts.onFailure('refused')
      const id = requestIdOf(message)
      if (id !== undefined) this.#answer(id, new GatewayError('PORTCULLIS_ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: err }))
    })
  }

  #toClient (message: JSONRPCMessage): void {
    this.touch()
    const responseTo = responseIdOf(message)
    if (responseTo !== undefined) {
      const inFlight = this.#inFlight.get(responseTo)
      if (inFlight === undefined) return // answered already (timed out), or never asked: drop
      this.#opts.onAnswered(inFlight.method, (performance.now() - inFlight.started) / 1000)
      this.#settle(responseTo)
      const rewritten = observeUpstreamMessage(inFlight.exchange, message)
      this.#deliver((rewritten ?? message) as JSONRPCMessage, undefined, inFlight.exchange)
      return
    }
    // Progress belongs to the request that asked for it; other notifications and server→client
    // requests belong to the one request in flight when there is exactly one, else to the
    // session's GET stream (a stdio or legacy SSE upstream does not say which request they serve).
    const related = this.#relatedRequest(message)
    const exchange = related === undefined ? this.#streamExchange : this.#inFlight.get(related)?.exchange
    const rewritten = exchange === undefined ? undefined : observeUpstreamMessage(exchange, message)
    this.#deliver((rewritten ?? message) as JSONRPCMessage, related, exchange)
  }

  #relatedRequest (message: JSONRPCMessage): RequestId | undefined {
    if ('method' in message && message.method === 'notifications/progress') {
      const token = progressTokenOf(message.params)
      return token === undefined ? undefined : this.#progress.get(token)
    }
    if (this.#inFlight.size === 1) return this.#inFlight.keys().next().value
    return undefined
  }

  /**
   * Hand `message` to the downstream transport, for the response of `exchange` (the request's
   * POST, or the GET stream). The transport queues it in front of that response whether or not
   * the client reads: counted there, so a client that stops reading loses its stream past the
   * bound instead of the replica its memory (stall.ts).
   */
  #deliver (message: JSONRPCMessage, relatedRequestId: RequestId | undefined, exchange: McpExchange | undefined): void {
    if (exchange !== undefined && !exchange.res.destroyed) queuedForWrite(exchange.res, this.#sizeOf(message))
    this.downstream.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId }).catch((err: unknown) => {
      this.#opts.log.debug({ server: this.#opts.server, err }, 'message for a closed client stream dropped')
    })
  }

  #sizeOf (message: JSONRPCMessage): number {
    let size = this.#sizes.get(message)
    if (size === undefined) {
      size = JSON.stringify(message).length
      this.#sizes.set(message, size)
    }
    return size
  }

  #settle (id: RequestId): void {
    const inFlight = this.#inFlight.get(id)
    if (inFlight === undefined) return
    clearTimeout(inFlight.timer)
    this.#inFlight.delete(id)
    inFlight.exchange.pending.delete(id)
    for (const [token, requestId] of this.#progress) if (requestId === id) this.#progress.delete(token)
  }

  /** Answer a request on the upstream's behalf with a JSON-RPC error. */
  #answer (id: RequestId, err: GatewayError): void {
    if (!this.#inFlight.has(id)) return
    this.#settle(id)
    this.#deliver(jsonRpcError(id, err.rpcCode, err.publicMessage) as JSONRPCMessage, undefined, undefined)
  }

  #timedOut (id: RequestId): void {
    this.#opts.log.warn({ server: this.#opts.server }, 'upstream request timed out')
    this.#opts.onFailure('timeout')
    this.#answer(id, new GatewayError('PORTCULLIS_ERR_UPSTREAM_TIMEOUT'))
    // Tell the upstream to stop working on it (MCP cancellation utility).
    void this.#upstream.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'gateway timeout' } })
      .catch(() => {})
  }

  /** The child exited or the legacy SSE connection dropped: answer everything, end the session. */
  #upstreamGone (err: GatewayError): void {
    if (this.#closed) return
    this.#opts.log.warn({ server: this.#opts.server, sessionId: this.sessionId }, 'upstream channel closed')
    if (this.#inFlight.size > 0) this.#opts.onFailure('process_exited')
    for (const id of [...this.#inFlight.keys()]) this.#answer(id, err)
    // Let the error events flush before the client streams are closed.
    setImmediate(() => { void this.close() })
  }
}

function progressTokenOf (params: unknown): string | number | undefined {
  if (typeof params !== 'object' || params === null) return undefined
  const direct = (params as { progressToken?: unknown }).progressToken
  if (typeof direct === 'string' || typeof direct === 'number') return direct
  const meta = (params as { _meta?: unknown })._meta
  if (typeof meta !== 'object' || meta === null) return undefined
  const token = (meta as { progressToken?: unknown }).progressToken
  return typeof token === 'string' || typeof token === 'number' ? token : undefined
}

function requestIdOf (message: JSONRPCMessage): RequestId | undefined {
  return 'method' in message && 'id' in message ? message.id : undefined
}

function responseIdOf (message: JSONRPCMessage): RequestId | undefined {
  if ('method' in message || !('id' in message)) return undefined
  return ('result' in message || 'error' in message) ? (message.id as RequestId) : undefined
}
