import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import { GatewayError } from '../errors.ts'

const ALLOWED_HEADERS = [
  'Authorization', 'Content-Type', 'Accept', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Last-Event-ID',
  'Mcp-Method', 'Mcp-Name', 'traceparent', 'tracestate', 'baggage',
].join(', ')
const EXPOSED_HEADERS = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After'

/** The origins a browser client may call from: publicUrl's own, plus listen.allowedOrigins. */
export function allowedOrigins (config: Config): ReadonlySet<string> {
  return new Set([new URL(config.publicUrl).origin, ...config.listen.allowedOrigins])
}

/**
 * Stage: Streamable HTTP "Servers MUST validate the Origin header on all incoming connections
 * to prevent DNS rebinding attacks … If the Origin header is present and invalid, servers MUST
 * respond with HTTP 403 Forbidden." Requests without Origin (non-browser clients) pass.
 * Allowed browser origins get CORS headers; they are set on the raw response so that answers
 * written by a bridged transport carry them too.
 */
export function checkOrigin (origins: ReadonlySet<string>) {
  return function checkOrigin (request: FastifyRequest, reply: FastifyReply): void {
    const origin = request.headers.origin
    if (origin === undefined) return
    if (!origins.has(origin)) throw new GatewayError('PORTCULLIS_ERR_ORIGIN')
    reply.raw.setHeader('access-control-allow-origin', origin)
    reply.raw.setHeader('access-control-expose-headers', EXPOSED_HEADERS)
    reply.raw.setHeader('vary', 'Origin')
  }
}

/** CORS preflight: answered without authentication (it carries no credentials). */
export function preflight (origins: ReadonlySet<string>) {
  return async function preflight (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const origin = request.headers.origin
    if (origin === undefined || !origins.has(origin)) throw new GatewayError('PORTCULLIS_ERR_ORIGIN')
    await reply.code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', 'GET, POST, DELETE')
      .header('access-control-allow-headers', ALLOWED_HEADERS)
      .header('access-control-expose-headers', EXPOSED_HEADERS)
      .header('access-control-max-age', '600')
      .header('vary', 'Origin')
      .send()
  }
}
