/**
 * The Grafana dashboards of Portcullis, as code: `node grafana/build-dashboards.ts` writes
 * grafana/dashboards/*.json and the panel → metric table of grafana/README.md. Edit this file,
 * not the JSON (test/deploy/dashboards.test.ts fails when the two disagree).
 *
 * Conventions every dashboard follows (and the test checks): a `datasource` variable of type
 * prometheus that every panel and query uses; `job`, `instance` and `server` variables from
 * label_values; `$__rate_interval` as the window of every rate(); a unit on every panel; a stable
 * `uid`; the `portcullis` tag (the dashboards link to each other through it). Metric names and
 * labels are design.md §6.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// --- the model -----------------------------------------------------------------------------

type PanelType = 'timeseries' | 'stat' | 'heatmap' | 'table' | 'bargauge'

interface Query {
  readonly expr: string
  readonly legend?: string
  /** ask Grafana for exemplars (trace ids) alongside the series; latency panels only */
  readonly exemplar?: boolean
}

interface PanelSpec {
  readonly type: PanelType
  readonly title: string
  readonly description: string
  /** Grafana unit id: s, reqps, percentunit, bytes, short, ops … */
  readonly unit: string
  readonly queries: readonly Query[]
  /** width in grid columns (24 per line); height in grid rows */
  readonly w?: number
  readonly h?: number
  readonly stack?: boolean
  readonly min?: number
  readonly max?: number
  /** stat/bargauge colour steps: [value, colour], the first is the base */
  readonly thresholds?: readonly (readonly [number | null, string])[]
  /** value mappings: a number shown as text (and colour), e.g. 0 → down */
  readonly mappings?: readonly { readonly value: number; readonly text: string; readonly color: string }[]
}

interface RowSpec {
  readonly title: string
  readonly panels: readonly PanelSpec[]
}

interface VariableSpec {
  readonly name: string
  readonly label: string
  /** a label_values(...) query */
  readonly query: string
}

interface DashboardSpec {
  readonly file: string
  readonly uid: string
  readonly title: string
  readonly description: string
  readonly tags: readonly string[]
  readonly variables: readonly VariableSpec[]
  readonly rows: readonly RowSpec[]
}

// --- selectors shared by every query --------------------------------------------------------

/** every gateway series: the scrape job and instance chosen at the top of the dashboard */
const J = 'job=~"$job", instance=~"$instance"'
/** series of one or more configured servers */
const S = `${J}, server=~"$server"`
const RI = '$__rate_interval'

const rate = (metric: string, selector: string): string => `rate(${metric}{${selector}}[${RI}])`
const sumRate = (by: string, metric: string, selector: string): string =>
  by === '' ? `sum(${rate(metric, selector)})` : `sum by (${by}) (${rate(metric, selector)})`
const quantile = (q: number, by: string, histogram: string, selector: string): string =>
  `histogram_quantile(${q}, sum by (${by === '' ? 'le' : `${by}, le`}) (${rate(`${histogram}_bucket`, selector)}))`
/** a/b that is empty, not NaN or Inf, when nothing happened */
const ratio = (numerator: string, denominator: string): string => `${numerator}\n/\n(${denominator} > 0)`

/** outcomes the gateway or the upstream is answerable for (not the caller, not the tool's own isError) */
const FAILED = 'outcome=~"upstream_error|timeout"'

const latencyPanel = (title: string, description: string, histogram: string, selector: string, by: string, legend: string, w = 12): PanelSpec => ({
  type: 'timeseries',
  title,
  description,
  unit: 's',
  w,
  queries: [0.5, 0.95, 0.99].map((q) => ({
    expr: quantile(q, by, histogram, selector),
    legend: `p${Math.round(q * 100)}${legend === '' ? '' : ` ${legend}`}`,
    exemplar: true,
  })),
})

const heatmapPanel = (title: string, description: string, histogram: string, selector: string): PanelSpec => ({
  type: 'heatmap',
  title,
  description,
  unit: 's',
  w: 12,
  queries: [{ expr: `sum by (le) (increase(${histogram}_bucket{${selector}}[${RI}]))`, legend: '{{le}}', exemplar: true }],
})

const VARIABLES = {
  server: { name: 'server', label: 'Server', query: `label_values(portcullis_mcp_requests_total{${J}}, server)` },
  tool: { name: 'tool', label: 'Tool', query: `label_values(portcullis_tool_calls_total{${S}}, tool)` },
  policyTool: { name: 'tool', label: 'Tool', query: `label_values(portcullis_policy_decisions_total{${S}}, tool)` },
  method: { name: 'method', label: 'Method', query: `label_values(portcullis_mcp_requests_total{${S}}, method)` },
  issuer: { name: 'issuer', label: 'Trusted IdP', query: `label_values(portcullis_jwks_fetches_total{${J}}, issuer)` },
} satisfies Record<string, VariableSpec>

// --- the dashboards --------------------------------------------------------------------------

