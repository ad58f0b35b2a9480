import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import type { GetStreams } from './get-streams.ts'

export type ForwardHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/** The handler: hand the judged request to its upstream, whatever transport that speaks. */
export function forwardToUpstream (getStreams: GetStreams): ForwardHandler {
  return async function forwardToUpstream (request, reply) {
    const { mcp: exchange, upstream } = request
    if (exchange === null || upstream === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'forward before resolveServer')
    switch (request.method) {
      case 'POST': return await upstream.post(exchange, request, reply)
      case 'GET':
        getStreams.track(reply.raw)
        return await upstream.get(exchange, request, reply)
      case 'DELETE': return await upstream.delete(exchange, request, reply)
      default: throw new GatewayError('PORTCULLIS_ERR_METHOD_NOT_ALLOWED', undefined, { headers: { allow: 'GET, POST, DELETE' } })
    }
  }
}
