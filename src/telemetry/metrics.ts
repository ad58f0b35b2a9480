import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client'
import { VERSION } from '../version.ts'
import { CounterSeries, HistogramSeries, SeriesTable } from './series.ts'
import type { UpstreamErrorReason } from '../errors.ts'
import type { MethodLabel } from '../jsonrpc/method-label.ts'
import type { Outcome } from '../mcp/request-record.ts'
import type { DecisionLabel, DecisionReason } from '../policy/decide.ts'
import type { TokenValidationReason, TokenValidationResult } from '../authn/reasons.ts'
import type { RateLimitedLabel } from '../limits/limit-labels.ts'

/**
 * Every Prometheus metric of the gateway, declared once (design.md §6; dashboards, alerts and
 * tests depend on these names). Labels are bounded: `server` is a configured name, `tool` a name
 * the rules or the upstream's tools/list made known (else `_unknown`), `method` a known MCP method
 * (else `_other`), `reason`/`error`/`outcome` come from fixed sets in code, `issuer` from the
 * configured trusted issuers. Never a user id.
 */

/**
 * A prom-client counter or gauge whose label values are closed sets: `inc` and `labels` take
 * exactly `L` (every label, each from its set), so a typo fails typecheck instead of starting a
 * new series. Everything else (get, reset …) is prom-client's.
 */
type Labeled<M extends Counter<string> | Gauge<string>, L extends Record<string, string>> = Omit<M, 'inc' | 'labels'> & {
  inc: (labels: L, value?: number) => void
  labels: (labels: L) => ReturnType<M['labels']>
}
type LabeledCounter<L extends Record<string, string>> = Labeled<Counter<keyof L & string>, L>
type LabeledGauge<L extends Record<string, string>> = Labeled<Gauge<keyof L & string>, L> & {
  set: (labels: L, value: number) => void
}

/** The `method` label of portcullis_upstream_request_duration_seconds: a request's method, or the HTTP method of a GET or DELETE. */
export type UpstreamMethodLabel = MethodLabel | 'GET' | 'DELETE'
/** The `method` label of portcullis_mcp_requests_total: `_unknown` when the body was never read. */
type RequestMethodLabel = MethodLabel | '_unknown'

