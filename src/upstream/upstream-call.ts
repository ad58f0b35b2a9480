import { ROOT_CONTEXT, trace } from '@opentelemetry/api'
import type { McpExchange } from '../mcp/exchange.ts'
import type { Metrics, UpstreamMethodLabel } from '../telemetry/metrics.ts'
import { SpanKind, SpanStatusCode, injectIntoMeta, outgoingTraceFields, tracer, tracingActive, type Span } from '../telemetry/tracing.ts'
import { incomingContext } from '../telemetry/tracing.ts'
import type { FastifyRequest } from 'fastify'
import { methodLabel } from '../jsonrpc/method-label.ts'
import type { UpstreamErrorReason } from '../errors.ts'
import { upstreamHealth } from './health.ts'

/** Why an upstream call failed, as the `reason` label of portcullis_upstream_errors_total (the set: errors.ts). */
export type { UpstreamErrorReason }

/** Tracing off: nothing to inject (shared: a call lives as long as its stream, hours for a GET). */
const NO_TRACE_FIELDS: Record<string, string> = Object.freeze({}) as Record<string, string>

/**
 * One call to the upstream on behalf of an exchange: a CLIENT span (child of the request's SERVER
 * span), the W3C trace context injected into the upstream request headers *and* each forwarded
 * message's `params._meta` (stdio upstreams have no headers), and the upstream metrics.
 */
export class UpstreamCall {
  readonly span: Span | undefined
  /** traceparent/tracestate for the upstream (empty when tracing is off: the client's headers pass as they are) */
  readonly traceFields: Record<string, string>
  readonly #metrics: Metrics
  readonly #server: string
  readonly #method: string
  /** `#method` as the bounded `method` label (a method the client names is `_other` unless known) */
  readonly #methodLabel: UpstreamMethodLabel
  readonly #started = performance.now()
  #ended = false

  constructor (exchange: McpExchange, request: FastifyRequest, metrics: Metrics) {
    this.#metrics = metrics
    this.#server = exchange.server.name
    const first = exchange.records.values().next().value
    // A POST of notifications only has no record; its method is the first message's.
    this.#method = first?.method ?? (request.method === 'POST' ? methodLabel(exchange.operations[0]?.method) : request.method)
    this.#methodLabel = first !== undefined ? methodLabel(first.method) : httpMethodLabel(request.method, exchange)
    if (!tracingActive()) {
      this.span = undefined
      this.traceFields = NO_TRACE_FIELDS
      return
    }
    const server = first?.span ?? exchange.notificationSpans[0]
    if (server !== undefined && !server.isRecording()) {
      // An unsampled trace: its CLIENT span would record nothing either (the samplers are
      // parent-based, or decide by trace id). The upstream continues the trace from the SERVER span.
      this.span = undefined
      this.traceFields = outgoingTraceFields(server)
    } else {
      const parent = server === undefined ? incomingContext(request.headers, undefined) : trace.setSpan(ROOT_CONTEXT, server)
      this.span = tracer().startSpan(first?.spanName ?? this.#method, { kind: SpanKind.CLIENT, attributes: { 'mcp.method.name': this.#method } }, parent)
      if (this.span.isRecording()) {
        this.span.setAttributes({ 'portcullis.server': this.#server, 'portcullis.upstream.transport': exchange.server.upstream.transport })
      }
      this.traceFields = outgoingTraceFields(this.span)
    }
    for (const message of exchange.messages) {
      if (message.kind === 'request' || message.kind === 'notification') injectIntoMeta(message.raw, this.traceFields)
    }
  }

  /** The upstream answered (HTTP: its response headers arrived). */
  answered (): void {
    this.#metrics.upstreamSeries.get(this.#server, this.#methodLabel).observe((performance.now() - this.#started) / 1000)
    upstreamHealth(this.#metrics).answered(this.#server)
  }

  failed (reason: UpstreamErrorReason): void {
    this.#metrics.upstreamErrors.inc({ server: this.#server, reason })
    upstreamHealth(this.#metrics).failed(this.#server, reason)
    this.span?.setAttribute('error.type', reason)
    this.span?.setStatus({ code: SpanStatusCode.ERROR })
  }

  end (): void {
    if (this.#ended) return
    this.#ended = true
    this.span?.end()
  }
}

/** Without a request record: a POST of notifications is labelled by its first message's method, a GET or DELETE by itself. */
function httpMethodLabel (method: string, exchange: McpExchange): UpstreamMethodLabel {
  if (method === 'POST') return methodLabel(exchange.operations[0]?.method)
  return method === 'GET' || method === 'DELETE' ? method : '_other'
}
