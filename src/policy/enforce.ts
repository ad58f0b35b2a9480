import type { FastifyReply, FastifyRequest } from 'fastify'
import type { McpExchange } from '../mcp/exchange.ts'
import type { McpOperation } from '../jsonrpc/classify.ts'
import { GatewayError } from '../errors.ts'
import { jsonRpcError } from '../jsonrpc/errors.ts'
import { protectedResourceMetadataUrl } from '../authn/authenticate.ts'
import { finishRecord, type RecordSink } from '../telemetry/records.ts'
import type { Principal } from '../authn/principal.ts'
import { decideRemembered, type Decision, type PolicyKind } from './decide.ts'
import { decideResource, decideTemplate } from './resource-decision.ts'

/** The methods the policy gates, and what they name (completion/complete: what its ref names). */
const GATED: Readonly<Record<string, PolicyKind>> = {
  'tools/call': 'tools',
  'prompts/get': 'prompts',
  'resources/read': 'resources',
  'resources/subscribe': 'resources',
  'resources/unsubscribe': 'resources',
}

/** The kind of rules that judge an operation, or undefined when none do. */
function kindOf (op: McpOperation): PolicyKind | undefined {
  if (op.method === 'completion/complete') return op.ref === 'prompt' ? 'prompts' : op.ref === 'resource' ? 'resources' : undefined
  return op.method === undefined ? undefined : GATED[op.method]
}

function decideOp (exchange: McpExchange, op: McpOperation, kind: PolicyKind, target: string, principal: Principal): Decision {
  if (kind === 'tools' || kind === 'prompts') return decideRemembered(exchange.policy, kind, target, principal)
  return op.method === 'completion/complete' ? decideTemplate(exchange.policy, target, principal) : decideResource(exchange.policy, target, principal)
}

interface Denial {
  readonly op: McpOperation
  readonly kind: PolicyKind
  readonly decision: Decision
}

/**
 * Stage: may this principal do this. Every gated message of the body is judged — each element
 * of a batch, notifications too — by the same `decide()` that filters the lists; resource URIs
 * only in their normal form (resource-uri.ts), and `completion/complete` by the prompt or the
 * resource (template) its ref names, denied like a missing one.
 *
 * Enforced, a denial never reaches the upstream: HTTP 200 with the JSON-RPC error a missing tool
 * gets (`-32602 Unknown tool: NAME`; prompts `Unknown prompt`; resources `-32002 Resource not
 * found`), so denial and absence can't be told apart; a batch holding a denied call is refused
 * whole. A call that an allow rule would admit with scopes the token lacks is 403
 * `insufficient_scope` with those scopes (MCP step-up). In shadow mode the decision is logged and
 * counted as `would_deny`, and the request goes on.
 */
export function enforcePolicy (sink: RecordSink) {
  return function enforcePolicy (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined {
    const exchange = request.mcp
    const principal = exchange?.principal
    if (exchange === null || principal === null || principal === undefined) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'enforcePolicy before authenticate')
    const shadow = exchange.server.mode === 'shadow'
    const denials: Denial[] = []
    for (const op of exchange.operations) {
      const kind = kindOf(op)
      if (kind === undefined || op.target === undefined) continue
      const decision = decideOp(exchange, op, kind, op.target, principal)
      const record = op.id === undefined ? undefined : exchange.records.get(op.id)
      if (record !== undefined) {
        record.decision = decision
        record.shadowDenied = shadow && !decision.allow
      }
      sink.metrics.policySeries.get(
        exchange.server.name,
        kind === 'tools' ? sink.toolNames.label(exchange.policy, op.target) : `_${kind}`,
        decision.allow ? 'allow' : shadow ? 'would_deny' : 'deny',
        decision.reason
      ).inc()
      if (!decision.allow) denials.push({ op, kind, decision })
    }
    if (denials.length === 0 || shadow) return undefined

    const hard = denials.filter((d) => d.decision.reason !== 'insufficient_scope')
    if (hard.length === 0) throw stepUp(exchange, denials)
    return refuse(exchange, hard, reply, sink)
  }
}

function stepUp (exchange: McpExchange, denials: readonly Denial[]): GatewayError {
  // 2026-07-28: "SHOULD put all scopes for the operation in one challenge".
  const scopes = [...new Set(denials.flatMap((d) => d.decision.requiredScopes))].join(' ')
  return new GatewayError('PORTCULLIS_ERR_INSUFFICIENT_SCOPE', undefined, {
    headers: {
      'www-authenticate': `Bearer error="insufficient_scope", scope="${scopes}", resource_metadata="${protectedResourceMetadataUrl(exchange.server.resource)}"`,
    },
  })
}

/** Answer the denied requests here; in a batch, every request is answered and none forwarded. */
async function refuse (exchange: McpExchange, denials: readonly Denial[], reply: FastifyReply, sink: RecordSink): Promise<FastifyReply> {
  const denied = new Map(denials.filter((d) => d.op.id !== undefined).map((d) => [d.op.id, d]))
  const answers = []
  for (const op of exchange.operations) {
    if (op.kind !== 'request' || op.id === undefined) continue
    const denial = denied.get(op.id)
    answers.push(denial === undefined
      ? jsonRpcError(op.id, -32600, 'Request not processed: another request in this batch was refused')
      : notFound(op.id, denial))
    const record = exchange.records.get(op.id)
    if (record !== undefined) finishRecord(exchange, record, denial === undefined ? 'invalid_request' : 'denied', sink, denial === undefined ? 'batch_refused' : 'policy_denied')
  }
  // Only notifications were denied: they get what any notification gets, and go nowhere.
  if (answers.length === 0) return await reply.code(202).send()
  return await reply.code(200).header('content-type', 'application/json')
    .send(JSON.stringify(exchange.batch ? answers : answers[0]))
}

function notFound (id: string | number, denial: Denial): ReturnType<typeof jsonRpcError> {
  const name = denial.op.target ?? ''
  switch (denial.kind) {
    case 'tools': return jsonRpcError(id, -32602, `Unknown tool: ${name}`)
    case 'prompts': return jsonRpcError(id, -32602, `Unknown prompt: ${name}`)
    case 'resources': return { ...jsonRpcError(id, -32002, 'Resource not found'), error: { code: -32002, message: 'Resource not found', data: { uri: name } } } as ReturnType<typeof jsonRpcError>
  }
}
