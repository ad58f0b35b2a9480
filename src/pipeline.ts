import type { Config } from './config/types.ts'
import type { StateHolder } from './state.ts'
import type { AuthorizationContext } from './authorization-server/authorization-server.ts'
import type { RecordSink } from './telemetry/records.ts'
import { resolveServer } from './listener/resolve-server.ts'
import { allowedOrigins, checkOrigin } from './listener/origin.ts'
import { checkTransportHeaders } from './listener/transport-rules.ts'
import { authenticate } from './authn/authenticate.ts'
import { bindSession } from './listener/session.ts'
import { cancelUpstream, finishAnswered, finishUnanswered, watchClose } from './telemetry/observe-exchange.ts'
import { filterLists } from './policy/list-filter.ts'
import type { ResponseStages } from './mcp/exchange.ts'
import { parseMcpBody } from './listener/body.ts'
import { startSpans } from './telemetry/start-spans.ts'
import { checkMcpHeaders } from './listener/mcp-headers.ts'
import { enforcePolicy } from './policy/enforce.ts'
import { enforceRateLimits } from './ratelimit/server-rate-limits.ts'
import { forwardToUpstream, type ForwardHandler } from './listener/forward.ts'
import type { GetStreams } from './listener/get-streams.ts'
import type { Stage } from './listener/run-stages.ts'
import type { Sessions } from './session/sessions.ts'

export interface McpPipeline {
  /** before the body is read: an unauthenticated or misaddressed request never makes us read it */
  readonly onRequest: readonly Stage[]
  /** after the body is parsed: what is asked, and may it be */
  readonly preHandler: readonly Stage[]
  readonly handler: ForwardHandler
  /** the response half: what happens to each upstream message, and when the exchange closes */
  readonly response: ResponseStages
}

/**
 * The path of every request to /mcp/{server}, in order — the table of contents of the gateway.
 * Each stage is a named function in a file of its own; each request phase runs as one Fastify
 * hook (listener/run-stages.ts); the response stages run from upstream/relay.ts (every message
 * the upstream sends, JSON or SSE, HTTP or bridged) and from the exchange's close.
 */
export function mcpPipeline (config: Config, holder: StateHolder, auth: AuthorizationContext, sink: RecordSink, sessions: Sessions, getStreams: GetStreams): McpPipeline {
  const response: ResponseStages = {
    onUpstreamMessage: [
      finishAnswered(sink),
      filterLists(sink.toolNames),
    ],
    onClose: [
      finishUnanswered(sink),
      cancelUpstream(sink),
    ],
  }
  return {
    onRequest: [
      resolveServer(holder, response) as Stage,
      checkOrigin(allowedOrigins(config)),
      checkTransportHeaders,
      authenticate(auth.verifier, sink.metrics),
      bindSession(sessions),
      watchClose,
    ],
    preHandler: [
      parseMcpBody,
      startSpans(sink.toolNames),
      checkMcpHeaders,
      enforcePolicy(sink),
      enforceRateLimits(auth.store, config.store?.keyPrefix ?? '', sink),
    ],
    handler: forwardToUpstream(getStreams),
    response,
  }
}