/** Seconds; a tool call is often a remote API round trip, so the buckets reach a minute. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export class Metrics {
  /** OpenMetrics, so histogram and counter samples can carry `trace_id` exemplars */
  readonly registry = openMetricsRegistry()
  /** open sessions per server, read at scrape time (set by the gateway) */
  sessionCounts: () => Iterable<[string, number]> = () => []

  readonly toolCalls = new Counter({
    name: 'portcullis_tool_calls_total',
    help: 'tools/call requests by server, tool and outcome',
    labelNames: ['server', 'tool', 'outcome'] as const,
    registers: [this.registry],
    enableExemplars: true,
  })

  readonly toolCallDuration = new Histogram({
    name: 'portcullis_tool_call_duration_seconds',
    help: 'Time from a tools/call request to its response, by server, tool and outcome',
    labelNames: ['server', 'tool', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
    enableExemplars: true,
  })

  readonly mcpRequests = new Counter({
    name: 'portcullis_mcp_requests_total',
    help: 'JSON-RPC requests from clients by server, method and outcome',
    labelNames: ['server', 'method', 'outcome'] as const,
    registers: [this.registry],
    enableExemplars: true,
  })

  readonly mcpRequestDuration = new Histogram({
    name: 'portcullis_mcp_request_duration_seconds',
    help: 'Time from a client JSON-RPC request to its response, by server, method and outcome',
    labelNames: ['server', 'method', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
    enableExemplars: true,
  })

  readonly upstreamRequestDuration = new Histogram({
    name: 'portcullis_upstream_request_duration_seconds',
    help: 'Time to the upstream\'s response headers (HTTP upstreams) or answer (bridged upstreams), by server and method',
    labelNames: ['server', 'method'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  })

  readonly upstreamErrors: LabeledCounter<{ server: string; reason: UpstreamErrorReason }> = new Counter({
    name: 'portcullis_upstream_errors_total',
    help: 'Upstream failures by server and reason (refused, timeout, status_5xx, bad_response, stream_closed, process_exited …)',
    labelNames: ['server', 'reason'] as const,
    registers: [this.registry],
  })

  readonly rateLimited: LabeledCounter<{ server: string; limit: RateLimitedLabel }> = new Counter({
    name: 'portcullis_rate_limited_total',
    help: 'Requests refused with 429 over a rate or concurrency limit, by server and limit (streams, stdio_sessions, sse_sessions …)',
    labelNames: ['server', 'limit'] as const,
    registers: [this.registry],
  })

  readonly policyDecisions = new Counter({
    name: 'portcullis_policy_decisions_total',
    help: 'Tool, prompt and resource policy decisions by server, tool, decision (allow, deny, would_deny) and reason',
    labelNames: ['server', 'tool', 'decision', 'reason'] as const,
    registers: [this.registry],
  })

  /**
   * grant_type, error and reason are the closed sets of authorization-server/reasons.ts, which
   * telemetry/ may not import (a layer above): token-endpoint.ts counts through a function that
   * takes only those.
   */
  readonly tokenRequests: LabeledCounter<{ grant_type: string; outcome: 'issued' | 'rejected'; error: string; reason: string }> = new Counter({
    name: 'portcullis_token_requests_total',
    help: 'Token endpoint requests by grant type and outcome; rejections carry the OAuth error and a reason',
    labelNames: ['grant_type', 'outcome', 'error', 'reason'] as const,
    registers: [this.registry],
  })

  readonly accessTokenValidations = new Counter({
    name: 'portcullis_access_token_validations_total',
    help: 'Access tokens checked on MCP requests (cache hits included), by result and reason',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  })

  readonly jwksFetches: LabeledCounter<{ issuer: string; outcome: 'success' | 'failure' }> = new Counter({
    name: 'portcullis_jwks_fetches_total',
    help: 'Fetches of trusted IdPs\' discovery documents and JWKS, by issuer and outcome',
    labelNames: ['issuer', 'outcome'] as const,
    registers: [this.registry],
  })

  readonly jwksLastSuccess = new Gauge({
    name: 'portcullis_jwks_last_success_timestamp_seconds',
    help: 'When the keys of a trusted IdP were last fetched successfully (Unix seconds), by issuer',
    labelNames: ['issuer'] as const,
    registers: [this.registry],
  })

  readonly streamsStalled = new Counter({
    name: 'portcullis_streams_stalled_total',
    help: 'SSE streams closed because their client stopped reading (limits.streamStallMs, maxStreamBufferBytes), by server',
    labelNames: ['server'] as const,
    registers: [this.registry],
  })

  readonly upstreamCircuitOpen = new Gauge({
    name: 'portcullis_upstream_circuit_open',
    help: 'Whether calls to an upstream fail fast: 1 open or half-open, 0 closed, by server',
    labelNames: ['server'] as const,
    registers: [this.registry],
  })

  readonly openStreams: LabeledGauge<{ server: string; kind: 'post' | 'get' }> = new Gauge({
    name: 'portcullis_open_streams',
    help: 'SSE streams open to clients, by server and kind (post, get)',
    labelNames: ['server', 'kind'] as const,
    registers: [this.registry],
  })

  readonly sessions: Gauge<'server'>

  // Handles for the series every request updates (series.ts): no label hashing per update.
  /** portcullis_mcp_requests_total and _duration_seconds, by server, method, outcome */
  readonly requestSeries = new SeriesTable(([server, method, outcome]: [string, RequestMethodLabel, Outcome]) => {
    const labels = { server, method, outcome }
    return { count: new CounterSeries(this.mcpRequests, labels, true), duration: new HistogramSeries(this.mcpRequestDuration, labels, DURATION_BUCKETS, true) }
  })

  /** portcullis_tool_calls_total and portcullis_tool_call_duration_seconds, by server, tool, outcome */
  readonly toolCallSeries = new SeriesTable(([server, tool, outcome]: [string, string, Outcome]) => {
    const labels = { server, tool, outcome }
    return { count: new CounterSeries(this.toolCalls, labels, true), duration: new HistogramSeries(this.toolCallDuration, labels, DURATION_BUCKETS, true) }
  })

  /** portcullis_upstream_request_duration_seconds, by server, method */
  readonly upstreamSeries = new SeriesTable(([server, method]: [string, UpstreamMethodLabel]) =>
    new HistogramSeries(this.upstreamRequestDuration, { server, method }, DURATION_BUCKETS, false))

  /** portcullis_policy_decisions_total, by server, tool, decision, reason */
  readonly policySeries = new SeriesTable(([server, tool, decision, reason]: [string, string, DecisionLabel, DecisionReason]) =>
    new CounterSeries(this.policyDecisions, { server, tool, decision, reason }, false))

  /** portcullis_access_token_validations_total, by result, reason */
  readonly tokenValidationSeries = new SeriesTable(([result, reason]: [TokenValidationResult, TokenValidationReason]) =>
    new CounterSeries(this.accessTokenValidations, { result, reason }, false))

  constructor () {
    const metrics = this
    this.sessions = new Gauge({
      name: 'portcullis_sessions',
      help: 'MCP sessions opened through this replica and not closed (bridged upstreams: one process or connection each), by server',
      labelNames: ['server'] as const,
      registers: [this.registry],
      collect () {
        this.reset()
        for (const [server, count] of metrics.sessionCounts()) this.set({ server }, count)
      },
    })
    collectDefaultMetrics({ register: this.registry })
    this.buildInfo.set({ version: VERSION }, 1)
  }

  /**
   * portcullis_store_up: 1 while the shared store answers, 0 while it does not; registered only
   * with `store.url` (absent otherwise, as design §6 says).
   */
  storeUp (up: () => boolean): void {
    void new Gauge({
      name: 'portcullis_store_up',
      help: 'Whether the shared store (store.url) is reachable: 1 yes, 0 no',
      registers: [this.registry],
      collect () { this.set(up() ? 1 : 0) },
    })
  }

  /** portcullis_log_lines_dropped_total: log lines (audit lines among them) stdout's reader was too far behind to take. */
  logLinesDropped (dropped: () => number): void {
    void new Counter({
      name: 'portcullis_log_lines_dropped_total',
      help: 'Log lines (audit lines among them) dropped because the reader of stdout fell behind by more than the gateway holds for it',
      registers: [this.registry],
      collect () {
        this.reset()
        this.inc(dropped())
      },
    })
  }

  readonly buildInfo = new Gauge({
    name: 'portcullis_build_info',
    help: 'Portcullis version',
    labelNames: ['version'] as const,
    registers: [this.registry],
  })
}

function openMetricsRegistry (): Registry<OpenMetricsContentType> {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  return registry
}
