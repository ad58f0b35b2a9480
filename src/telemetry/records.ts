import type { FastifyBaseLogger } from 'fastify'
import type { McpExchange } from '../mcp/exchange.ts'
import type { Outcome, RequestRecord } from '../mcp/request-record.ts'
import type { Decision } from '../policy/decide.ts'
import { methodLabel } from '../jsonrpc/method-label.ts'
import type { Metrics } from './metrics.ts'
import type { ToolNames } from './tool-names.ts'
import { SpanStatusCode, sampledTraceId } from './tracing.ts'
import { MODERN_PROTOCOL_VERSION } from '../mcp/exchange.ts'
import { auditText, capAuditFields } from './audit-field.ts'
import type { DecisionEntry, DecisionRing } from './decision-ring.ts'
import type { GatewayErrorCode } from '../errors.ts'

/** `error.type` values of an MCP request's audit line and span besides the gateway's error codes. */
export const MCP_ERROR_TYPES = [
  'batch_refused',  // refused because another request of its batch was (over a rate limit, or denied)
  'policy_denied',  // denied by the rules
  'tool_error',     // the tool's result had isError
  'error',          // the upstream's JSON-RPC error carried no numeric code
] as const

/**
 * `error.type` of an MCP request's audit line and span: a gateway error code (errors.ts), one of
 * MCP_ERROR_TYPES, or the upstream's JSON-RPC error code as a string (`-32603`).
 */
export type McpErrorType = GatewayErrorCode | typeof MCP_ERROR_TYPES[number] | `${number}`

export interface RecordSink {
  readonly metrics: Metrics
  readonly toolNames: ToolNames
  readonly log: FastifyBaseLogger
  /** the audit lines' logger: `log` with `"log.type":"audit"` bound */
  readonly audit: FastifyBaseLogger
  /** the audit log's pseudonymous user id for (issuer, subject) */
  readonly pseudonym: (issuer: string, subject: string) => string
  /** the console's recent decisions: every denial, would_deny and step-up */
  readonly decisions?: DecisionRing
}

/**
 * The audit log's and the span's `mcp.session.id`: a pseudonym of the sealed id (HMAC under the
 * audit pseudonym key, in a domain no issuer can name), so a session's requests can be followed
 * without the log holding an id that would let a reader of it resume the session.
 */
export function sessionPseudonym (sink: RecordSink, sessionId: string): string {
  return sink.pseudonym('\0mcp.session.id', sessionId)
}

function endSpan (exchange: McpExchange, record: RequestRecord, sink: RecordSink, outcome: Outcome, errorType: McpErrorType | undefined, decision: string | undefined): void {
  const span = record.span
  if (span === undefined) return
  if (!span.isRecording()) {
    span.end()
    return
  }
  // design.md §6: legacy revisions only (2026-07-28 has no sessions)
  if (exchange.sessionId !== undefined && exchange.protocolVersion !== MODERN_PROTOCOL_VERSION) {
    span.setAttribute('mcp.session.id', sessionPseudonym(sink, exchange.sessionId))
  }
  if (decision !== undefined) span.setAttribute('portcullis.policy.decision', decision)
  span.setAttribute('portcullis.outcome', outcome)
  if (outcome !== 'success') {
    span.setAttribute('error.type', errorType ?? outcome)
    span.setStatus({ code: SpanStatusCode.ERROR })
  }
  span.end()
}

/**
 * A request ended: one audit line (`"log.type":"audit"`, design.md §6 fields; never arguments,
 * tokens or secrets; every field capped, audit-field.ts), `portcullis_mcp_requests_total` / duration, and for `tools/call`
 * `portcullis_tool_calls_total` / duration. Called exactly once per record.
 */
export function finishRecord (exchange: McpExchange, record: RequestRecord, outcome: Outcome, sink: RecordSink, errorType?: McpErrorType, statusCode?: number): void {
  if (record.outcome !== undefined) return
  record.outcome = outcome
  record.errorType = errorType
  const seconds = (performance.now() - exchange.started) / 1000
  const server = exchange.server.name
  const method = methodLabel(record.method)
  const traceId = sampledTraceId(record.span)
  // Exemplars link a latency bucket to the trace that produced it (OpenMetrics), when sampled.
  const exemplar = traceId === undefined ? undefined : { trace_id: traceId }
  const series = sink.metrics.requestSeries.get(server, method, outcome)
  series.count.inc(exemplar)
  series.duration.observe(seconds, exemplar)
  const isToolCall = record.method === 'tools/call'
  if (isToolCall) {
    const tool = sink.metrics.toolCallSeries.get(server, sink.toolNames.label(exchange.policy, record.target), outcome)
    tool.count.inc(exemplar)
    tool.duration.observe(seconds, exemplar)
  }
  const decision = record.decision
  const policyDecision = decision === undefined ? undefined : decision.allow ? 'allow' : record.shadowDenied ? 'would_deny' : 'deny'
  endSpan(exchange, record, sink, outcome, errorType, policyDecision)
  if (sink.decisions !== undefined && decision !== undefined && !decision.allow) sink.decisions.add(decisionEntry(exchange, record, decision, sink))
  if (!auditOn(sink)) return
  // Built field by field, only the fields that have a value: this runs for every request, and
  // conditional spreads would allocate an object each. `"log.type":"audit"` is the audit
  // logger's binding, serialized once (gateway.ts).
  const line: Record<string, string | number> = {}
  if (record.span !== undefined) {
    const ctx = record.span.spanContext()
    line.trace_id = ctx.traceId
    line.span_id = ctx.spanId
  }
  line['event.name'] = isToolCall ? 'mcp.tool_call' : 'mcp.request'
  line['mcp.method.name'] = record.method
  if (record.target !== undefined) {
    if (isToolCall) line['gen_ai.tool.name'] = record.target
    else if (record.method === 'prompts/get' || record.ref === 'prompt') line['gen_ai.prompt.name'] = record.target
    else if (record.method.startsWith('resources/') || record.ref === 'resource') line['mcp.resource.uri'] = record.target
  }
  line['jsonrpc.request.id'] = String(record.id)
  addExchangeFields(line, exchange, sink)
  if (decision !== undefined && policyDecision !== undefined) {
    line['portcullis.policy.decision'] = policyDecision
    line['portcullis.policy.reason'] = decision.reason
    line['portcullis.policy.rule_id'] = decision.ruleId
  }
  line.outcome = outcome
  if (errorType !== undefined) line['error.type'] = errorType
  if (statusCode !== undefined) line['http.response.status_code'] = statusCode
  line.duration_s = seconds
  sink.audit.info(capAuditFields(line), isToolCall ? 'tool call' : 'mcp request')
}

