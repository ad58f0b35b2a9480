import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import { KNOWN_PROTOCOL_VERSIONS } from '../mcp/exchange.ts'
import { principalBinding } from '../session/sealed-session-id.ts'
import type { Sessions } from '../session/sessions.ts'

const KNOWN = new Set<string>(KNOWN_PROTOCOL_VERSIONS)

/**
 * Stage: the protocol revision and the session this request belongs to.
 *
 * MCP-Protocol-Version, when sent, must name a revision the gateway understands (it has to
 * judge every message by that revision's rules): otherwise 400. An Mcp-Session-Id, whatever the
 * version header says, must be an id this gateway sealed, for this server, for this same
 * principal, and not ended by a DELETE at any replica; anything else is answered exactly like a
 * session that does not exist (404), so ids
 * can't be probed or borrowed across principals. The id carries the session's state (the
 * upstream's own id, or the replica that owns a bridged session), so every replica judges it the
 * same way without asking anyone; the client's id itself never goes upstream.
 */
export function bindSession (sessions: Sessions) {
  const sealer = sessions.sealer
  return function bindSession (request: FastifyRequest, _reply: FastifyReply): void {
    const exchange = request.mcp
    if (exchange === null || exchange.principal === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'bindSession before authenticate')
    const version = singleHeader(request, 'mcp-protocol-version')
    if (version !== undefined) {
      if (!KNOWN.has(version)) throw new GatewayError('PORTCULLIS_ERR_BAD_PROTOCOL_VERSION', `unsupported protocol version ${JSON.stringify(version.slice(0, 32))}`)
      exchange.protocolVersion = version
    }
    const sessionId = singleHeader(request, 'mcp-session-id')
    if (sessionId === undefined) return
    const session = sealer.open(sessionId, exchange.server.name)
    if (session === undefined || session.principal !== principalBinding(exchange.principal) || sessions.ended(sessionId)) {
      throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
    }
    exchange.sessionId = sessionId
    exchange.session = session
  }
}

/**
 * A header that must appear at most once; a repeated one can't be judged unambiguously. (Node
 * joins repeated unknown headers with ", ", so the distinct values are read, not the join.)
 */
export function singleHeader (request: FastifyRequest, name: string): string | undefined {
  // headersDistinct is built, for every header, on first use: skip it when the header is absent.
  if (request.headers[name] === undefined) return undefined
  const values = request.raw.headersDistinct[name]
  if (values === undefined) return undefined
  if (values.length !== 1) throw new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', `${name} header repeated`)
  return values[0]
}
