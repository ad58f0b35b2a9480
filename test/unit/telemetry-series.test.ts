import t from 'tap'
import { Counter, Histogram, Registry, type OpenMetricsContentType } from 'prom-client'
import { CounterSeries, HistogramSeries, SeriesTable } from '../../src/telemetry/series.ts'

// The bound handles of series.ts write into prom-client's own series entries. Whatever sequence
// of updates they get, the exposition must be byte for byte what prom-client's public API
// produces for the same sequence: two registries, one fed through handles, one through
// inc()/observe(), compared after every step.

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

function pair () {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const counter = new Counter({ name: 'c_total', help: 'c', labelNames: ['server', 'outcome'] as const, registers: [registry], enableExemplars: true })
  const plainCounter = new Counter({ name: 'p_total', help: 'p', labelNames: ['reason'] as const, registers: [registry] })
  const histogram = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['server', 'outcome'] as const, buckets: BUCKETS, registers: [registry], enableExemplars: true })
  const plainHistogram = new Histogram({ name: 'u_seconds', help: 'u', labelNames: ['server'] as const, buckets: BUCKETS, registers: [registry] })
  return { registry, counter, plainCounter, histogram, plainHistogram }
}

/** Exemplar timestamps are the wall clock of the update: equal them out. */
async function text (registry: Registry<OpenMetricsContentType>): Promise<string> {
  return (await registry.metrics()).replace(/( # \{[^}]*\} \S+) \S+$/gm, '$1 <ts>')
}

type Step =
  | { kind: 'count'; server: string; outcome: string; exemplar?: string }
  | { kind: 'plainCount'; reason: string }
  | { kind: 'observe'; server: string; outcome: string; value: number; exemplar?: string }
  | { kind: 'plainObserve'; server: string; value: number }
  | { kind: 'reset' }
  | { kind: 'publicFirst'; server: string; outcome: string; value: number }

// Values on, just below and just above bucket bounds, past the last bound, zero, tiny.
const VALUES = [0, 1e-9, 0.005, 0.0050001, 0.0049, 0.01, 0.3, 1, 2.5, 59.999, 60, 60.0001, 3600, 0.025, 7.5]

const scenarios: Array<{ name: string; steps: Step[] }> = [
  { name: 'one series, every value', steps: VALUES.map((value) => ({ kind: 'observe', server: 'a', outcome: 'success', value })) },
  {
    name: 'counters and histograms across label sets',
    steps: VALUES.flatMap((value, i): Step[] => [
      { kind: 'count', server: i % 2 === 0 ? 'a' : 'b', outcome: i % 3 === 0 ? 'success' : 'tool_error' },
      { kind: 'observe', server: i % 2 === 0 ? 'a' : 'b', outcome: i % 3 === 0 ? 'success' : 'tool_error', value },
      { kind: 'plainCount', reason: i % 2 === 0 ? '' : 'expired' },
      { kind: 'plainObserve', server: i % 4 === 0 ? 'a' : 'c', value },
    ]),
  },
  {
    name: 'exemplars on some updates (the public path) between handle updates',
    steps: VALUES.flatMap((value, i): Step[] => [
      { kind: 'count', server: 'a', outcome: 'success', ...(i % 4 === 1 ? { exemplar: `trace${i}` } : {}) },
      { kind: 'observe', server: 'a', outcome: 'success', value, ...(i % 3 === 1 ? { exemplar: `trace${i}` } : {}) },
    ]),
  },
  {
    name: 'exemplars again in buckets that have one (updated in place), +Inf included',
    steps: [3600, 3600, 0.3, 0.3, 100, 0.001, 0.002, 0.3].flatMap((value, i): Step[] => [
      { kind: 'observe', server: 'a', outcome: 'success', value, exemplar: `t${i}` },
      { kind: 'count', server: 'a', outcome: 'success', exemplar: `t${i}` },
      { kind: 'observe', server: 'a', outcome: 'success', value },
    ]),
  },
  {
    name: 'an exemplar prom-client refuses (over 128 characters) is refused the same way',
    steps: [
      { kind: 'observe', server: 'a', outcome: 'success', value: 0.3, exemplar: 'short' },
      { kind: 'observe', server: 'a', outcome: 'success', value: 0.3, exemplar: 'x'.repeat(130) },
    ],
  },
  {
    name: 'a reset in the middle: handles rebind to the new series',
    steps: [
      ...VALUES.slice(0, 5).map((value): Step => ({ kind: 'observe', server: 'a', outcome: 'success', value })),
      { kind: 'count', server: 'a', outcome: 'success' },
      { kind: 'plainCount', reason: 'x' },
      { kind: 'reset' },
      ...VALUES.slice(5).map((value): Step => ({ kind: 'observe', server: 'a', outcome: 'success', value })),
      { kind: 'count', server: 'a', outcome: 'success' },
      { kind: 'plainCount', reason: 'x' },
    ],
  },
  {
    name: 'a series the public API created before the handle bound',
    steps: [
      { kind: 'publicFirst', server: 'a', outcome: 'success', value: 0.02 },
      { kind: 'observe', server: 'a', outcome: 'success', value: 0.02 },
      { kind: 'count', server: 'a', outcome: 'success' },
    ],
  },
]

for (const { name, steps } of scenarios) {
  t.test(name, async (t) => {
    const viaHandles = pair()
    const viaApi = pair()
    const h = viaHandles
    const counters = new SeriesTable(([server, outcome]: [string, string]) => new CounterSeries(h.counter, { server, outcome }, true))
    const plainCounters = new SeriesTable(([reason]: [string]) => new CounterSeries(h.plainCounter, { reason }, false))
    const histograms = new SeriesTable(([server, outcome]: [string, string]) => new HistogramSeries(h.histogram, { server, outcome }, BUCKETS, true))
    const plainHistograms = new SeriesTable(([server]: [string]) => new HistogramSeries(h.plainHistogram, { server }, BUCKETS, false))
    for (const [i, step] of steps.entries()) {
      const exemplarLabels: Record<string, string> | undefined = 'exemplar' in step && step.exemplar !== undefined ? { trace_id: step.exemplar } : undefined
      /** the same update through a handle and through the public API: the same result, or the same refusal */
      const both = (viaHandle: () => void, viaPublicApi: () => void): void => {
        const outcome = (f: () => void): string => { try { f(); return 'ok' } catch (err) { return (err as Error).constructor.name } }
        t.equal(outcome(viaHandle), outcome(viaPublicApi), `step ${i}: the handle refuses what prom-client refuses`)
      }
      const labels = 'server' in step && 'outcome' in step ? { server: step.server, outcome: step.outcome } : undefined
      switch (step.kind) {
        case 'count':
          both(() => counters.get(step.server, step.outcome).inc(exemplarLabels),
            () => viaApi.counter.inc({ labels, value: 1, ...(exemplarLabels === undefined ? {} : { exemplarLabels }) }))
          break
        case 'plainCount':
          both(() => plainCounters.get(step.reason).inc(), () => viaApi.plainCounter.inc({ reason: step.reason }))
          break
        case 'observe':
          both(() => histograms.get(step.server, step.outcome).observe(step.value, exemplarLabels),
            () => viaApi.histogram.observe({ labels, value: step.value, ...(exemplarLabels === undefined ? {} : { exemplarLabels }) }))
          break
        case 'plainObserve':
          both(() => plainHistograms.get(step.server).observe(step.value), () => viaApi.plainHistogram.observe({ server: step.server }, step.value))
          break
        case 'reset':
          h.registry.resetMetrics()
          viaApi.registry.resetMetrics()
          break
        case 'publicFirst':
          h.histogram.observe({ labels, value: step.value })
          viaApi.histogram.observe({ labels, value: step.value })
      }
      t.equal(await text(h.registry), await text(viaApi.registry), `after step ${i} (${step.kind})`)
    }
    // and the handles did update something: the exposition is not empty of samples
    t.match(await text(h.registry), /_count\{|_total\{/)
  })
}

t.test('once bound, updates take the fast path: no call of the public API', async (t) => {
  // What series.ts relies on of prom-client 15.1: should a release keep its series elsewhere,
  // the handles fall back to inc()/observe() (right, only slower) and this fails.
  const { registry, counter, plainCounter, histogram, plainHistogram } = pair()
  const count = new CounterSeries(counter, { server: 'a', outcome: 'success' }, true)
  const plainCount = new CounterSeries(plainCounter, { reason: 'x' }, false)
  const duration = new HistogramSeries(histogram, { server: 'a', outcome: 'success' }, BUCKETS, true)
  const plainDuration = new HistogramSeries(plainHistogram, { server: 'a' }, BUCKETS, false)
  // bind, and give the series and the 0.3 bucket an exemplar (prom-client creates those)
  count.inc({ trace_id: 't0' })
  plainCount.inc()
  duration.observe(0.3, { trace_id: 't0' })
  plainDuration.observe(0.3)
  let publicCalls = 0
  for (const metric of [counter, plainCounter, histogram, plainHistogram] as unknown as Array<Record<string, (...args: unknown[]) => unknown>>) {
    for (const method of ['inc', 'observe', 'zero']) {
      const original = metric[method]
      if (typeof original === 'function') metric[method] = (...args: unknown[]) => { publicCalls++; return original.apply(metric, args) }
    }
  }
  for (let i = 0; i < 10; i++) {
    count.inc(i % 2 === 0 ? { trace_id: `t${i}` } : undefined)
    plainCount.inc()
    duration.observe(0.3, i % 2 === 0 ? { trace_id: `t${i}` } : undefined)
    plainDuration.observe(0.01 * i)
  }
  t.equal(publicCalls, 0, 'every update went into prom-client\'s series entries directly')
  const text = await registry.metrics()
  t.match(text, /^c_total\{server="a",outcome="success"\} 11 # \{trace_id="t8"\} 1 /m, 'counted, the exemplar updated in place')
  t.match(text, /^p_total\{reason="x"\} 11$/m)
  t.match(text, /^h_seconds_bucket\{le="0.25",server="a",outcome="success"\} 0$/m)
  t.match(text, /^h_seconds_bucket\{le="0.5",server="a",outcome="success"\} 11 # \{trace_id="t8"\} 0.3 /m)
  t.match(text, /^u_seconds_count\{server="a"\} 11$/m)
})

t.test('without the series store series.ts knows, every update takes the public API', async (t) => {
  // as a prom-client whose internals changed would look: no `hashMap` of entries
  const calls: unknown[][] = []
  const counter = { inc: (...args: unknown[]) => { calls.push(['inc', ...args]) } } as unknown as Counter<'reason'>
  const histogram = { observe: (...args: unknown[]) => { calls.push(['observe', ...args]) }, zero: () => {} } as unknown as Histogram<'server'>
  new CounterSeries(counter, { reason: 'x' }, false).inc()
  new HistogramSeries(histogram, { server: 'a' }, BUCKETS, false).observe(0.2)
  new HistogramSeries(histogram, { server: 'a' }, BUCKETS, true).observe(0.3, { trace_id: 't' })
  t.same(calls, [
    ['inc', { reason: 'x' }, 0], // binding tried: adds 0 to create the series, finds no store
    ['inc', { reason: 'x' }, 1],
    ['observe', { server: 'a' }, 0.2],
    ['observe', { labels: { server: 'a' }, value: 0.3, exemplarLabels: { trace_id: 't' } }],
  ])
})

t.test('non-finite values are refused like prom-client refuses them', async (t) => {
  const { histogram } = pair()
  const series = new HistogramSeries(histogram, { server: 'a', outcome: 'success' }, BUCKETS, true)
  t.throws(() => { series.observe(Number.NaN) }, TypeError)
  t.throws(() => { series.observe(Number.POSITIVE_INFINITY) }, TypeError)
})
