/**
 * Scrape the real gateway's /metrics and read it the way Prometheus would: which series names a
 * scrape stores. Dashboards and alert rules are checked against this (test/deploy/), so a renamed
 * or missing metric fails a test instead of leaving an empty panel.
 *
 * A labelled metric with no observation yet prints no sample, but it does print its `# HELP` and
 * `# TYPE` lines; the names come from those (plus every sample line), with the suffixes each type
 * has in storage: counters `_total` (the OpenMetrics family name has none), histograms `_bucket`,
 * `_sum`, `_count`, summaries `_sum`, `_count`.
 *
 * (For sample values by label, the policy and reload tests use test/helpers/policy-metrics.ts.)
 */
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway } from '../../src/gateway.ts'

export interface MetricFamily {
  readonly name: string
  /** counter, gauge, histogram, summary, untyped/unknown, info, stateset, gaugehistogram */
  readonly type: string
  readonly help: string
}

export interface MetricsText {
  readonly contentType: string
  readonly text: string
  /** families by name, from `# TYPE` / `# HELP` lines */
  readonly families: ReadonlyMap<string, MetricFamily>
  /** every series name a scrape of this text stores */
  readonly seriesNames: ReadonlySet<string>
}

const SUFFIXES: Record<string, readonly string[]> = {
  counter: ['_total'],
  histogram: ['_bucket', '_sum', '_count'],
  gaugehistogram: ['_bucket', '_gsum', '_gcount'],
  summary: ['', '_sum', '_count'],
  info: ['_info'],
}

/** The metric name at the start of a sample line (`name{…} value` or `name value`). */
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)/

/** Parse Prometheus text format 0.0.4 or OpenMetrics 1.0 text. */
export function parseMetricsText (text: string, contentType = ''): MetricsText {
  const families = new Map<string, { name: string; type: string; help: string }>()
  const seriesNames = new Set<string>()
  const family = (name: string): { name: string; type: string; help: string } => {
    let found = families.get(name)
    if (found === undefined) {
      found = { name, type: 'untyped', help: '' }
      families.set(name, found)
    }
    return found
  }
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ')
      if (name !== undefined && type !== undefined) family(name).type = type
    } else if (line.startsWith('# HELP ')) {
      const rest = line.slice('# HELP '.length)
      const space = rest.indexOf(' ')
      const name = space === -1 ? rest : rest.slice(0, space)
      family(name).help = space === -1 ? '' : rest.slice(space + 1)
    } else if (line !== '' && !line.startsWith('#')) {
      const match = SAMPLE.exec(line)
      if (match?.[1] !== undefined) seriesNames.add(match[1])
    }
  }
  for (const { name, type } of families.values()) {
    const suffixes = SUFFIXES[type]
    if (suffixes === undefined) {
      seriesNames.add(name)
      continue
    }
    for (const suffix of suffixes) {
      // Prometheus text format names a counter family with its _total; OpenMetrics without it.
      seriesNames.add(type === 'counter' && name.endsWith('_total') ? name : `${name}${suffix}`)
    }
  }
  return { contentType, text, families, seriesNames }
}

/** GET {adminUrl}/metrics and parse it. */
export async function scrapeMetrics (adminUrl: string): Promise<MetricsText> {
  const response = await fetch(new URL('/metrics', adminUrl))
  if (response.status !== 200) throw new Error(`GET ${adminUrl}/metrics answered ${response.status}`)
  return parseMetricsText(await response.text(), response.headers.get('content-type') ?? '')
}

/** A config with one server that is never called: enough for every metric to be declared. */
const MINIMAL_CONFIG = `
publicUrl: http://127.0.0.1:8080
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
servers:
  probe:
    upstream: { url: "http://127.0.0.1:9/mcp" }
    auth: none
    tools: [{ allow: ["*"] }]
`

/**
 * Start the real gateway in-process (`buildGateway(parseConfig(…))`, client and admin listeners
 * on free loopback ports), scrape its admin /metrics once, and stop it.
 */
export async function scrapeGateway (yaml = MINIMAL_CONFIG): Promise<MetricsText> {
  const gateway = buildGateway(parseConfig(yaml, { source: '<metrics-text>', env: {} }), { logger: false })
  try {
    const { adminUrl } = await gateway.listen()
    return await scrapeMetrics(adminUrl)
  } finally {
    await gateway.close()
  }
}
