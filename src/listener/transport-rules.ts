import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'

/**
 * Stage: the header rules of Streamable HTTP that can be judged before the body is read.
 * POST: "The client MUST include an Accept header, listing both application/json and
 * text/event-stream"; GET: Accept must list text/event-stream. A compressed body can't be
 * judged byte for byte against what is forwarded, so any Content-Encoding is refused (415).
 */
export function checkTransportHeaders (request: FastifyRequest, _reply: FastifyReply): void {
  const accept = mediaRanges(request.headers.accept)
  if (request.method === 'POST') {
    if (!accept.has('application/json') || !accept.has('text/event-stream')) {
      throw new GatewayError('PORTCULLIS_ERR_NOT_ACCEPTABLE')
    }
    const encoding = request.headers['content-encoding']
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      throw new GatewayError('PORTCULLIS_ERR_CONTENT_ENCODING')
    }
  } else if (request.method === 'GET' && !accept.has('text/event-stream')) {
    throw new GatewayError('PORTCULLIS_ERR_NOT_ACCEPTABLE_SSE')
  }
}

/** Accept headers repeat verbatim across a client's requests: parse each distinct one once. */
const parsedAccept = new Map<string, Set<string>>()

/** The media ranges an Accept header lists (RFC 9110 §12.5.1), parameters dropped, lowercased. */
function mediaRanges (accept: string | undefined): ReadonlySet<string> {
  if (accept === undefined) return new Set()
  let ranges = parsedAccept.get(accept)
  if (ranges !== undefined) return ranges
  ranges = new Set<string>()
  if (parsedAccept.size < 256) parsedAccept.set(accept, ranges)
  for (const part of accept.split(',')) {
    const semicolon = part.indexOf(';')
    ranges.add((semicolon === -1 ? part : part.slice(0, semicolon)).trim().toLowerCase())
  }
  return ranges
}
