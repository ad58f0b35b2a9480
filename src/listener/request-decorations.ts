import type { McpExchange } from '../mcp/exchange.ts'
import type { Upstream } from '../upstream/upstream.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** set by resolveServer for every /mcp/{server} request; null elsewhere */
    mcp: McpExchange | null
    /** the upstream of `mcp.server` */
    upstream: Upstream | null
  }
}
