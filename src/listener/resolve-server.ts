import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import type { UpstreamRegistry } from '../upstream/registry.ts'
import { GatewayError } from '../errors.ts'
import { DEFAULT_PROTOCOL_VERSION } from '../mcp/exchange.ts'

/** Stage: which configured MCP server is asked for. Unknown names are 404 before anything else. */
export function resolveServer (config: Config, registry: UpstreamRegistry) {
  return async function resolveServer (request: FastifyRequest<{ Params: { server: string } }>, _reply: FastifyReply): Promise<void> {
    const name = request.params.server
    const server = Object.hasOwn(config.servers, name) ? config.servers[name] : undefined
    const upstream = registry.get(name)
    if (server === undefined || upstream === undefined) throw new GatewayError('PORTCULLIS_ERR_UNKNOWN_SERVER')
    request.upstream = upstream
    request.mcp = {
      server,
      principal: null,
      protocolVersion: DEFAULT_PROTOCOL_VERSION,
      sessionId: undefined,
      messages: [],
      operations: [],
      batch: false,
      pending: new Map(),
      observers: [],
    }
  }
}
