// Traces over OTLP from the real gateway process (design.md §6: configured only by the standard
// OTEL_* variables, http/json and http/protobuf both supported; §7: an exporter that is down never
// slows or breaks a request). `node bin/portcullis.js start` runs in front of a recording upstream
// with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a loopback OTLP receiver (test/helpers/
// otlp-receiver.ts, which decodes both encodings); then at a closed port and at a collector that
// accepts connections and never answers.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { SimpleSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLP_KIND, OTLP_STATUS, startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { CLOSED_PORT } from '../helpers/ports.ts'
import { POST_HEADERS, rawInitialize, readMessages, type RawSession } from '../helpers/raw-mcp.ts'
import { dropClientConnections } from '../helpers/mcp-http.ts'

const BIN = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url))

type Protocol = 'http/json' | 'http/protobuf'
const CONTENT_TYPE: Record<Protocol, string> = { 'http/json': 'application/json', 'http/protobuf': 'application/x-protobuf' }

const upstream = await startRecordingUpstream()
const dir = await mkdtemp(join(tmpdir(), 'portcullis-otlp-'))
const configPath = join(dir, 'portcullis.yaml')
await writeFile(configPath, `
publicUrl: http://127.0.0.1:1
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
servers:
  demo:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: [echo] }]
`)
t.teardown(async () => {
  await dropClientConnections()
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

// ---- a gateway process ---------------------------------------------------------------------------

interface GatewayProcess {
  readonly mcpUrl: string
  /** stdout lines (JSON log lines) */
  readonly lines: string[]
  stderr (): string
  close (): Promise<void>
  /** SIGTERM, then wait up to `waitMs` for the process to end by itself (never SIGKILLed before) */
  stop (waitMs: number): Promise<{ code: number | null, signal: string | null, ms: number }>
}

async function spawnGateway (otel: Record<string, string>): Promise<GatewayProcess> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OTEL_')) env[k] = v
  Object.assign(env, { PORTCULLIS_LOG_LEVEL: 'info', PORTCULLIS_AUDIT_PSEUDONYM_KEY: 'otlp-test-pseudonym-key-0123456789abcdef' }, otel)
  const child = spawn(process.execPath, [BIN, 'start', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let stderr = ''
  let partial = ''
  child.stdout.on('data', (c: Buffer) => {
    const parts = (partial + c.toString('utf8')).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts.filter((l) => l !== ''))
  })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    // our keep-alive connections would hold the gateway's drain open
    await dropClientConnections()
    child.kill('SIGTERM')
    // A shim whose exporter is stuck on a black hole may take its export timeout to flush: don't wait for it.
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
  const stop = async (waitMs: number): Promise<{ code: number | null, signal: string | null, ms: number }> => {
    await dropClientConnections()
    const started = performance.now()
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), waitMs)
    await exited
    clearTimeout(timer)
    return { code: child.exitCode, signal: child.signalCode, ms: performance.now() - started }
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    const listening = lines.map((l) => { try { return JSON.parse(l) as { msg?: string, url?: string } } catch { return {} } })
      .find((l) => l.msg === 'portcullis listening')
    if (listening?.url !== undefined) return { mcpUrl: `${listening.url}/mcp/demo`, lines, stderr: () => stderr, close, stop }
    if (child.exitCode !== null || Date.now() > deadline) {
      await close()
      throw new Error(`the gateway did not start (exit ${child.exitCode}):\n${stderr}\n${lines.join('\n')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

interface CallResult { readonly ok: boolean; readonly ms: number; readonly id: string }

async function echo (url: string, session: RawSession, message: string, id = `echo-${randomBytes(6).toString('hex')}`): Promise<CallResult> {
  const started = performance.now()
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
      signal: AbortSignal.timeout(5000),
    })
    const [answer] = await readMessages(res)
    const text = (answer?.result as { content?: Array<{ text?: string }> } | undefined)?.content?.[0]?.text
    return { ok: res.statusCode === 200 && text === message, ms: performance.now() - started, id }
  } catch {
    return { ok: false, ms: performance.now() - started, id }
  }
}

const isCall = (kind: number) => (s: ReceivedSpan): boolean => s.name === 'tools/call echo' && s.kind === kind

// ---- the receiver itself -------------------------------------------------------------------------

t.test('the OTLP receiver decodes what the OpenTelemetry exporters send', async (t) => {
  for (const protocol of ['http/json', 'http/protobuf'] as const) {
    const receiver = await startOtlpReceiver()
    const exporter = (protocol === 'http/json' ? new JsonExporter({ url: receiver.tracesUrl }) : new ProtoExporter({ url: receiver.tracesUrl })) as unknown as SpanExporter
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
    const tracer = provider.getTracer('receiver-check')
    const parent = tracer.startSpan('parent op', { kind: SpanKind.SERVER, attributes: { s: 'text', i: 42, big: 2 ** 40, d: 1.5, b: true, list: ['a', 'b'] } })
    const child = tracer.startSpan('child op', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), parent))
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'it broke' })
    child.end()
    parent.end()
    await provider.forceFlush()
    const spans = await receiver.waitFor((s) => s.length >= 2, 5000)
    await provider.shutdown()
    await receiver.close()
    t.ok(receiver.requests.every((r) => r.contentType === CONTENT_TYPE[protocol] && r.body.length > 0 && r.error === undefined), `${protocol}: ${CONTENT_TYPE[protocol]}, decoded`)
    const p = spans.find((s) => s.name === 'parent op')
    const c = spans.find((s) => s.name === 'child op')
    t.equal(p?.kind, OTLP_KIND.SERVER, `${protocol}: SERVER kind`)
    t.equal(c?.kind, OTLP_KIND.CLIENT, `${protocol}: CLIENT kind`)
    t.equal(p?.traceId, parent.spanContext().traceId, `${protocol}: trace id`)
    t.equal(p?.spanId, parent.spanContext().spanId, `${protocol}: span id`)
    t.equal(p?.parentSpanId, '', `${protocol}: a root has no parent`)
    t.equal(c?.parentSpanId, parent.spanContext().spanId, `${protocol}: parent link`)
    t.same(p?.attributes, { s: 'text', i: 42, big: 2 ** 40, d: 1.5, b: true, list: ['a', 'b'] }, `${protocol}: attributes of every type`)
    t.same(c?.status, { code: OTLP_STATUS.ERROR, message: 'it broke' }, `${protocol}: status`)
    t.equal(p?.scope, 'receiver-check', `${protocol}: instrumentation scope`)
    t.type(p?.resource['service.name'], 'string', `${protocol}: resource attributes`)
  }
})

// ---- the gateway exports its spans ---------------------------------------------------------------

async function exportRun (t: Test, protocol: Protocol): Promise<void> {
  const receiver = await startOtlpReceiver()
  const gw = await spawnGateway({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    // only traces: the SDK would otherwise also set up an OTLP log exporter
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
  })
  try {
    const argument = `otlp-arg-${randomBytes(8).toString('hex')}`
    const session = await rawInitialize(gw.mcpUrl)
    const call = await echo(gw.mcpUrl, session, argument)
    t.ok(call.ok, 'the tool call succeeded')
    let spans: ReceivedSpan[]
    try {
      spans = await receiver.waitFor((s) => s.some(isCall(OTLP_KIND.SERVER)) && s.some(isCall(OTLP_KIND.CLIENT)), 10_000)
    } catch {
      spans = receiver.spans()
    }
    const server = spans.find(isCall(OTLP_KIND.SERVER))
    const client = spans.find(isCall(OTLP_KIND.CLIENT))
    t.ok(server !== undefined && client !== undefined, `the receiver got \`tools/call echo\` as a SERVER and a CLIENT span over ${protocol}`)
    if (server === undefined || client === undefined) return

    t.ok(receiver.requests.length > 0 && receiver.requests.every((r) => r.path === '/v1/traces' && r.contentType === CONTENT_TYPE[protocol] && r.body.length > 0),
      `every export was a non-empty ${CONTENT_TYPE[protocol]} POST to /v1/traces`)
    t.same(receiver.requests.filter((r) => r.error !== undefined).map((r) => r.error), [], 'and decoded completely')
    t.has(server.attributes, {
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'gen_ai.operation.name': 'execute_tool',
      'jsonrpc.request.id': call.id,
      'mcp.protocol.version': session.protocolVersion,
      'portcullis.server': 'demo',
      'portcullis.policy.decision': 'allow',
    }, 'the SERVER span\'s attributes survived the export')
    const sessionAttribute = server.attributes['mcp.session.id']
    t.match(sessionAttribute, /^[A-Za-z0-9_-]{16,}$/, 'mcp.session.id: a pseudonym of the session')
    t.not(sessionAttribute, session.sessionId, 'never the session id itself')
    t.equal(client.traceId, server.traceId, 'CLIENT in the same trace')
    t.equal(client.parentSpanId, server.spanId, 'CLIENT is the SERVER span\'s child')
    t.equal(server.parentSpanId, '', 'SERVER is a root (the client sent no context)')
    t.equal(server.resource['service.name'], 'portcullis', 'service.name defaults to portcullis')
    t.equal(server.scope, 'portcullis', 'instrumentation scope')
    t.not(server.status.code, OTLP_STATUS.ERROR)
    for (const s of spans.filter((x) => x.kind === OTLP_KIND.CLIENT)) {
      t.ok(spans.some((x) => x.spanId === s.parentSpanId) || s.parentSpanId === '', `CLIENT ${s.name}: its parent was exported too (or it is a root)`)
    }

    const sent = upstream.requests.find((r) => r.body.includes(`"${call.id}"`))
    t.equal(sent?.headers.traceparent, `00-${client.traceId}-${client.spanId}-01`, 'the upstream got traceparent = the exported CLIENT span')
    t.equal((JSON.parse(sent?.body ?? '{}') as { params?: { _meta?: { traceparent?: string } } }).params?._meta?.traceparent,
      `00-${client.traceId}-${client.spanId}-01`, '… in params._meta too')

    // stdout is buffered (flushed every 200 ms): wait for the line rather than race the flush
    const auditLine = (): Record<string, unknown> | undefined => gw.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['log.type'] === 'audit' && l['jsonrpc.request.id'] === call.id)
    for (const until = Date.now() + 5000; auditLine() === undefined && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 20))
    const audit = auditLine()
    t.equal(audit?.trace_id, server.traceId, 'the audit line on stdout names the exported trace')
    t.equal(audit?.span_id, server.spanId)
    t.notOk(receiver.requests.some((r) => r.body.includes(argument)), 'the tool argument is in no export')
    t.notOk(gw.lines.some((l) => l.includes(argument)), 'nor in the gateway\'s stdout')
  } finally {
    await gw.close()
    await receiver.close()
  }
}