export const DASHBOARDS: readonly DashboardSpec[] = [
  {
    file: 'portcullis-overview.json',
    uid: 'portcullis-overview',
    title: 'Portcullis / Overview',
    description: 'The gateway at a glance: traffic, failures, latency, streams, auth and policy. Start here.',
    tags: ['portcullis', 'mcp', 'overview'],
    variables: [VARIABLES.server],
    rows: [
      {
        title: 'Now',
        panels: [
          { type: 'stat', title: 'MCP requests/s', unit: 'reqps', w: 4, description: 'JSON-RPC requests from clients per second, every method and outcome.', queries: [{ expr: sumRate('', 'portcullis_mcp_requests_total', S) }] },
          { type: 'stat', title: 'Tool calls/s', unit: 'reqps', w: 4, description: 'tools/call requests per second, every outcome.', queries: [{ expr: sumRate('', 'portcullis_tool_calls_total', S) }] },
          {
            type: 'stat',
            title: 'Failed requests',
            unit: 'percentunit',
            w: 4,
            min: 0,
            max: 1,
            description: 'Share of MCP requests that failed upstream or timed out (outcome upstream_error or timeout): the failures the operator owns. Caller mistakes, denials and tool isError results are not counted.',
            queries: [{ expr: ratio(sumRate('', 'portcullis_mcp_requests_total', `${S}, ${FAILED}`), sumRate('', 'portcullis_mcp_requests_total', S)) }],
            thresholds: [[null, 'green'], [0.01, 'orange'], [0.05, 'red']],
          },
          {
            type: 'stat',
            title: 'Tool call p95',
            unit: 's',
            w: 4,
            description: '95th percentile of the time from a tools/call request to its response, all servers and tools selected.',
            queries: [{ expr: quantile(0.95, '', 'portcullis_tool_call_duration_seconds', S) }],
            thresholds: [[null, 'green'], [2, 'orange'], [10, 'red']],
          },
          { type: 'stat', title: 'Open streams', unit: 'short', w: 4, description: 'SSE streams open to clients right now (POST and GET streams).', queries: [{ expr: `sum(portcullis_open_streams{${S}})` }] },
          {
            type: 'stat',
            title: 'Token rejections/s',
            unit: 'reqps',
            w: 4,
            description: 'Token endpoint requests rejected per second (any grant type, any reason). The Auth dashboard breaks them down by reason.',
            queries: [{ expr: sumRate('', 'portcullis_token_requests_total', `${J}, outcome="rejected"`) }],
            thresholds: [[null, 'green'], [0.1, 'orange'], [1, 'red']],
          },
        ],
      },
      {
        title: 'Traffic',
        panels: [
          { type: 'timeseries', title: 'MCP requests by outcome', unit: 'reqps', stack: true, description: 'Client JSON-RPC requests per second by outcome (success, tool_error, jsonrpc_error, denied, unauthenticated, upstream_error, timeout, cancelled, invalid_request).', queries: [{ expr: sumRate('outcome', 'portcullis_mcp_requests_total', S), legend: '{{outcome}}' }] },
          { type: 'timeseries', title: 'Tool calls by server', unit: 'reqps', stack: true, description: 'tools/call requests per second by configured server.', queries: [{ expr: sumRate('server', 'portcullis_tool_calls_total', S), legend: '{{server}}' }] },
          latencyPanel('Tool call latency', 'p50/p95/p99 of tools/call latency at the gateway, all selected servers. Exemplars link to the trace of a sampled call.', 'portcullis_tool_call_duration_seconds', S, '', ''),
          { type: 'timeseries', title: 'Policy decisions', unit: 'ops', stack: true, description: 'Tool, prompt and resource policy decisions per second: allow, deny, would_deny (shadow mode).', queries: [{ expr: sumRate('decision', 'portcullis_policy_decisions_total', S), legend: '{{decision}}' }] },
        ],
      },
      {
        title: 'Fleet',
        panels: [
          { type: 'timeseries', title: 'Token requests by outcome', unit: 'reqps', stack: true, description: 'Token endpoint requests per second: issued vs rejected, by grant type.', queries: [{ expr: sumRate('grant_type, outcome', 'portcullis_token_requests_total', J), legend: '{{grant_type}} {{outcome}}' }] },
          { type: 'table', title: 'Versions running', unit: 'short', w: 6, description: 'How many gateway instances run each version (portcullis_build_info).', queries: [{ expr: `count by (version) (portcullis_build_info{${J}})`, legend: '{{version}}' }] },
          {
            type: 'stat',
            title: 'Shared store (Redis) reachable',
            unit: 'short',
            w: 6,
            h: 8,
            min: 0,
            max: 1,
            description: 'Whether each instance reaches its shared store (store.url, Redis): 1 up, 0 down. Down means token requests, logins and registrations on that instance fail with 503 while MCP traffic with issued tokens keeps working, and /readyz stays 200 on purpose; PortcullisStoreDown fires after 1 minute. No data: no store.url (one instance, state in memory).',
            queries: [{ expr: `portcullis_store_up{${J}}`, legend: '{{instance}}' }],
            thresholds: [[null, 'red'], [1, 'green']],
            mappings: [{ value: 0, text: 'down', color: 'red' }, { value: 1, text: 'up', color: 'green' }],
          },
          {
            type: 'timeseries',
            title: 'Log lines dropped',
            unit: 'short',
            w: 12,
            description: 'Log lines (audit lines among them) each instance dropped because the reader of its stdout (the container runtime, a log agent) fell more than 16 MiB behind (portcullis_log_lines_dropped_total). Requests are not held up for the reader; the audit log has a gap, marked by a warn line with the count. Should be 0; PortcullisLogLinesDropped fires on any.',
            queries: [{ expr: `sum by (instance) (increase(portcullis_log_lines_dropped_total{${J}}[$__rate_interval]))`, legend: '{{instance}}' }],
          },
        ],
      },
    ],
  },
  {
    file: 'portcullis-tool-calls.json',
    uid: 'portcullis-tool-calls',
    title: 'Portcullis / Tool calls',
    description: 'RED view of tools/call by server and tool: rate, errors by outcome, duration (with exemplars).',
    tags: ['portcullis', 'mcp', 'tools'],
    variables: [VARIABLES.server, VARIABLES.tool],
    rows: [
      {
        title: 'Rate',
        panels: [
          { type: 'timeseries', title: 'Tool calls by server and tool', unit: 'reqps', description: 'tools/call requests per second by server and tool (tool is _unknown for names neither the rules nor the upstream\'s tools/list made known).', queries: [{ expr: sumRate('server, tool', 'portcullis_tool_calls_total', `${S}, tool=~"$tool"`), legend: '{{server}} / {{tool}}' }] },
          { type: 'timeseries', title: 'Tool calls by outcome', unit: 'reqps', stack: true, description: 'tools/call requests per second by outcome.', queries: [{ expr: sumRate('outcome', 'portcullis_tool_calls_total', `${S}, tool=~"$tool"`), legend: '{{outcome}}' }] },
          { type: 'table', title: 'Busiest tools', unit: 'reqps', description: 'The ten server/tool pairs with the most calls per second now.', queries: [{ expr: `topk(10, ${sumRate('server, tool', 'portcullis_tool_calls_total', `${S}, tool=~"$tool"`)})`, legend: '{{server}} / {{tool}}' }] },
        ],
      },
      {
        title: 'Errors',
        panels: [
          {
            type: 'timeseries',
            title: 'Failed ratio by server and tool',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of tool calls that failed upstream or timed out (outcome upstream_error or timeout), by server and tool: what the PortcullisToolErrorRatioHigh alert watches.',
            queries: [{ expr: ratio(sumRate('server, tool', 'portcullis_tool_calls_total', `${S}, tool=~"$tool", ${FAILED}`), sumRate('server, tool', 'portcullis_tool_calls_total', `${S}, tool=~"$tool"`)), legend: '{{server}} / {{tool}}' }],
          },
          {
            type: 'timeseries',
            title: 'Non-success ratio by outcome',
            unit: 'percentunit',
            min: 0,
            max: 1,
            stack: true,
            description: 'Share of tool calls by every outcome other than success: tool_error (the tool\'s own isError result), jsonrpc_error, denied, unauthenticated, upstream_error, timeout, cancelled, invalid_request.',
            queries: [{ expr: `${sumRate('outcome', 'portcullis_tool_calls_total', `${S}, tool=~"$tool", outcome!="success"`)}\n/ ignoring (outcome) group_left ()\n(${sumRate('', 'portcullis_tool_calls_total', `${S}, tool=~"$tool"`)} > 0)`, legend: '{{outcome}}' }],
          },
          { type: 'timeseries', title: 'Errors by server, tool and outcome', unit: 'reqps', description: 'Tool calls per second that did not succeed, by server, tool and outcome.', queries: [{ expr: sumRate('server, tool, outcome', 'portcullis_tool_calls_total', `${S}, tool=~"$tool", outcome!="success"`), legend: '{{server}} / {{tool}}: {{outcome}}' }] },
        ],
      },
      {
        title: 'Duration',
        panels: [
          latencyPanel('Tool call latency', 'p50/p95/p99 of tools/call latency (request to response at the gateway) for the selected servers and tools. Exemplars link to traces.', 'portcullis_tool_call_duration_seconds', `${S}, tool=~"$tool"`, '', ''),
          heatmapPanel('Tool call latency distribution', 'Histogram buckets of tools/call latency over time; exemplar dots link to traces.', 'portcullis_tool_call_duration_seconds', `${S}, tool=~"$tool"`),
          {
            type: 'timeseries',
            title: 'p99 by server and tool',
            unit: 's',
            w: 24,
            description: '99th percentile tools/call latency per server and tool.',
            queries: [{ expr: quantile(0.99, 'server, tool', 'portcullis_tool_call_duration_seconds', `${S}, tool=~"$tool"`), legend: '{{server}} / {{tool}}', exemplar: true }],
          },
        ],
      },
    ],
  },
  {
    file: 'portcullis-mcp-methods.json',
    uid: 'portcullis-mcp-methods',
    title: 'Portcullis / MCP methods',
    description: 'Every JSON-RPC method clients send (tools/list, initialize, prompts/get …): rate, outcomes, latency; open streams and sessions.',
    tags: ['portcullis', 'mcp'],
    variables: [VARIABLES.server, VARIABLES.method],
    rows: [
      {
        title: 'Requests',
        panels: [
          { type: 'timeseries', title: 'Requests by method', unit: 'reqps', stack: true, description: 'Client JSON-RPC requests per second by MCP method (_other for methods outside the known set).', queries: [{ expr: sumRate('method', 'portcullis_mcp_requests_total', `${S}, method=~"$method"`), legend: '{{method}}' }] },
          { type: 'timeseries', title: 'Requests by server and method', unit: 'reqps', description: 'Client JSON-RPC requests per second by server and method.', queries: [{ expr: sumRate('server, method', 'portcullis_mcp_requests_total', `${S}, method=~"$method"`), legend: '{{server}} {{method}}' }] },
          { type: 'timeseries', title: 'Non-success by method and outcome', unit: 'reqps', description: 'Requests per second that did not succeed, by method and outcome.', queries: [{ expr: sumRate('method, outcome', 'portcullis_mcp_requests_total', `${S}, method=~"$method", outcome!="success"`), legend: '{{method}}: {{outcome}}' }] },
          {
            type: 'timeseries',
            title: 'Failed ratio by method',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of requests per method that failed upstream or timed out.',
            queries: [{ expr: ratio(sumRate('method', 'portcullis_mcp_requests_total', `${S}, method=~"$method", ${FAILED}`), sumRate('method', 'portcullis_mcp_requests_total', `${S}, method=~"$method"`)), legend: '{{method}}' }],
          },
        ],
      },
      {
        title: 'Latency',
        panels: [
          {
            type: 'timeseries',
            title: 'p95 by method',
            unit: 's',
            description: '95th percentile of request-to-response time at the gateway, by method (auth, policy and upstream included).',
            queries: [{ expr: quantile(0.95, 'method', 'portcullis_mcp_request_duration_seconds', `${S}, method=~"$method"`), legend: '{{method}}', exemplar: true }],
          },
          {
            type: 'timeseries',
            title: 'p99 by method',
            unit: 's',
            description: '99th percentile of request-to-response time at the gateway, by method.',
            queries: [{ expr: quantile(0.99, 'method', 'portcullis_mcp_request_duration_seconds', `${S}, method=~"$method"`), legend: '{{method}}', exemplar: true }],
          },
        ],
      },
      {
        title: 'Streams and sessions',
        panels: [
          { type: 'timeseries', title: 'Open streams by server and kind', unit: 'short', stack: true, description: 'SSE streams open to clients, by server and kind (post: a response stream; get: a standalone GET stream).', queries: [{ expr: `sum by (server, kind) (portcullis_open_streams{${S}})`, legend: '{{server}} {{kind}}' }] },
          { type: 'timeseries', title: 'Sessions by server', unit: 'short', stack: true, description: 'MCP sessions the gateway knows, by server (bridged upstreams: one child process or connection each).', queries: [{ expr: `sum by (server) (portcullis_sessions{${S}})`, legend: '{{server}}' }] },
        ],
      },
    ],
  },
  {
    file: 'portcullis-upstreams.json',
    uid: 'portcullis-upstreams',
    title: 'Portcullis / Upstreams',
    description: 'The MCP servers behind the gateway: request rate, latency, failures by reason.',
    tags: ['portcullis', 'mcp', 'upstreams'],
    variables: [VARIABLES.server],
    rows: [
      {
        title: 'Latency',
        panels: [
          { type: 'timeseries', title: 'Upstream requests by server', unit: 'reqps', description: 'Requests the gateway sent upstream per second (the count of the upstream duration histogram).', queries: [{ expr: sumRate('server', 'portcullis_upstream_request_duration_seconds_count', S), legend: '{{server}}' }] },
          {
            type: 'timeseries',
            title: 'Upstream p99 by server',
            unit: 's',
            description: '99th percentile time to the upstream\'s response headers (HTTP upstreams) or answer (bridged upstreams): what PortcullisUpstreamLatencyHigh watches.',
            queries: [{ expr: quantile(0.99, 'server', 'portcullis_upstream_request_duration_seconds', S), legend: '{{server}}', exemplar: true }],
          },
          latencyPanel('Upstream latency', 'p50/p95/p99 upstream latency for the selected servers.', 'portcullis_upstream_request_duration_seconds', S, '', ''),
          {
            type: 'timeseries',
            title: 'Upstream p95 by server and method',
            unit: 's',
            description: '95th percentile upstream latency by server and MCP method.',
            queries: [{ expr: quantile(0.95, 'server, method', 'portcullis_upstream_request_duration_seconds', S), legend: '{{server}} {{method}}', exemplar: true }],
          },
        ],
      },
      {
        title: 'Failures',
        panels: [
          {
            type: 'stat',
            title: 'Circuit open, by server',
            unit: 'short',
            w: 6,
            h: 8,
            min: 0,
            max: 1,
            description: 'Whether calls to each upstream fail fast (portcullis_upstream_circuit_open): 1 open or half-open — clients get 503 + Retry-After without the upstream being called — 0 closed. Opens after servers.*.circuitBreaker.consecutiveFailures failures in a row; one probe after halfOpenAfterMs closes it again. PortcullisUpstreamCircuitOpen fires after 2 minutes.',
            queries: [{ expr: `max by (server) (portcullis_upstream_circuit_open{${S}})`, legend: '{{server}}' }],
            thresholds: [[null, 'green'], [1, 'red']],
            mappings: [{ value: 0, text: 'closed', color: 'green' }, { value: 1, text: 'open', color: 'red' }],
          },
          { type: 'timeseries', title: 'Upstream errors by server and reason', unit: 'ops', stack: true, description: 'Upstream failures per second by server and reason (refused, timeout, status_5xx, bad_response, stream_closed, process_exited …).', queries: [{ expr: sumRate('server, reason', 'portcullis_upstream_errors_total', S), legend: '{{server}}: {{reason}}' }] },
          {
            type: 'timeseries',
            title: 'Requests failed upstream, by server',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of client MCP requests per server answered with upstream_error or timeout.',
            queries: [{ expr: ratio(sumRate('server', 'portcullis_mcp_requests_total', `${S}, ${FAILED}`), sumRate('server', 'portcullis_mcp_requests_total', S)), legend: '{{server}}' }],
          },
        ],
      },
    ],
  },
  {
    file: 'portcullis-auth.json',
    uid: 'portcullis-auth',
    title: 'Portcullis / Auth and tokens',
    description: 'The authorization server (token endpoint), access-token checks on MCP requests, and the trusted IdPs\' JWKS fetches.',
    tags: ['portcullis', 'auth', 'oauth'],
    variables: [VARIABLES.server, VARIABLES.issuer],
    rows: [
      {
        title: 'Token endpoint',
        panels: [
          { type: 'timeseries', title: 'Token requests by grant type and outcome', unit: 'reqps', stack: true, description: 'POST /oauth/token per second by grant_type (jwt_bearer, authorization_code, other) and outcome (issued, rejected).', queries: [{ expr: sumRate('grant_type, outcome', 'portcullis_token_requests_total', J), legend: '{{grant_type}} {{outcome}}' }] },
          { type: 'timeseries', title: 'Token rejections by reason', unit: 'reqps', stack: true, description: 'Rejected token requests per second by reason (wrong_typ, bad_signature, untrusted_issuer, audience_mismatch, expired, replayed_jti, …): what PortcullisTokenRejectionSpike watches.', queries: [{ expr: sumRate('reason', 'portcullis_token_requests_total', `${J}, outcome="rejected"`), legend: '{{reason}}' }] },
          { type: 'timeseries', title: 'Token rejections by OAuth error', unit: 'reqps', stack: true, description: 'Rejected token requests per second by the OAuth error code returned (invalid_grant, invalid_client, invalid_request, invalid_target, invalid_scope, temporarily_unavailable …).', queries: [{ expr: sumRate('error', 'portcullis_token_requests_total', `${J}, outcome="rejected"`), legend: '{{error}}' }] },
          {
            type: 'timeseries',
            title: 'Token rejection ratio',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of token requests rejected, by grant type.',
            queries: [{ expr: ratio(sumRate('grant_type', 'portcullis_token_requests_total', `${J}, outcome="rejected"`), sumRate('grant_type', 'portcullis_token_requests_total', J)), legend: '{{grant_type}}' }],
          },
        ],
      },
      {
        title: 'Access tokens on MCP requests',
        panels: [
          { type: 'timeseries', title: 'Token validations by result', unit: 'ops', stack: true, description: 'Access tokens checked on MCP requests per second (cache hits included), by result (valid, invalid, missing).', queries: [{ expr: sumRate('result', 'portcullis_access_token_validations_total', J), legend: '{{result}}' }] },
          { type: 'timeseries', title: 'Token validation failures by reason', unit: 'ops', stack: true, description: 'Access tokens refused on MCP requests per second, by result and reason.', queries: [{ expr: sumRate('result, reason', 'portcullis_access_token_validations_total', `${J}, result!="valid"`), legend: '{{result}}: {{reason}}' }] },
          { type: 'timeseries', title: 'Unauthenticated MCP requests by server', unit: 'reqps', description: 'MCP requests answered 401 (outcome unauthenticated) per second, by server. Token validations carry no server label; this is the per-server view.', queries: [{ expr: sumRate('server', 'portcullis_mcp_requests_total', `${S}, outcome="unauthenticated"`), legend: '{{server}}' }] },
        ],
      },
      {
        title: 'Trusted IdP keys (JWKS)',
        panels: [
          { type: 'timeseries', title: 'JWKS fetches by issuer and outcome', unit: 'ops', description: 'Fetches of the trusted IdPs\' discovery documents and JWKS per second, by issuer and outcome. Fetches happen on demand: at first use, for an unknown kid, and when cached keys are older than their maximum age.', queries: [{ expr: sumRate('issuer, outcome', 'portcullis_jwks_fetches_total', `${J}, issuer=~"$issuer"`), legend: '{{issuer}} {{outcome}}' }] },
          {
            type: 'timeseries',
            title: 'JWKS fetch failure ratio',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of JWKS/discovery fetches that failed, by issuer. Keys already fetched are kept through an outage; PortcullisJwksStale fires when failures go on with no success.',
            queries: [{ expr: ratio(sumRate('issuer', 'portcullis_jwks_fetches_total', `${J}, issuer=~"$issuer", outcome!="success"`), sumRate('issuer', 'portcullis_jwks_fetches_total', `${J}, issuer=~"$issuer"`)), legend: '{{issuer}}' }],
          },
          {
            type: 'timeseries',
            title: 'Age of the newest keys by issuer',
            unit: 's',
            min: 0,
            description: 'Time since the keys of each trusted IdP were last fetched successfully, on the freshest replica. Keys are refreshed on demand when older than their maximum age (10 minutes), so under traffic this stays below that; a rising line means fetches are failing and ID-JAGs are checked against old keys.',
            queries: [{ expr: `time() - max by (issuer) (portcullis_jwks_last_success_timestamp_seconds{${J}, issuer=~"$issuer"})`, legend: '{{issuer}}' }],
          },
        ],
      },
    ],
  },
  {
    file: 'portcullis-policy.json',
    uid: 'portcullis-policy',
    title: 'Portcullis / Policy decisions',
    description: 'Tool, prompt and resource rules at work: allow, deny and would_deny (shadow mode) by reason, server and tool.',
    tags: ['portcullis', 'policy'],
    variables: [VARIABLES.server, VARIABLES.policyTool],
    rows: [
      {
        title: 'Decisions',
        panels: [
          { type: 'timeseries', title: 'Decisions by decision', unit: 'ops', stack: true, description: 'Policy decisions per second: allow, deny, would_deny (a server in shadow mode that would have denied).', queries: [{ expr: sumRate('decision', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool"`), legend: '{{decision}}' }] },
          { type: 'timeseries', title: 'Denials by reason', unit: 'ops', stack: true, description: 'deny and would_deny decisions per second by reason.', queries: [{ expr: sumRate('decision, reason', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool", decision=~"deny|would_deny"`), legend: '{{decision}}: {{reason}}' }] },
          {
            type: 'timeseries',
            title: 'Deny ratio by server',
            unit: 'percentunit',
            min: 0,
            max: 1,
            description: 'Share of decisions per server that were deny or would_deny.',
            queries: [{ expr: ratio(sumRate('server', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool", decision=~"deny|would_deny"`), sumRate('server', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool"`)), legend: '{{server}}' }],
          },
          { type: 'timeseries', title: 'Denials by server and tool', unit: 'ops', description: 'deny decisions per second by server and tool (the tool label also carries prompt names and resource URIs\' rule targets).', queries: [{ expr: sumRate('server, tool', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool", decision="deny"`), legend: '{{server}} / {{tool}}' }] },
        ],
      },
      {
        title: 'Shadow mode and top lists',
        panels: [
          { type: 'timeseries', title: 'Would deny (shadow) by server and tool', unit: 'ops', description: 'What enforcing the rules would block on servers in shadow mode: would_deny decisions per second by server, tool and reason.', queries: [{ expr: sumRate('server, tool, reason', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool", decision="would_deny"`), legend: '{{server}} / {{tool}}: {{reason}}' }] },
          { type: 'table', title: 'Most denied tools', unit: 'ops', description: 'The ten server/tool/reason triples with the most deny or would_deny decisions per second now.', queries: [{ expr: `topk(10, ${sumRate('server, tool, decision, reason', 'portcullis_policy_decisions_total', `${S}, tool=~"$tool", decision=~"deny|would_deny"`)})`, legend: '{{server}} / {{tool}}' }] },
        ],
      },
    ],
  },
  {
    file: 'portcullis-runtime.json',
    uid: 'portcullis-runtime',
    title: 'Portcullis / Runtime',
    description: 'The Node.js process of each gateway instance (prom-client default metrics): CPU, memory, event loop, GC, handles; plus the streams and sessions it holds.',
    tags: ['portcullis', 'nodejs', 'runtime'],
    variables: [VARIABLES.server],
    rows: [
      {
        title: 'Process',
        panels: [
          { type: 'timeseries', title: 'CPU', unit: 'percentunit', description: 'CPU time used per second by each instance (1 = one full core). The HPA scales on CPU.', queries: [{ expr: `sum by (instance) (${rate('process_cpu_seconds_total', J)})`, legend: '{{instance}}' }] },
          {
            type: 'timeseries',
            title: 'Memory',
            unit: 'bytes',
            description: 'Resident set size, V8 heap used and total, and external memory, per instance.',
            queries: [
              { expr: `process_resident_memory_bytes{${J}}`, legend: 'rss {{instance}}' },
              { expr: `nodejs_heap_size_used_bytes{${J}}`, legend: 'heap used {{instance}}' },
              { expr: `nodejs_heap_size_total_bytes{${J}}`, legend: 'heap total {{instance}}' },
              { expr: `nodejs_external_memory_bytes{${J}}`, legend: 'external {{instance}}' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Event loop lag',
            unit: 's',
            description: 'Event loop delay per instance: p50, p99 and max since the previous scrape. Sustained p99 above 0.25 s fires PortcullisEventLoopLagHigh.',
            queries: [
              { expr: `nodejs_eventloop_lag_p50_seconds{${J}}`, legend: 'p50 {{instance}}' },
              { expr: `nodejs_eventloop_lag_p99_seconds{${J}}`, legend: 'p99 {{instance}}' },
              { expr: `nodejs_eventloop_lag_max_seconds{${J}}`, legend: 'max {{instance}}' },
            ],
          },
          { type: 'timeseries', title: 'Time in GC', unit: 'percentunit', stack: true, description: 'Share of wall time spent in garbage collection, by instance and GC kind.', queries: [{ expr: `sum by (instance, kind) (${rate('nodejs_gc_duration_seconds_sum', J)})`, legend: '{{instance}} {{kind}}' }] },
        ],
      },
      {
        title: 'Resources',
        panels: [
          { type: 'timeseries', title: 'Active handles and requests', unit: 'short', description: 'libuv handles (sockets, timers, child processes) and requests alive, per instance.', queries: [{ expr: `nodejs_active_handles_total{${J}}`, legend: 'handles {{instance}}' }, { expr: `nodejs_active_requests_total{${J}}`, legend: 'requests {{instance}}' }] },
          { type: 'timeseries', title: 'Open file descriptors', unit: 'short', description: 'Open file descriptors per instance against the process limit.', queries: [{ expr: `process_open_fds{${J}}`, legend: 'open {{instance}}' }, { expr: `process_max_fds{${J}}`, legend: 'max {{instance}}' }] },
          { type: 'timeseries', title: 'Streams and sessions held', unit: 'short', description: 'SSE streams open to clients and MCP sessions known, by server: the per-connection memory a replica holds.', queries: [{ expr: `sum by (server) (portcullis_open_streams{${S}})`, legend: 'streams {{server}}' }, { expr: `sum by (server) (portcullis_sessions{${S}})`, legend: 'sessions {{server}}' }] },
          { type: 'stat', title: 'Uptime', unit: 's', w: 6, description: 'Time since each instance started; a drop is a restart.', queries: [{ expr: `time() - process_start_time_seconds{${J}}`, legend: '{{instance}}' }] },
          { type: 'table', title: 'Node.js versions', unit: 'short', w: 6, description: 'Instances per Node.js version.', queries: [{ expr: `count by (version) (nodejs_version_info{${J}})`, legend: '{{version}}' }] },
        ],
      },
    ],
  },
]

// --- rendering -------------------------------------------------------------------------------

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

function queryVariable (name: string, label: string, query: string): Json {
  return {
    name,
    label,
    type: 'query',
    datasource: { ...DATASOURCE },
    definition: query,
    query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.+',
    current: {},
    options: [],
    regex: '',
    sort: 1,
    hide: 0,
  }
}

function variables (spec: DashboardSpec): Json[] {
  return [
    { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, options: [], regex: '', refresh: 1, hide: 0, includeAll: false, multi: false },
    queryVariable('job', 'Job', 'label_values(portcullis_build_info, job)'),
    queryVariable('instance', 'Instance', 'label_values(portcullis_build_info{job=~"$job"}, instance)'),
    ...spec.variables.map((v) => queryVariable(v.name, v.label, v.query)),
  ]
}

function fieldConfig (panel: PanelSpec): Json {
  const defaults: { [key: string]: Json } = { unit: panel.unit }
  if (panel.min !== undefined) defaults.min = panel.min
  if (panel.max !== undefined) defaults.max = panel.max
  if (panel.type === 'timeseries') {
    defaults.color = { mode: 'palette-classic' }
    defaults.custom = {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: panel.stack === true ? 40 : 10,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: panel.stack === true ? 'normal' : 'none', group: 'A' },
    }
  }
  if (panel.thresholds !== undefined) {
    defaults.color = { mode: 'thresholds' }
    defaults.thresholds = { mode: 'absolute', steps: panel.thresholds.map(([value, color]) => ({ value, color })) }
  }
  if (panel.mappings !== undefined) {
    defaults.mappings = [{
      type: 'value',
      options: Object.fromEntries(panel.mappings.map(({ value, text, color }, index) => [String(value), { text, color, index }])),
    }]
  }
  return { defaults, overrides: [] }
}

function options (panel: PanelSpec): Json {
  switch (panel.type) {
    case 'timeseries':
      return { legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['mean', 'max', 'lastNotNull'] }, tooltip: { mode: 'multi', sort: 'desc' } }
    case 'stat':
      return { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', justifyMode: 'auto', orientation: 'auto', textMode: 'auto' }
    case 'bargauge':
      return { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true }
    case 'heatmap':
      return {
        calculate: false,
        yAxis: { axisPlacement: 'left', unit: panel.unit },
        cellGap: 1,
        color: { mode: 'scheme', scheme: 'Oranges', fill: 'dark-orange', scale: 'exponential', exponent: 0.5, steps: 64, reverse: false },
        exemplars: { color: 'rgba(255,0,255,0.7)' },
        filterValues: { le: 1e-9 },
        rowsFrame: { layout: 'auto' },
        tooltip: { mode: 'single', yHistogram: true },
        legend: { show: true },
      }
    case 'table':
      return { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } }
  }
}

function target (panel: PanelSpec, query: Query, index: number): Json {
  const instant = panel.type === 'table'
  const t: { [key: string]: Json } = {
    refId: String.fromCharCode(65 + index),
    datasource: { ...DATASOURCE },
    editorMode: 'code',
    expr: query.expr,
    legendFormat: query.legend ?? '__auto',
    range: !instant,
    instant,
  }
  if (panel.type === 'heatmap') t.format = 'heatmap'
  if (panel.type === 'table') t.format = 'table'
  if (query.exemplar === true) t.exemplar = true
  return t
}

function renderDashboard (spec: DashboardSpec): Json {
  const panels: Json[] = []
  let id = 1
  let y = 0
  for (const row of spec.rows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] })
    y += 1
    let x = 0
    let lineHeight = 0
    for (const panel of row.panels) {
      const w = panel.w ?? (panel.type === 'stat' ? 4 : 12)
      const h = panel.h ?? (panel.type === 'stat' ? 4 : 8)
      if (x + w > 24) {
        x = 0
        y += lineHeight
        lineHeight = 0
      }
      const rendered: { [key: string]: Json } = {
        id: id++,
        type: panel.type,
        title: panel.title,
        description: panel.description,
        datasource: { ...DATASOURCE },
        gridPos: { h, w, x, y },
        fieldConfig: fieldConfig(panel),
        options: options(panel),
        targets: panel.queries.map((q, i) => target(panel, q, i)),
      }
      if (panel.type === 'table') {
        rendered.transformations = [{ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: panel.unit === 'short' ? 'count' : 'per second' } } }]
      }
      panels.push(rendered)
      x += w
      lineHeight = Math.max(lineHeight, h)
    }
    y += lineHeight
  }
  return {
    id: null,
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: [...spec.tags],
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: '',
    weekStart: '',
    links: [{ title: 'Portcullis', type: 'dashboards', tags: ['portcullis'], asDropdown: true, includeVars: true, keepTime: true, icon: 'external link', targetBlank: false, tooltip: '', url: '' }],
    annotations: {
      list: [{ builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' }],
    },
    templating: { list: variables(spec) },
    panels,
  }
}

/** file name → dashboard JSON, exactly as written to grafana/dashboards/ */
export function buildDashboards (): Map<string, Json> {
  return new Map(DASHBOARDS.map((spec) => [spec.file, renderDashboard(spec)]))
}

export const README_START = '<!-- panels:start (generated by build-dashboards.ts) -->'
export const README_END = '<!-- panels:end -->'

/** the panel → metric table of grafana/README.md */
export function panelTable (): string {
  const lines: string[] = []
  for (const spec of DASHBOARDS) {
    lines.push(`### ${spec.title} (\`${spec.uid}\`, ${spec.file})`, '', spec.description, '', '| Row | Panel | Unit | Metrics |', '|---|---|---|---|')
    for (const row of spec.rows) {
      for (const panel of row.panels) {
        const metrics = [...new Set(panel.queries.flatMap((q) => [...q.expr.matchAll(/\b((?:portcullis|process|nodejs)_[a-z0-9_]+)\{/g)].map((m) => m[1] ?? '')))]
        lines.push(`| ${row.title} | ${panel.title} | \`${panel.unit}\` | ${metrics.map((m) => `\`${m}\``).join(', ')} |`)
      }
    }
    lines.push('')
  }
  return lines.join('\n')
}

export function readmeWithTable (readme: string): string {
  const start = readme.indexOf(README_START)
  const end = readme.indexOf(README_END)
  if (start === -1 || end < start) throw new Error(`grafana/README.md lacks the ${README_START} … ${README_END} markers`)
  return `${readme.slice(0, start + README_START.length)}\n\n${panelTable()}\n${readme.slice(end)}`
}

if (import.meta.main) {
  const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
  for (const [file, dashboard] of buildDashboards()) {
    writeFileSync(here(`dashboards/${file}`), `${JSON.stringify(dashboard, null, 2)}\n`)
  }
  const readmePath = here('README.md')
  writeFileSync(readmePath, readmeWithTable(readFileSync(readmePath, 'utf8')))
}
