import type { FastifyReply, FastifyRequest } from 'fastify'
import type { StateHolder } from '../state.ts'
import { GatewayError } from '../errors.ts'
import { newExchange, type ResponseStages } from '../mcp/exchange.ts'

/**
 * Stage: which configured MCP server is asked for, under the config current *now* — the request
 * keeps this snapshot to its end. Unknown names are 404 before anything else.
 */
export function resolveServer (holder: StateHolder, response: ResponseStages) {
  return function resolveServer (request: FastifyRequest<{ Params: { server: string } }>, reply: FastifyReply): void {
    const state = holder.current
    const name = request.params.server
    const server = Object.hasOwn(state.config.servers, name) ? state.config.servers[name] : undefined
    const upstream = state.upstreams.get(name)
    const policy = state.policies.get(name)
    if (server === undefined || upstream === undefined || policy === undefined) throw new GatewayError('PORTCULLIS_ERR_UNKNOWN_SERVER')
    request.upstream = upstream
    request.mcp = newExchange(server, policy, response, reply.raw)
  }
}
