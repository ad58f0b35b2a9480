import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { StateHolder } from '../state.ts'
import type { Sessions } from '../session/sessions.ts'
import type { GetStreams } from './get-streams.ts'
import { newExchange, NO_RESPONSE_STAGES } from '../mcp/exchange.ts'
import { GatewayError, isGatewayError } from '../errors.ts'
import { parseJsonRpcBody } from '../jsonrpc/parse.ts'
import { PEER_HEADER } from '../session/peer-auth.ts'
import { BridgeUpstream } from '../upstream/bridge/bridge-upstream.ts'
import { PEER_PATH_PREFIX } from '../upstream/bridge/peer-forwarder.ts'
import { sendGatewayError } from './reply-error.ts'
import { singleHeader } from './session.ts'

export interface PeerRoutesOptions {
  readonly holder: StateHolder
  readonly sessions: Sessions
  readonly maxBodyBytes: number
  readonly getStreams: GetStreams
}

/**
 * `/_portcullis/peer/{server}`: where the other replicas hand this one the requests for the
 * bridged sessions it owns (design §7). Only a request signed with the replicas' shared key is
 * served (session/peer-auth.ts) — anything else is refused before the session is looked up —
 * and a served request was already authenticated, judged, recorded and counted by the peer, so
 * it goes straight to the session's transport. Its answer streams back to the peer unfiltered;
 * the peer's relay observes it.
 */
export async function peerRoutes (app: FastifyInstance, { holder, sessions, maxBodyBytes, getStreams }: PeerRoutesOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, function keepRawBody (_request, body, done) { done(null, body) })
  app.setErrorHandler(function peerErrorHandler (err: Error, request: FastifyRequest, reply: FastifyReply) {
    const failure = isGatewayError(err) ? err : new GatewayError('PORTCULLIS_ERR_INTERNAL', undefined, { cause: err })
    if (failure.statusCode >= 500) request.log.error({ err }, 'peer request failed')
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy()
      return
    }
    void sendGatewayError(reply, failure)
  })
  app.route({
    method: ['POST', 'GET', 'DELETE'],
    url: `${PEER_PATH_PREFIX}:server`,
    handler: async function peerRequest (request: FastifyRequest<{ Params: { server: string } }>, reply: FastifyReply): Promise<void> {
      const name = request.params.server
      const sessionId = singleHeader(request, 'mcp-session-id')
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
      const signature = singleHeader(request, PEER_HEADER)
      if (sessionId === undefined || !sessions.peerAuth.verify(signature, { method: request.method, server: name, sessionId, body })) {
        throw new GatewayError('PORTCULLIS_ERR_PEER_FORBIDDEN')
      }
      const state = holder.current
      const server = Object.hasOwn(state.config.servers, name) ? state.config.servers[name] : undefined
      const upstream = state.upstreams.get(name)
      const policy = state.policies.get(name)
      if (server === undefined || policy === undefined || !(upstream instanceof BridgeUpstream)) throw new GatewayError('PORTCULLIS_ERR_SESSION_NOT_FOUND')
      // No principal, no observers, no records: the peer authenticated, judged and records it.
      const exchange = newExchange(server, policy, NO_RESPONSE_STAGES, reply.raw)
      exchange.sessionId = sessionId
      if (request.method === 'POST') {
        // The peer sent what it parsed and judged; parsed again for the session's request tracking.
        const parsed = parseJsonRpcBody(body, { allowBatch: true })
        if ('error' in parsed) throw new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', parsed.message)
        exchange.messages = parsed.messages
        exchange.batch = parsed.batch
      }
      // a peer's GET stream ends with this replica's drain like a client's
      if (request.method === 'GET') getStreams.track(reply.raw)
      await upstream.servePeer(exchange, request, reply)
    },
  })
}
