import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'

/** The handler: hand the judged request to its upstream, whatever transport that speaks. */
export async function forwardToUpstream (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { mcp: exchange, upstream } = request
  if (exchange === null || upstream === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'forward before resolveServer')
  switch (request.method) {
    case 'POST': return await upstream.post(exchange, request, reply)
    case 'GET':
      exchange.state.upstreams.getStreams.track(reply.raw)
      return await upstream.get(exchange, request, reply)
    case 'DELETE': return await upstream.delete(exchange, request, reply)
    default: throw new GatewayError('PORTCULLIS_ERR_METHOD_NOT_ALLOWED', undefined, { headers: { allow: 'GET, POST, DELETE' } })
  }
}
