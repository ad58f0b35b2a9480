import type { Counter, Histogram, LabelValues } from 'prom-client'

/**
 * Bound series: a handle per label set for the prom-client metrics updated on every request.
 *
 * prom-client's `inc(labels)` / `observe(labels, v)` build a string key from the label values,
 * check every label name and allocate a closure, on every call; with six updates per tools/call
 * that costs several times what the handles do (figures in test/bench/README.md).
 * prom-client has no equivalent of client_golang's `WithLabelValues` handle, so this is one: it
 * finds prom-client's own series entry once (through the public API, which creates it) and then
 * adds to it directly. Exposition, exemplars, `reset()` and everything else stay prom-client's.
 *
 * What it relies on is prom-client's internal series store, as 15.1.3 keeps it (hence prom-client
 * pinned to 15.1.x): `metric.hashMap` holds an entry per label set with `labels` and `value`
 * (counters) or `sum`, `count` and `bucketValues` keyed by the bucket bound (histograms), and the
 * exemplar objects prom-client created (`exemplar`, `bucketExemplars`, each with `labelSet`,
 * `value`, `timestamp`). Should an entry not look like that when a handle binds, the handle falls
 * back to the public API for good — slower, never wrong — and test/unit/telemetry-series.test.ts,
 * which also compares the exposition with prom-client's own, fails. An exemplar for a series (or
 * bucket) that has none yet, or one prom-client would refuse, takes the public API, which
 * validates it and creates the object; later ones update it in place as prom-client does.
 */

interface ExemplarObject { labelSet: Record<string, string>; value: number; timestamp: number }
interface CounterEntry { value: number; labels: object; exemplar?: unknown }
interface HistogramEntry { sum: number; count: number; bucketValues: Record<string, number>; bucketExemplars?: Record<string, unknown>; labels: object }
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
    const entry = this.#bound()
    if (entry === undefined) {
      this.#slow(exemplar)
      return
    }
    if (exemplar !== undefined && this.#exemplars) {
      const current = entry.exemplar
      if (!isExemplarObject(current) || !fitsExemplar(exemplar)) {
        this.#slow(exemplar)
        return
      }
      setExemplar(current, exemplar, 1)
    }
    entry.value += 1
  }

  #slow (exemplar: Record<string, string> | undefined): void {
    if (!this.#exemplars) this.#metric.inc(this.#labels, 1)
    else if (exemplar === undefined) this.#metric.inc({ labels: this.#labels, value: 1 })
    else this.#metric.inc({ labels: this.#labels, value: 1, exemplarLabels: exemplar as LabelValues<T> })
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
    const entry = Number.isFinite(value) ? this.#bound() : undefined
    if (entry === undefined) {
      this.#slow(value, exemplar)
      return
    }
    // prom-client's findBound: the first bound >= value; above the last, no bucket but +Inf
    // (the count), whose exemplar prom-client keeps under the key -1
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && !(value <= bounds[i]!)) i++
    const key = i < bounds.length ? this.#keys[i]! : '-1'
    if (exemplar !== undefined && this.#exemplars) {
      const current = entry.bucketExemplars?.[key]
      if (!isExemplarObject(current) || !fitsExemplar(exemplar)) {
        this.#slow(value, exemplar)
        return
      }
      setExemplar(current, exemplar, value)
    }
    entry.sum += value
    entry.count += 1
    if (i < bounds.length) entry.bucketValues[key]! += 1
  }

  #slow (value: number, exemplar: Record<string, string> | undefined): void {
    if (!this.#exemplars) this.#metric.observe(this.#labels, value)
    else if (exemplar === undefined) this.#metric.observe({ labels: this.#labels, value })
    else this.#metric.observe({ labels: this.#labels, value, exemplarLabels: exemplar as LabelValues<T> })
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

function isExemplarObject (value: unknown): value is ExemplarObject {
  return typeof value === 'object' && value !== null && 'labelSet' in value && 'value' in value
}

/** OpenMetrics (and prom-client) cap an exemplar's label names and values at 128 characters. */
function fitsExemplar (labels: Record<string, string>): boolean {
  let size = 0
  for (const name in labels) size += name.length + labels[name]!.length
  return size <= 128
}

/** What prom-client's updateExemplar does to an exemplar it already created. */
function setExemplar (exemplar: ExemplarObject, labels: Record<string, string>, value: number): void {
  exemplar.labelSet = labels
  exemplar.value = value
  exemplar.timestamp = Date.now() / 1000
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