/** The console's view of a record's decision: the audit line's fields, step-ups told apart. */
function decisionEntry (exchange: McpExchange, record: RequestRecord, decision: Decision, sink: RecordSink): DecisionEntry {
  const principal = exchange.principal
  return {
    time: new Date().toISOString(),
    server: exchange.server.name,
    kind: record.method === 'tools/call' ? 'tool' : record.method === 'prompts/get' ? 'prompt' : 'resource',
    name: record.target ?? '',
    decision: decision.allow ? 'allow' : record.shadowDenied ? 'would_deny' : decision.reason === 'insufficient_scope' ? 'step_up' : 'deny',
    ruleId: decision.ruleId,
    reason: decision.reason,
    user: principal === null || principal.anonymous ? undefined : sink.pseudonym(principal.issuer ?? '', principal.subject),
    clientId: principal?.clientId,
    traceId: record.span?.spanContext().traceId,
  }
}

/**
 * An MCP request refused before any JSON-RPC request of it was judged — a 401 before the body is
 * read, a body that does not parse, a header that does not fit: one count in
 * `portcullis_mcp_requests_total` (method `_unknown` when the body was never read) and one audit
 * line. Requests of a parsed body are recorded by finishRecord instead.
 */
export function finishRefused (exchange: McpExchange, failure: { readonly statusCode: number; readonly code: GatewayErrorCode; readonly message: string }, sink: RecordSink): void {
  const { statusCode } = failure
  const seconds = (performance.now() - exchange.started) / 1000
  const server = exchange.server.name
  const first = exchange.messages[0]
  const method = first?.kind === 'request' ? first.method : undefined
  const outcome = outcomeOfStatus(statusCode, false)
  const series = sink.metrics.requestSeries.get(server, method === undefined ? '_unknown' : methodLabel(method), outcome)
  series.count.inc()
  series.duration.observe(seconds)
  if (!auditOn(sink)) return
  const line: Record<string, string | number> = {}
  line['event.name'] = 'mcp.request'
  if (method !== undefined) line['mcp.method.name'] = method
  if (first?.kind === 'request') line['jsonrpc.request.id'] = String(first.id)
  addExchangeFields(line, exchange, sink)
  line.outcome = outcome
  line['error.type'] = failure.code
  line['http.response.status_code'] = statusCode
  line.duration_s = seconds
  sink.audit.info(capAuditFields(line), auditText(`mcp request refused: ${failure.message}`))
}

/**
 * The audit fields every line of an exchange shares: who (pseudonym, client, the IdP and the
 * ID-JAG that led to the token), where (server, protocol version, session).
 */
function addExchangeFields (line: Record<string, string | number>, exchange: McpExchange, sink: RecordSink): void {
  const principal = exchange.principal
  if (principal !== null && !principal.anonymous) line['enduser.pseudo.id'] = sink.pseudonym(principal.issuer ?? '', principal.subject)
  line['portcullis.server'] = exchange.server.name
  line['mcp.protocol.version'] = exchange.protocolVersion
  if (exchange.sessionId !== undefined) line['mcp.session.id'] = sessionPseudonym(sink, exchange.sessionId)
  if (principal?.clientId !== undefined) line['portcullis.auth.client_id'] = principal.clientId
  if (principal?.issuer !== undefined) line['portcullis.auth.issuer'] = principal.issuer
  if (principal?.assertionJti !== undefined) line['portcullis.auth.assertion_jti'] = principal.assertionJti
}

/** Levels at which audit lines (info) are written; below them the line is not even built. */
const AUDIT_LEVELS = new Set(['trace', 'debug', 'info'])

function auditOn (sink: RecordSink): boolean {
  return AUDIT_LEVELS.has(sink.audit.level)
}

/** How a response message ends its request. */
export function outcomeOf (message: unknown): { outcome: Outcome; errorType?: McpErrorType } {
  if (typeof message === 'object' && message !== null) {
    if ('error' in message) {
      const code = (message as { error?: { code?: unknown } }).error?.code
      return { outcome: 'jsonrpc_error', errorType: typeof code === 'number' ? `${code}` : 'error' }
    }
    const result = (message as { result?: unknown }).result
    if (typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true) {
      return { outcome: 'tool_error', errorType: 'tool_error' }
    }
  }
  return { outcome: 'success' }
}

/** The outcome of requests still open when the HTTP exchange ended, from its status. */
export function outcomeOfStatus (statusCode: number, aborted: boolean): Outcome {
  if (aborted) return 'cancelled'
  if (statusCode === 504) return 'timeout'
  if (statusCode === 401) return 'unauthenticated'
  if (statusCode === 403) return 'denied'
  if (statusCode >= 500) return 'upstream_error'
  if (statusCode >= 400) return 'invalid_request'
  return 'upstream_error'
}
