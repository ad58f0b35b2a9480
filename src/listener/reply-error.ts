import type { FastifyReply } from 'fastify'
import { GatewayError } from '../errors.ts'
import type { JsonRpcId } from '../jsonrpc/types.ts'
import { jsonRpcError } from '../jsonrpc/errors.ts'

/**
 * Answer with a GatewayError: its HTTP status and headers, and a JSON-RPC error body — the
 * dialect MCP clients read even on 4xx/5xx. Unexposed errors say only their fixed message.
 */
export function sendGatewayError (reply: FastifyReply, err: GatewayError, id: JsonRpcId | null = null): FastifyReply {
  reply.code(err.statusCode)
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value)
  return reply
    .header('content-type', 'application/json')
    .header('cache-control', 'no-store')
    .send(JSON.stringify(jsonRpcError(id, err.rpcCode, err.publicMessage)))
}
