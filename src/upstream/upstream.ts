import type { FastifyReply, FastifyRequest } from 'fastify'
import type { McpExchange } from '../mcp/exchange.ts'

/**
 * One configured upstream MCP server, whatever transport it speaks, presented to clients as
 * Streamable HTTP. The listener has already authenticated, parsed and judged the request; an
 * upstream only forwards it and streams back what comes.
 */
export interface Upstream {
  readonly transport: 'streamable-http' | 'sse' | 'stdio'
  post (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void>
  get (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void>
  delete (exchange: McpExchange, request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** open client sessions (bridged upstreams: one process or connection each) */
  sessionCount (): number
  /** stop accepting, end open streams, kill child processes */
  close (): Promise<void>
  /** after a reload replaced it: take nothing new, let what is open finish, then release everything */
  retire (): Promise<void>
}
