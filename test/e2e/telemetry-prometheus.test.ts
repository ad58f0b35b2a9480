// A real Prometheus (Debian's package; .ci/run installs it) scrapes the gateway's admin /metrics
// every second while tool calls go through, and sees the tool-call series and a trace_id exemplar
// that names a span the gateway made (design.md §6: OpenMetrics with exemplars when sampled;
// reference/observability.md §3.4, §4.7). Prometheus runs on its own temp config, TSDB directory
// and free loopback port, and is always killed at teardown.
import t from 'tap'
import { request } from 'undici'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace'
import { SpanKind } from '@opentelemetry/api'
import { startTracing } from '../../src/telemetry/tracing.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { POST_HEADERS, rawInitialize, readMessages } from '../helpers/raw-mcp.ts'
import { dropClientConnections } from '../helpers/mcp-http.ts'
import { PROMETHEUS_BIN, prometheusAvailable, startPrometheus } from '../helpers/prometheus.ts'

if (!prometheusAvailable()) {
  t.plan(0, `${PROMETHEUS_BIN} is missing: install Debian's prometheus package (apt-get install -y --no-install-recommends prometheus; .ci/run does) to run this test`)
} else {
  await run()
}

interface VectorSample { metric: Record<string, string>; value: [number, string] }
interface ExemplarSeries { seriesLabels: Record<string, string>; exemplars: Array<{ labels: Record<string, string>; value: string; timestamp: number }> }

