import t from 'tap'
import { context, propagation, trace } from '@opentelemetry/api'
import { startTracing, tracer, tracingActive } from '../../src/telemetry/tracing.ts'

// Which OTEL_* settings start tracing (src/telemetry/tracing.ts startTracing). When it does not
// start, the request path skips all span work (tracingActive() is false); when it does, spans are
// real and recorded. The collector address is a closed port: nothing here waits for an export.

const endpoint = 'http://127.0.0.1:9'

const cases: ReadonlyArray<{ readonly name: string; readonly env: Record<string, string>; readonly sdk: boolean; readonly traces: boolean }> = [
  { name: 'no OTEL_* at all', env: {}, sdk: false, traces: false },
  { name: 'an OTLP endpoint', env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: true, traces: true },
  { name: 'a traces endpoint', env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` }, sdk: true, traces: true },
  { name: 'OTEL_TRACES_EXPORTER=otlp', env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: true, traces: true },
  { name: 'OTEL_SDK_DISABLED=true with an endpoint', env: { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: false, traces: false },
  { name: 'OTEL_TRACES_EXPORTER=none', env: { OTEL_TRACES_EXPORTER: 'none' }, sdk: false, traces: false },
  { name: 'OTEL_TRACES_EXPORTER=none with an endpoint', env: { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: false, traces: false },
  { name: 'OTEL_TRACES_EXPORTER=" none , none"', env: { OTEL_TRACES_EXPORTER: ' none , none', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: false, traces: false },
  { name: 'OTEL_TRACES_EXPORTER=none,otlp (the SDK exports with otlp)', env: { OTEL_TRACES_EXPORTER: 'none,otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, sdk: true, traces: true },
  { name: 'OTEL_TRACES_EXPORTER=none and OTLP metrics asked for', env: { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_METRIC_EXPORT_INTERVAL: '600000' }, sdk: true, traces: false },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const stop = await startTracing(c.env)
    t.teardown(async () => {
      await stop?.()
      // Let the next case register its own providers.
      trace.disable()
      context.disable()
      propagation.disable()
    })
    t.equal(stop !== undefined, c.sdk, c.sdk ? 'the SDK started' : 'the SDK did not start')
    t.equal(tracingActive(), c.traces, c.traces ? 'the request path makes spans' : 'the request path makes no spans')
    if (c.traces) {
      // Not ended: an ended span would be exported to the closed port when the SDK stops.
      t.ok(tracer().startSpan('tools/call probe').isRecording(), 'and they are recorded by the SDK')
    }
  })
}
