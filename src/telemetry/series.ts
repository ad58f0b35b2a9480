import type { Counter, Histogram, LabelValues } from 'prom-client'

/**
 * Bound series: a handle per label set for the prom-client metrics updated on every request.
 *
 * prom-client's `inc(labels)` / `observe(labels, v)` build a string key from the label values,
 * check every label name and allocate a closure, on every call — ~0.5 µs each in isolation and
 * 5–10 % of the gateway's throughput with six updates per tools/call (measured side by side).
 * prom-client has no equivalent of client_golang's `WithLabelValues` handle, so this is one: it
 * finds prom-client's own series entry once (through the public API, which creates it) and then
 * adds to it directly. Exposition, exemplars, `reset()` and everything else stay prom-client's.
 *
 * What it relies on of prom-client 15 (checked when a handle binds, and by
 * test/unit/telemetry-series.test.ts against prom-client's own output): `metric.hashMap` holds an
 * entry per label set with `labels` and `value` (counters) or `sum`, `count` and `bucketValues`
 * keyed by the bucket bound (histograms). Should an entry not look like that, the handle falls
 * back to the public API for good — slower, never wrong. An observation with an exemplar always
 * takes the public API (it validates and stores the exemplar); sampled requests are the few.
 */

interface CounterEntry { value: number; labels: object }
interface HistogramEntry { sum: number; count: number; bucketValues: Record<string, number>; labels: object }
type Entries = Record<string, unknown>

export class CounterSeries<T extends string> {
  readonly #metric: Counter<T>
  readonly #labels: LabelValues<T>
  readonly #exemplars: boolean
  #map: Entries | undefined
  #entry: CounterEntry | undefined
  #fast = true

  constructor (metric: Counter<T>, labels: LabelValues<T>, exemplars: boolean) {
    this.#metric = metric
    this.#labels = labels
    this.#exemplars = exemplars
  }

  /** Add one; `exemplar` (when the request was sampled) labels it with its trace. */
  inc (exemplar?: Record<string, string>): void {
    if (exemplar !== undefined) {
      if (this.#exemplars) this.#metric.inc({ labels: this.#labels, value: 1, exemplarLabels: exemplar as LabelValues<T> })
      else this.#metric.inc(this.#labels, 1)
      return
    }
    const entry = this.#bound()
    if (entry !== undefined) entry.value += 1
    else if (this.#exemplars) this.#metric.inc({ labels: this.#labels, value: 1 })
    else this.#metric.inc(this.#labels, 1)
  }

  #bound (): CounterEntry | undefined {
    if (!this.#fast) return undefined
    const map = entriesOf(this.#metric)
    if (map === this.#map && this.#entry !== undefined) return this.#entry
    // Creates the entry through the public API if there is none (adding 0), then finds it.
    if (this.#exemplars) this.#metric.inc({ labels: this.#labels, value: 0 })
    else this.#metric.inc(this.#labels, 0)
    const entry = map === undefined ? undefined : findEntry(map, this.#labels)
    if (entry === undefined || typeof (entry as Partial<CounterEntry>).value !== 'number') {
      this.#fast = false
      return undefined
    }
    this.#map = map
    this.#entry = entry as CounterEntry
    return this.#entry
  }
}

export class HistogramSeries<T extends string> {
  readonly #metric: Histogram<T>
  readonly #labels: LabelValues<T>
  readonly #exemplars: boolean
  readonly #bounds: readonly number[]
  /** String(bound): the keys of prom-client's bucketValues */
  readonly #keys: readonly string[]
  #map: Entries | undefined
  #entry: HistogramEntry | undefined
  #fast = true

  constructor (metric: Histogram<T>, labels: LabelValues<T>, buckets: readonly number[], exemplars: boolean) {
    this.#metric = metric
    this.#labels = labels
    this.#exemplars = exemplars
    this.#bounds = buckets
    this.#keys = buckets.map(String)
  }

  observe (value: number, exemplar?: Record<string, string>): void {
    if (exemplar !== undefined) {
      if (this.#exemplars) this.#metric.observe({ labels: this.#labels, value, exemplarLabels: exemplar as LabelValues<T> })
      else this.#metric.observe(this.#labels, value)
      return
    }
    const entry = Number.isFinite(value) ? this.#bound() : undefined
    if (entry === undefined) {
      if (this.#exemplars) this.#metric.observe({ labels: this.#labels, value })
      else this.#metric.observe(this.#labels, value)
      return
    }
    entry.sum += value
    entry.count += 1
    // prom-client's findBound: the first bound >= value; above the last, only +Inf (the count)
    const bounds = this.#bounds
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        entry.bucketValues[this.#keys[i]!]! += 1
        return
      }
    }
  }

  #bound (): HistogramEntry | undefined {
    if (!this.#fast) return undefined
    const map = entriesOf(this.#metric)
    if (map === this.#map && this.#entry !== undefined) return this.#entry
    let entry = map === undefined ? undefined : findEntry(map, this.#labels)
    if (entry === undefined && map !== undefined) {
      this.#metric.zero(this.#labels) // public: creates the series at zero
      entry = findEntry(map, this.#labels)
    }
    if (!isHistogramEntry(entry, this.#keys)) {
      this.#fast = false
      return undefined
    }
    this.#map = map
    this.#entry = entry
    return entry
  }
}

/**
 * Handles by label values, created on first use and kept: nested maps, so a lookup builds no
 * string. Only for bounded labels (design.md §6), which every label on the request path is.
 */
export class SeriesTable<K extends readonly string[], H> {
  readonly #root = new Map<string, unknown>()
  readonly #create: (values: K) => H

  constructor (create: (values: K) => H) {
    this.#create = create
  }

  get (...values: K): H {
    let level = this.#root
    const last = values.length - 1
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined
      if (next === undefined) level.set(values[i]!, next = new Map())
      level = next
    }
    let handle = level.get(values[last]!) as H | undefined
    if (handle === undefined) level.set(values[last]!, handle = this.#create(values))
    return handle
  }
}

function entriesOf (metric: object): Entries | undefined {
  const map = (metric as { hashMap?: unknown }).hashMap
  return typeof map === 'object' && map !== null ? map as Entries : undefined
}

/** The entry whose labels equal `labels` (prom-client keeps the labels object it was given). */
function findEntry (map: Entries, labels: object): unknown {
  const want = Object.entries(labels)
  for (const entry of Object.values(map)) {
    const have = (entry as { labels?: unknown }).labels
    if (typeof have !== 'object' || have === null) continue
    if (Object.keys(have).length === want.length && want.every(([k, v]) => (have as Record<string, unknown>)[k] === v)) return entry
  }
  return undefined
}

function isHistogramEntry (entry: unknown, keys: readonly string[]): entry is HistogramEntry {
  if (typeof entry !== 'object' || entry === null) return false
  const e = entry as Partial<HistogramEntry>
  return typeof e.sum === 'number' && typeof e.count === 'number' && typeof e.bucketValues === 'object' && e.bucketValues !== null &&
    keys.every((k) => typeof e.bucketValues![k] === 'number')
}
