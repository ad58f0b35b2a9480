/**
 * Micro-benchmark of the metric updates of one tools/call (the six series records.ts, enforce.ts
 * and upstream-call.ts update): through the handles of src/telemetry/series.ts, and through
 * prom-client's public `inc()` / `observe()` with the label objects made once. Unsampled
 * requests (no exemplar), and one in ten with a `trace_id` exemplar (ratio 0.1).
 * Run: node_modules/.bin/node test/bench/micro/series.bench.ts [reverse] [rounds=N]   (prints µs/op; asserts nothing)
 * Each case runs in a process of its own, N rounds in alternating order (isolated.ts).
 */
import type { Counter, Histogram, LabelValues } from 'prom-client'
import { Metrics } from '../../../src/telemetry/metrics.ts'
import { isolated } from './isolated.ts'

/** prom-client's public API, the label objects made once. */
class PublicCounter<T extends string> {
  readonly #metric: Counter<T>
  readonly #labels: LabelValues<T>
  readonly #exemplars: boolean
  constructor (metric: Counter<T>, labels: LabelValues<T>, exemplars: boolean) {
    this.#metric = metric
    this.#labels = labels
    this.#exemplars = exemplars
  }

  inc (exemplar?: Record<string, string>): void {
    if (!this.#exemplars) this.#metric.inc(this.#labels, 1)
    else if (exemplar === undefined) this.#metric.inc({ labels: this.#labels, value: 1 })
    else this.#metric.inc({ labels: this.#labels, value: 1, exemplarLabels: exemplar as LabelValues<T> })
  }
}
class PublicHistogram<T extends string> {
  readonly #metric: Histogram<T>
  readonly #labels: LabelValues<T>
  readonly #exemplars: boolean
  constructor (metric: Histogram<T>, labels: LabelValues<T>, exemplars: boolean) {
    this.#metric = metric
    this.#labels = labels
    this.#exemplars = exemplars
  }

  observe (value: number, exemplar?: Record<string, string>): void {
    if (!this.#exemplars) this.#metric.observe(this.#labels, value)
    else if (exemplar === undefined) this.#metric.observe({ labels: this.#labels, value })
    else this.#metric.observe({ labels: this.#labels, value, exemplarLabels: exemplar as LabelValues<T> })
  }
}

interface Request {
  count: { inc (exemplar?: Record<string, string>): void }
  duration: { observe (value: number, exemplar?: Record<string, string>): void }
  toolCount: { inc (exemplar?: Record<string, string>): void }
  toolDuration: { observe (value: number, exemplar?: Record<string, string>): void }
  upstream: { observe (value: number): void }
  policy: { inc (): void }
}

function handles (): Request {
  const m = new Metrics()
  const r = m.requestSeries.get('tickets', 'tools/call', 'success')
  const t = m.toolCallSeries.get('tickets', 'search_issues', 'success')
  return { count: r.count, duration: r.duration, toolCount: t.count, toolDuration: t.duration, upstream: m.upstreamSeries.get('tickets', 'tools/call'), policy: m.policySeries.get('tickets', 'search_issues', 'allow', 'allowed_by_rule') }
}

function publicApi (): Request {
  const m = new Metrics()
  const r = { server: 'tickets', method: 'tools/call', outcome: 'success' }
  const t = { server: 'tickets', tool: 'search_issues', outcome: 'success' }
  return {
    count: new PublicCounter(m.mcpRequests, r, true),
    duration: new PublicHistogram(m.mcpRequestDuration, r, true),
    toolCount: new PublicCounter(m.toolCalls, t, true),
    toolDuration: new PublicHistogram(m.toolCallDuration, t, true),
    upstream: new PublicHistogram(m.upstreamRequestDuration, { server: 'tickets', method: 'tools/call' }, false),
    policy: new PublicCounter(m.policyDecisions, { server: 'tickets', tool: 'search_issues', decision: 'allow', reason: 'allowed_by_rule' }, false),
  }
}

const durations = [0.0042, 0.013, 0.031, 0.27, 0.0009, 1.3, 0.06]
const exemplar = { trace_id: '0af7651916cd43dd8448eb211c80319c' }
function request (s: Request, i: number, sampled: boolean): void {
  const d = durations[i % durations.length]!
  const e = sampled ? exemplar : undefined
  s.policy.inc()
  s.upstream.observe(d * 0.9)
  s.count.inc(e)
  s.duration.observe(d, e)
  s.toolCount.inc(e)
  s.toolDuration.observe(d, e)
}

/** Requests through `make`'s series, every `every`th one sampled (0: none). */
const requests = (make: () => Request, every: number) => (): () => void => {
  const s = make()
  let i = 0
  return () => { request(s, i, every > 0 && i % every === 0); i++ }
}
const cases: Array<[string, () => () => void]> = [
  ['handles (series.ts), unsampled', requests(handles, 0)],
  ['public inc()/observe(), unsampled', requests(publicApi, 0)],
  ['handles (series.ts), 1 in 10 sampled', requests(handles, 10)],
  ['public inc()/observe(), 1 in 10 sampled', requests(publicApi, 10)],
]
if (!process.argv.includes('--case')) console.log('the six metric updates of a tools/call, each case in a process of its own')
const results = isolated(import.meta.filename, cases)
const ratio = (a: string, b: string): string => (results.get(a)! / results.get(b)!).toFixed(2)
console.log(`handles / public: ${ratio('handles (series.ts), unsampled', 'public inc()/observe(), unsampled')}× unsampled, ${ratio('handles (series.ts), 1 in 10 sampled', 'public inc()/observe(), 1 in 10 sampled')}× 1 in 10 sampled`)
