import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'

/**
 * Stage: the header rules of Streamable HTTP that can be judged before the body is read.
 * POST: "The client MUST include an Accept header, listing both application/json and
 * text/event-stream"; GET: Accept must list text/event-stream. A compressed body can't be
 * judged byte for byte against what is forwarded, so any Content-Encoding is refused (415).
 */
export async function checkTransportHeaders (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const accept = (request.headers.accept ?? '').toLowerCase()
  if (request.method === 'POST') {
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      throw new GatewayError('PORTCULLIS_ERR_NOT_ACCEPTABLE')
    }
    const encoding = request.headers['content-encoding']
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      throw new GatewayError('PORTCULLIS_ERR_CONTENT_ENCODING')
    }
  } else if (request.method === 'GET' && !accept.includes('text/event-stream')) {
    throw new GatewayError('PORTCULLIS_ERR_NOT_ACCEPTABLE_SSE')
  }
}
