import type { IncomingHttpHeaders } from 'node:http'
import { propagation, trace, ROOT_CONTEXT, type ContextManager, SpanKind, SpanStatusCode, type Context, type Span, type TextMapGetter } from '@opentelemetry/api'
import type { SpanProcessor } from '@opentelemetry/sdk-trace'
import { VERSION } from '../version.ts'

/** MCP semantic conventions (semantic-conventions-genai, Development), copied as the OTel README advises. */
export const SCHEMA_URL = 'https://opentelemetry.io/schemas/gen-ai/1.42.0'

/**
 * How long a stop waits for the last spans to reach the collector. The SDK's own limits (an OTLP
 * request 10 s, a batch export 30 s, retried) would let a collector that never answers hold the
 * stop past the pod's grace period: deploy/kubernetes/base/deployment.yaml gives preStop (5 s) +
 * listen.drainTimeoutMs (20 s) + the log's STOP_WAIT_MS (2 s) + this + a margin ≤
 * terminationGracePeriodSeconds (35 s).
 */
export const TRACES_FLUSH_MS = 5_000

let active = false
/** Looked up once per SDK start: TracerProvider.getTracer builds a key and a map lookup per call. */
let cachedTracer: ReturnType<typeof trace.getTracer> | undefined

/** Whether spans are being made; without an SDK the request path skips all span work. */
export function tracingActive (): boolean {
  return active
}

export function tracer (): ReturnType<typeof trace.getTracer> {
  cachedTracer ??= trace.getTracer('portcullis', VERSION)
  return cachedTracer
}

/** A context manager with no active context: every span's parent is passed explicitly. */
const explicitContextOnly: ContextManager = {
  active: () => ROOT_CONTEXT,
  with: (_context, fn, thisArg, ...args) => fn.call(thisArg, ...args),
  bind: (_context, target) => target,
  enable () { return this },
  disable () { return this },
}

/**
 * Start the OpenTelemetry SDK, configured only by the standard `OTEL_*` variables
 * (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL
 * = http/protobuf | http/json, OTEL_TRACES_SAMPLER[_ARG], OTEL_SERVICE_NAME, OTEL_SDK_DISABLED …).
 * Nothing starts unless an exporter or endpoint is configured (or a test passes processors), so
 * a gateway without a collector does no tracing work at all. Export is batched and off the
 * request path: an unreachable collector never slows or fails a request.
 */
export async function startTracing (env: Record<string, string | undefined>, spanProcessors?: SpanProcessor[]): Promise<(() => Promise<void>) | undefined> {
  if (env.OTEL_SDK_DISABLED === 'true') return undefined
  const configured = env.OTEL_TRACES_EXPORTER !== undefined || env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined
  if (!configured && spanProcessors === undefined) return undefined
  // OTEL_TRACES_EXPORTER=none: the SDK registers no tracer provider, and spans made against the
  // API's no-op tracer would be work for nothing. The SDK then starts only if it has metrics or
  // logs to export.
  const tracesOff = spanProcessors === undefined && tracesExporterIsNone(env.OTEL_TRACES_EXPORTER)
  if (tracesOff && env.OTEL_METRICS_EXPORTER === undefined && env.OTEL_LOGS_EXPORTER === undefined) return undefined
  // Loaded only here: the SDK and every exporter it can configure (gRPC, Zipkin, Prometheus, logs,
  // metrics) are memory and startup time a gateway without a collector should not pay
  // (test/bench/README.md).
  const { NodeSDK } = await import('@opentelemetry/sdk-node')
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'portcullis',
    instrumentations: [],
    // The gateway passes every parent context explicitly and never reads the active one: no
    // AsyncLocalStorage context manager to keep up to date across every await of every request.
    contextManager: explicitContextOnly,
    ...(spanProcessors === undefined ? {} : { spanProcessors }),
    // Traces only: metrics are Prometheus on the admin listener and logs are JSON on stdout. Left
    // alone, an OTLP endpoint would also start an OTLP metrics reader and log exporter; they start
    // only when OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER ask for them.
    ...(env.OTEL_METRICS_EXPORTER === undefined ? { metricReaders: [] } : {}),
    ...(env.OTEL_LOGS_EXPORTER === undefined ? { logRecordProcessors: [] } : {}),
  })
  sdk.start()
  cachedTracer = undefined
  active = !tracesOff
  return async () => {
    active = false
    cachedTracer = undefined
    await sdk.shutdown()
  }
}

/** `OTEL_TRACES_EXPORTER` names only `none` (the SDK's own reading: a comma-separated list). */
function tracesExporterIsNone (value: string | undefined): boolean {
  if (value === undefined) return false
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '')
  return names.length > 0 && names.every((name) => name === 'none')
}

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
}

const metaGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => typeof carrier[key] === 'string' ? carrier[key] : undefined,
}

/**
 * The W3C trace context a client message continues: `params._meta.traceparent` when the message
 * carries one (it travels with the message through any transport), else the HTTP headers.
 */
export function incomingContext (headers: IncomingHttpHeaders, params: Record<string, unknown> | undefined): Context {
  const meta = params?._meta
  if (typeof meta === 'object' && meta !== null && typeof (meta as Record<string, unknown>).traceparent === 'string') {
    return propagation.extract(ROOT_CONTEXT, meta as Record<string, unknown>, metaGetter)
  }
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter)
}

/** traceparent/tracestate of `span`, for the upstream request headers and each message's `_meta`. */
export function outgoingTraceFields (span: Span): Record<string, string> {
  const carrier: Record<string, string> = {}
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier)
  return carrier
}

/**
 * Write the trace context into a message's `params._meta` (MCP: `_meta` is the place for
 * out-of-band data; stdio upstreams have no headers). Only requests and notifications with
 * object params (or none) are touched.
 */
export function injectIntoMeta (raw: Record<string, unknown>, fields: Record<string, string>): void {
  if (typeof raw.method !== 'string' || Object.keys(fields).length === 0) return
  const params = raw.params === undefined ? (raw.params = {}) : raw.params
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return
  const p = params as Record<string, unknown>
  const meta = p._meta === undefined ? (p._meta = {}) : p._meta
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return
  Object.assign(meta, fields)
}

/** The trace id of a sampled span, for exemplars and the audit line; undefined otherwise. */
export function sampledTraceId (span: Span | undefined): string | undefined {
  const ctx = span?.spanContext()
  return ctx !== undefined && (ctx.traceFlags & 1) === 1 ? ctx.traceId : undefined
}

export { SpanKind, SpanStatusCode, trace, type Span, type Context }