async function run (): Promise<void> {
  const exporter = new InMemorySpanExporter()
  const stopTracing = await startTracing({}, [new SimpleSpanProcessor({ exporter })])
  const upstream = await startRecordingUpstream()
  const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  demo:
    upstream: { url: ${upstream.url} }
    auth: none
    tools:
      - allow: [echo]
      - deny: [secret]
        id: no-secrets
`)
  let stop = false
  let traffic: Promise<void> = Promise.resolve()
  t.teardown(async () => {
    stop = true
    await traffic
    await dropClientConnections()
    await gw.close()
    await upstream.close()
    await stopTracing?.()
  })

  const prom = await startPrometheus({ targets: [new URL(gw.adminUrl).host], scrapeInterval: '1s' })
  t.teardown(async () => { await prom.close() })

  // Traffic for the whole test: an allowed and a denied call every ~100 ms.
  const session = await rawInitialize(gw.mcpUrl('demo'))
  let calls = 0
  let failures = 0
  const callTool = async (id: number, name: string): Promise<void> => {
    calls++
    try {
      const res = await request(gw.mcpUrl('demo'), {
        method: 'POST',
        headers: { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { message: 'hello' } } }),
        signal: AbortSignal.timeout(5000),
      })
      const [answer] = await readMessages(res)
      if (res.statusCode !== 200 || (name === 'echo' ? answer?.result === undefined : answer?.error?.code !== -32602)) failures++
    } catch {
      failures++
    }
  }
  traffic = (async () => {
    const started = Date.now()
    for (let id = 1; !stop || Date.now() - started < 5000; id += 2) {
      await callTool(id, 'echo')
      await callTool(id + 1, 'secret')
      await new Promise((resolve) => setTimeout(resolve, 100))
      if (Date.now() - started > 60_000) break
    }
  })()

  await t.test('Prometheus scrapes the gateway', async (t) => {
    const target = await prom.until('a healthy scrape of the gateway', async () => {
      const data = await prom.api<{ activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }>('targets', {})
      const found = data.activeTargets.find((x) => x.scrapeUrl === `${gw.adminUrl}/metrics`)
      return found?.health === 'up' ? found : undefined
    })
    t.equal(target.lastError, '', 'the exposition parsed without error')
    const up = await prom.api<{ result: VectorSample[] }>('query', { query: 'up{job="portcullis"}' })
    t.equal(up.result[0]?.value[1], '1', 'up == 1')
  })

  await t.test('the tool-call series', async (t) => {
    const result = await prom.until('portcullis_tool_calls_total series', async () => {
      const data = await prom.api<{ result: VectorSample[] }>('query', { query: 'portcullis_tool_calls_total' })
      const has = (tool: string, outcome: string): boolean => data.result.some((s) => s.metric.server === 'demo' && s.metric.tool === tool && s.metric.outcome === outcome && Number(s.value[1]) > 0)
      return has('echo', 'success') && has('secret', 'denied') ? data.result : undefined
    })
    const echo = result.find((s) => s.metric.tool === 'echo')
    t.same(Object.keys(echo?.metric ?? {}).sort(), ['__name__', 'instance', 'job', 'outcome', 'server', 'tool'], 'labels: server, tool, outcome (+ job, instance)')
    t.equal(echo?.metric.job, 'portcullis')
    const secret = result.find((s) => s.metric.tool === 'secret')
    t.equal(secret?.metric.outcome, 'denied')
    // The counter keeps rising while traffic flows.
    const later = await prom.until('a higher count on a later scrape', async () => {
      const data = await prom.api<{ result: VectorSample[] }>('query', { query: 'portcullis_tool_calls_total{tool="echo",outcome="success"}' })
      const v = Number(data.result[0]?.value[1])
      return v > Number(echo?.value[1]) ? v : undefined
    })
    t.ok(later > Number(echo?.value[1]), 'the counter advanced between scrapes')
    const histogram = await prom.api<{ result: VectorSample[] }>('query', { query: 'portcullis_tool_call_duration_seconds_count{tool="echo",outcome="success"}' })
    t.ok(Number(histogram.result[0]?.value[1]) > 0, 'the duration histogram has a _count')
    const rate = await prom.until('a rate() over the histogram', async () => {
      const data = await prom.api<{ result: VectorSample[] }>('query', {
        query: 'histogram_quantile(0.99, sum by (le) (rate(portcullis_tool_call_duration_seconds_bucket{server="demo",tool="echo"}[10s])))',
      })
      const v = Number(data.result[0]?.value[1])
      return Number.isFinite(v) ? v : undefined
    })
    t.ok(rate > 0 && rate < 60, `p99 from the buckets: ${rate.toFixed(4)} s`)
  })

  await t.test('an exemplar with the trace id of a gateway span', async (t) => {
    const start = String(Math.floor(Date.now() / 1000) - 600)
    const exemplars = await prom.until('an exemplar on portcullis_tool_call_duration_seconds_bucket', async () => {
      const data = await prom.api<ExemplarSeries[]>('query_exemplars', {
        query: 'portcullis_tool_call_duration_seconds_bucket', start, end: String(Math.ceil(Date.now() / 1000) + 60),
      })
      const all = data.flatMap((series) => series.exemplars.map((e) => ({ series: series.seriesLabels, exemplar: e })))
      return all.some((x) => /^[0-9a-f]{32}$/.test(x.exemplar.labels.trace_id ?? '')) ? all : undefined
    })
    const withTrace = exemplars.filter((x) => x.exemplar.labels.trace_id !== undefined)
    t.ok(withTrace.length > 0, `${withTrace.length} exemplars with a trace_id`)
    const traceIds = new Set(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER).map((s) => s.spanContext().traceId))
    t.ok(withTrace.every((x) => traceIds.has(x.exemplar.labels.trace_id as string)), 'each names the trace of a SERVER span the gateway made')
    const echo = withTrace.find((x) => x.series.tool === 'echo')
    t.ok(echo, 'an exemplar on an echo bucket')
    t.equal(echo?.series.__name__, 'portcullis_tool_call_duration_seconds_bucket')
    t.ok(Number(echo?.exemplar.value) > 0 && Number(echo?.exemplar.value) <= Number(echo?.series.le === '+Inf' ? Infinity : echo?.series.le),
      'its value (the observed duration) lies within its bucket')
    const counter = await prom.api<ExemplarSeries[]>('query_exemplars', {
      query: 'portcullis_tool_calls_total', start, end: String(Math.ceil(Date.now() / 1000) + 60),
    })
    t.ok(counter.some((s) => s.exemplars.some((e) => traceIds.has(e.labels.trace_id ?? ''))), 'the counter carries trace_id exemplars too')
  })
  await t.test('the traffic', async (t) => {
    stop = true
    await traffic
    t.ok(calls >= 40, `${calls} tool calls during the test (at least 5 s of traffic)`)
    t.equal(failures, 0, 'all answered as expected')
  })
}