for (const protocol of ['http/json', 'http/protobuf'] as const) {
  t.test(`portcullis start exports spans over OTLP ${protocol}`, (t) => exportRun(t, protocol))
}

// ---- an exporter that is down ---------------------------------------------------------------------

/**
 * Echo calls alternating between `gw` and the `baseline` gateway, for at least `ms` (at least 20
 * each, at most 300): whatever else loads the machine weighs on both alike. The first 3 of each warm up.
 */
async function alternate (gw: GatewayProcess, baseline: GatewayProcess, ms: number): Promise<{ subject: CallResult[], baseline: CallResult[] }> {
  const [a, b] = [await rawInitialize(gw.mcpUrl), await rawInitialize(baseline.mcpUrl)]
  for (let i = 0; i < 3; i++) {
    await echo(gw.mcpUrl, a, 'warm-up')
    await echo(baseline.mcpUrl, b, 'warm-up')
  }
  const out = { subject: [] as CallResult[], baseline: [] as CallResult[] }
  const until = performance.now() + ms
  while ((performance.now() < until || out.subject.length < 20) && out.subject.length < 300) {
    out.subject.push(await echo(gw.mcpUrl, a, 'load'))
    out.baseline.push(await echo(baseline.mcpUrl, b, 'load'))
  }
  return out
}

