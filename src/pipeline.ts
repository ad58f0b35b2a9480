import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from './config/types.ts'
import type { UpstreamRegistry } from './upstream/registry.ts'
import type { AuthorizationContext } from './authorization-server/authorization-server.ts'
import type { Metrics } from './telemetry/metrics.ts'
import { resolveServer } from './listener/resolve-server.ts'
import { allowedOrigins, checkOrigin } from './listener/origin.ts'
import { checkTransportHeaders } from './listener/transport-rules.ts'
import { authenticate } from './authn/authenticate.ts'
import { bindSession } from './listener/session.ts'
import { parseMcpBody } from './listener/body.ts'
import { checkMcpHeaders } from './listener/mcp-headers.ts'
import { forwardToUpstream } from './upstream/forward.ts'

type Stage = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface McpPipeline {
  /** before the body is read: an unauthenticated or misaddressed request never makes us read it */
  readonly onRequest: readonly Stage[]
  /** after the body is parsed: what is asked, and may it be */
  readonly preHandler: readonly Stage[]
  readonly handler: Stage
}

/**
 * The path of every request to /mcp/{server}, in order — the table of contents of the gateway.
 * Each stage is a named function in a file of its own; later stages (tool policy, telemetry)
 * slot in here.
 */
export function mcpPipeline (config: Config, registry: UpstreamRegistry, auth: AuthorizationContext, metrics: Metrics): McpPipeline {
  return {
    onRequest: [
      resolveServer(config, registry) as Stage,
      checkOrigin(allowedOrigins(config)),
      checkTransportHeaders,
      authenticate(config, auth.verifier, metrics),
      bindSession(registry.sessions),
    ],
    preHandler: [
      parseMcpBody,
      checkMcpHeaders,
    ],
    handler: forwardToUpstream,
  }
}
