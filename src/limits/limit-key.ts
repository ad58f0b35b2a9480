import type { FastifyRequest } from 'fastify'
import type { McpExchange } from '../mcp/exchange.ts'

/**
 * Whose share a request counts against: its principal's. On an `auth: none` server everyone is
 * the same anonymous principal, and a per-principal cap would let one client starve all the
 * others, so there the client's address counts instead (`request.ip`, which believes
 * X-Forwarded-For only from listen.trustProxy).
 */
export function limitKey (exchange: McpExchange, request: FastifyRequest): string {
  if (exchange.server.auth === 'none' || exchange.principal === null) return `ip:${request.ip}`
  return `principal:${exchange.principal.key}`
}
