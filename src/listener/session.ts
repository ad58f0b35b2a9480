import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import { KNOWN_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSION } from '../mcp/exchange.ts'

const KNOWN = new Set<string>(KNOWN_PROTOCOL_VERSIONS)
/** "The session ID MUST only contain visible ASCII characters (ranging from 0x21 to 0x7E)." */
const SESSION_ID = /^[\x21-\x7e]{1,256}$/

/**
 * Stage: the protocol revision and the session this request belongs to.
 *
 * MCP-Protocol-Version, when sent, must name a revision the gateway understands (it has to
 * judge every message by that revision's rules): otherwise 400. A session id must have been
 * opened on this server by this same principal; anything else is answered exactly like a
 * session that does not exist (404), so ids can't be probed across principals.
 * 2026-07-28 has no sessions: the header is ignored there.
 */
export function bindSession (request: FastifyRequest, _reply: FastifyReply): void {
    const exchange = request.mcp
    if (exchange === null || exchange.principal === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'bindSession before authenticate')
    const version = singleHeader(request, 'mcp-protocol-version')
    if (version !== undefined) {
      if (!KNOWN.has(version)) throw new GatewayError('PORTCULLIS_ERR_BAD_PROTOCOL_VERSION', `unsupported protocol version ${JSON.stringify(version.slice(0, 32))}`)
      exchange.protocolVersion = version
    }
    const sessionId = singleHeader(request, 'mcp-session-id')
    if (sessionId === undefined || exchange.protocolVersion === MODERN_PROTOCOL_VERSION) return
    const sessions = exchange.state.upstreams.sessions
    if (!SESSION_ID.test(sessionId) || sessions.lookup(exchange.server.name, sessionId, exchange.principal.key) === undefined) {
      throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
    }
    exchange.sessionId = sessionId
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