const percentile = (xs: number[], p: number): number => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN
const summary = (rs: CallResult[]): string => {
  const ms = rs.map((r) => r.ms)
  return `${rs.length} calls, p50 ${percentile(ms, 0.5).toFixed(1)} ms, p95 ${percentile(ms, 0.95).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`
}

t.test('a collector that is down never slows or fails a request', async (t) => {
  // A collector that accepts connections and never answers: exports hang until their timeout.
  const held: Socket[] = []
  const blackhole = createServer((socket) => { held.push(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  const blackholeUrl = `http://127.0.0.1:${(blackhole.address() as { port: number }).port}`
  t.teardown(async () => {
    for (const s of held) s.destroy()
    await new Promise<void>((resolve) => blackhole.close(() => resolve()))
  })
  const closedUrl = `http://127.0.0.1:${CLOSED_PORT}`
  const down = (endpoint: string, protocol: Protocol): Record<string, string> => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
  })

  // The baseline: the same gateway without an exporter, called in turn with each subject.
  const baseline = await spawnGateway({})
  t.teardown(() => baseline.close())
  const runs: Array<[string, Record<string, string>]> = [
    ['endpoint a closed port', down(closedUrl, 'http/protobuf')],
    ['endpoint never answers', down(blackholeUrl, 'http/json')],
  ]
  for (const [name, otel] of runs) {
    const gw = await spawnGateway(otel)
    let results: { subject: CallResult[], baseline: CallResult[] }
    try {
      results = await alternate(gw, baseline, 1000)
    } finally {
      await gw.close()
    }
    t.comment(`${name}: ${summary(results.subject)}; baseline alongside: ${summary(results.baseline)}`)
    const ms = results.subject.map((r) => r.ms)
    const max = Math.max(...ms)
    t.equal(results.subject.filter((r) => !r.ok).length, 0, `${name}: all ${results.subject.length} calls succeeded`)
    t.equal(results.baseline.filter((r) => !r.ok).length, 0, `${name}: and the baseline's`)
    t.ok(max < 1000, `${name}: the slowest call took ${max.toFixed(0)} ms (< 1 s)`)
    // Not a benchmark: "never slows" with room for scheduling noise.
    const [p50, base] = [percentile(ms, 0.5), percentile(results.baseline.map((r) => r.ms), 0.5)]
    t.ok(p50 <= 2 * base + 5, `${name}: median ${p50.toFixed(1)} ms is within 2× the baseline's ${base.toFixed(1)} ms (+5 ms)`)
  }
  t.ok(held.length > 0, 'the exporters did try the collector that never answers')
})

t.test('a collector that never answers holds up a stop by 5 s at most, after the audit lines are out', async (t) => {
  const held: Socket[] = []
  const blackhole = createServer((socket) => { held.push(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of held) s.destroy()
    await new Promise<void>((resolve) => blackhole.close(() => resolve()))
  })
  // The SDK's own timeouts (OTLP 10 s, a batch export 30 s) would hold the stop past the pod's
  // grace period (deploy/kubernetes/base/deployment.yaml); the spans wait in the batch (a long
  // schedule delay), so the stop itself is what tries to export them.
  const gw = await spawnGateway({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(blackhole.address() as { port: number }).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_BSP_SCHEDULE_DELAY: '60000',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
  })
  const session = await rawInitialize(gw.mcpUrl)
  const call = await echo(gw.mcpUrl, session, 'the last call before the stop')
  t.ok(call.ok, 'the call went through')
  const stopped = await gw.stop(20_000)
  t.equal(stopped.signal, null, 'the gateway ended by itself, not by SIGKILL')
  t.equal(stopped.code, 0, 'exit code 0')
  t.ok(stopped.ms < 9_000, `it stopped in ${Math.round(stopped.ms)} ms (< 9 s: 5 s for the spans, the drain, a margin)`)
  const parsed = gw.lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown> } catch { return {} } })
  t.ok(parsed.some((l) => l['log.type'] === 'audit' && l['jsonrpc.request.id'] === call.id), 'the call\'s audit line was written')
  const dropped = parsed.find((l) => typeof l.msg === 'string' && l.msg.startsWith('traces not flushed'))
  t.equal(dropped?.level, 40, 'a warning says the last spans were dropped')
  t.ok(held.length > 0, 'the stop did try the collector')
})
