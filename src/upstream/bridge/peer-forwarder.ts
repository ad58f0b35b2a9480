import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { ServerConfig } from '../../config/types.ts'
import type { McpExchange } from '../../mcp/exchange.ts'
import { GatewayError } from '../../errors.ts'
import { PEER_HEADER, type PeerAuth } from '../../session/peer-auth.ts'
import type { Metrics } from '../../telemetry/metrics.ts'
import { HttpForwarder } from '../http-forwarder.ts'
import { upstreamFailure } from '../errors.ts'
import type { UpstreamCall } from '../upstream-call.ts'
import type { UpstreamLimits } from '../upstream-limits.ts'

/** The path on a replica's client listener where its peers hand it requests for its bridged sessions. */
export const PEER_PATH_PREFIX = '/_portcullis/peer/'

/** Client headers the owner's session transport reads; nothing else of the client's crosses. */
const PASSED = ['accept', 'mcp-protocol-version', 'last-event-id'] as const

/**
 * A bridged session (stdio child, legacy SSE connection) lives on the replica that opened it; a
 * request for it that reached another replica is forwarded there (design §7), after this replica
 * authenticated, judged and recorded it. The owner's answer streams back through the same relay
 * as an upstream's (lists are filtered here). The request is signed as a peer's (session/
 * peer-auth.ts) and carries no client credential: the client's token stays at this replica.
 * An owner that cannot be reached is gone, and its sessions with it: 404, the client
 * re-initializes (Streamable HTTP "Session Management").
 */
export class PeerForwarder extends HttpForwarder {
  readonly #auth: PeerAuth

  constructor (server: ServerConfig, agent: Dispatcher, auth: PeerAuth, limits: UpstreamLimits, log: FastifyBaseLogger, metrics: Metrics) {
    const path = `${PEER_PATH_PREFIX}${encodeURIComponent(server.name)}`
    super(server, agent, (exchange) => ({ origin: exchange.session?.owner, path }),
      (exchange) => limits.peerGate(exchange.session?.owner ?? ''), limits, log, metrics)
    this.#auth = auth
  }

  async forward (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    switch (request.method) {
      case 'POST': return await this.forwardPost(exchange, request, reply)
      case 'GET': return await this.forwardGet(exchange, request, reply)
      default: await this.forwardDelete(exchange, request, reply)
    }
  }

  protected requestHeaders (exchange: McpExchange, request: FastifyRequest, call: UpstreamCall, method: string, body: string | undefined): Record<string, string> {
    const sessionId = exchange.sessionId
    if (sessionId === undefined) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'a peer request needs a session')
    const headers: Record<string, string> = { ...call.traceFields }
    for (const name of PASSED) {
      const value = request.headers[name]
      if (typeof value === 'string') headers[name] = value
    }
    headers['mcp-session-id'] = sessionId
    headers[PEER_HEADER] = this.#auth.sign({ method, server: this.server.name, sessionId, body: body ?? '' })
    return headers
  }

  protected unreachable (err: unknown): GatewayError {
    const failure = upstreamFailure(err)
    // An owner that is alive but does not answer in time is a slow upstream, not a lost session.
    if (failure.code === 'PORTCULLIS_ERR_UPSTREAM_TIMEOUT') return failure
    this.log.info({ server: this.server.name, owner: 'unreachable', err }, 'the replica that owned a session is gone: the client must re-initialize')
    return new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND', undefined, { cause: err })
  }
}
