// The Grafana dashboards (grafana/) and the Prometheus rules (deploy/prometheus/rules.yaml)
// against the real gateway: every dashboard is well-formed JSON that follows the conventions of
// grafana/README.md (datasource variable, stable uids, $__rate_interval, units), is what
// grafana/build-dashboards.ts generates, every PromQL expression parses, and every metric an
// expression names is one the gateway's /metrics really exposes (with and without store.url).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { parseMetricsText, scrapeGateway } from '../helpers/metrics-text.ts'
import { buildDashboards, readmeWithTable } from '../../grafana/build-dashboards.ts'
import { RATE_INTERVAL_STANDIN, labelValuesSelector, parsePromQL, substituteGrafanaVariables } from './promql.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const dashboardsDir = join(root, 'grafana/dashboards')
const rulesFile = join(root, 'deploy/prometheus/rules.yaml')

/** Changing a uid breaks every bookmark and link to the dashboard: do it here, on purpose. */
const STABLE_UIDS: Record<string, string> = {
  'portcullis-overview.json': 'portcullis-overview',
  'portcullis-tool-calls.json': 'portcullis-tool-calls',
  'portcullis-mcp-methods.json': 'portcullis-mcp-methods',
  'portcullis-upstreams.json': 'portcullis-upstreams',
  'portcullis-auth.json': 'portcullis-auth',
  'portcullis-policy.json': 'portcullis-policy',
  'portcullis-runtime.json': 'portcullis-runtime',
}

/** Series Prometheus makes itself, not the gateway. */
const PROMETHEUS_SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'ALERTS', 'ALERTS_FOR_STATE'])
/** Functions that take a range: their window must be $__rate_interval in a dashboard. */
const RANGE_FUNCTIONS = /^(rate|irate|increase|delta|idelta|deriv|changes|resets|predict_linear|holt_winters|double_exponential_smoothing|\w+_over_time)$/

type JsonObject = Record<string, unknown>

interface Panel extends JsonObject {
  id?: number
  type?: string
  title?: string
  description?: string
  datasource?: unknown
  targets?: JsonObject[]
  panels?: Panel[]
  fieldConfig?: { defaults?: { unit?: string } }
}

function allPanels (panels: Panel[] | undefined): Panel[] {
  return (panels ?? []).flatMap((p) => [p, ...allPanels(p.panels)])
}

const files = readdirSync(dashboardsDir).filter((f) => f.endsWith('.json')).sort()
const dashboards = new Map<string, JsonObject>(files.map((f) => [f, JSON.parse(readFileSync(join(dashboardsDir, f), 'utf8')) as JsonObject]))

/**
 * A gateway with a shared store (design.md §7) exposes more: portcullis_store_up exists only with
 * store.url. Scraped with a store nothing answers (port 1 refuses): the gauge is there, at 0.
 */
const STORE_CONFIG = `
publicUrl: http://127.0.0.1:8080
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
store: { url: "redis://127.0.0.1:1" }
servers:
  probe:
    upstream: { url: "http://127.0.0.1:9/mcp" }
    auth: none
    tools: [{ allow: ["*"] }]
`
const scraped = await scrapeGateway()
const scrapedWithStore = await scrapeGateway(STORE_CONFIG)
const gatewayMetrics = new Set([...scraped.seriesNames, ...scrapedWithStore.seriesNames])

t.test('the gateway /metrics scrape names every metric of design.md §6', async (t) => {
  for (const name of ['portcullis_tool_calls_total', 'portcullis_tool_call_duration_seconds_bucket', 'portcullis_mcp_requests_total',
    'portcullis_mcp_request_duration_seconds_count', 'portcullis_upstream_request_duration_seconds_sum', 'portcullis_upstream_errors_total',
    'portcullis_policy_decisions_total', 'portcullis_token_requests_total', 'portcullis_access_token_validations_total',
    'portcullis_jwks_fetches_total', 'portcullis_jwks_last_success_timestamp_seconds', 'portcullis_open_streams', 'portcullis_sessions', 'portcullis_build_info', 'portcullis_log_lines_dropped_total',
    'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_gc_duration_seconds_bucket']) {
    t.ok(gatewayMetrics.has(name), name)
  }
})

t.test('with store.url, the scrape names portcullis_store_up; without, it does not', async (t) => {
  t.ok(scrapedWithStore.seriesNames.has('portcullis_store_up'), 'store.url set: portcullis_store_up')
  t.equal(scrapedWithStore.families.get('portcullis_store_up')?.type, 'gauge', 'a gauge')
  t.notOk(scraped.seriesNames.has('portcullis_store_up'), 'no store.url: no portcullis_store_up (PortcullisStoreDown stays quiet)')
})

t.test('the overview shows whether the shared store is reachable', async (t) => {
  const overview = dashboards.get('portcullis-overview.json')
  const panel = allPanels(overview?.panels as Panel[]).find((p) => p.title === 'Shared store (Redis) reachable')
  t.ok(panel, 'a "Shared store (Redis) reachable" panel on the overview')
  t.match(String(panel?.targets?.[0]?.expr), /^portcullis_store_up\{job=~"\$job", instance=~"\$instance"\}$/, 'portcullis_store_up per instance')
})

t.test('every dashboard file is one the generator writes, byte for byte', async (t) => {
  const generated = buildDashboards()
  t.same(files, [...generated.keys()].sort(), 'the same set of files')
  for (const [file, dashboard] of generated) {
    t.equal(readFileSync(join(dashboardsDir, file), 'utf8'), `${JSON.stringify(dashboard, null, 2)}\n`, `${file} is up to date (run: node grafana/build-dashboards.ts)`)
  }
  const readme = readFileSync(join(root, 'grafana/README.md'), 'utf8')
  t.equal(readme, readmeWithTable(readme), 'grafana/README.md panel table is up to date')
})

t.test('dashboard structure', async (t) => {
  t.same(Object.keys(STABLE_UIDS).sort(), files, 'exactly the dashboards with pinned uids')
  const uids = new Set<string>()
  for (const [file, d] of dashboards) {
    t.test(file, async (t) => {
      t.equal(d.uid, STABLE_UIDS[file], 'stable uid')
      t.match(d.uid, /^[a-z0-9-]{1,40}$/, 'uid is short and URL-safe')
      t.notOk(uids.has(String(d.uid)), 'uid is unique')
      uids.add(String(d.uid))
      t.equal(d.id, null, 'id is null (provisioning assigns it)')
      t.type(d.title, 'string')
      t.type(d.schemaVersion, 'number')
      t.ok(Array.isArray(d.tags) && d.tags.includes('portcullis'), 'tagged portcullis')
      t.notOk('__inputs' in d, 'no __inputs (file provisioning does not resolve them)')
      t.notMatch(JSON.stringify(d), /\$\{DS_/, 'no ${DS_…} placeholders')

      const variables = ((d.templating as JsonObject | undefined)?.list ?? []) as JsonObject[]
      const ds = variables.find((v) => v.name === 'datasource')
      t.ok(ds, 'has a datasource variable')
      t.equal(ds?.type, 'datasource', 'datasource variable has type datasource')
      t.equal(ds?.query, 'prometheus', 'datasource variable lists prometheus data sources')
      const server = variables.find((v) => v.name === 'server')
      t.equal(server?.type, 'query', 'has a server query variable')
      t.match(String(server?.query), /^label_values\(.*,\s*server\)$/, 'server variable comes from label_values(…, server)')
      for (const v of variables.filter((v) => v.type === 'query')) {
        t.same(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `variable ${String(v.name)} uses the datasource variable`)
      }

      const panels = allPanels(d.panels as Panel[])
      const ids = panels.map((p) => p.id)
      t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
      for (const panel of panels.filter((p) => p.type !== 'row' && p.type !== 'text')) {
        const name = `panel "${panel.title ?? '?'}"`
        t.ok(panel.title, `${name} has a title`)
        t.ok(panel.description, `${name} has a description`)
        t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `${name} uses the datasource variable`)
        t.ok(panel.fieldConfig?.defaults?.unit, `${name} sets a unit`)
        t.ok((panel.targets ?? []).length > 0, `${name} has queries`)
        for (const target of panel.targets ?? []) {
          t.same(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `${name} query ${String(target.refId)} uses the datasource variable`)
          t.type(target.expr, 'string', `${name} query ${String(target.refId)} has an expression`)
          if ((panel.type === 'timeseries' || panel.type === 'heatmap') && /_duration_seconds_bucket/.test(String(target.expr))) {
            t.equal(target.exemplar, true, `${name} query ${String(target.refId)} asks for exemplars (latency)`)
          }
        }
      }
    })
  }
})

/** every PromQL expression of a dashboard, with where it came from */
function dashboardExpressions (): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = []
  for (const [file, d] of dashboards) {
    for (const panel of allPanels(d.panels as Panel[])) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === 'string') out.push({ where: `${file} "${panel.title ?? '?'}" ${String(target.refId)}`, expr: target.expr })
      }
    }
    for (const v of ((d.templating as JsonObject | undefined)?.list ?? []) as JsonObject[]) {
      if (v.type !== 'query') continue
      const lv = labelValuesSelector(String(v.query))
      if (lv?.selector !== undefined) out.push({ where: `${file} variable ${String(v.name)}`, expr: lv.selector })
    }
  }
  return out
}

t.test('every dashboard expression parses, uses $__rate_interval, and names real metrics', async (t) => {
  const expressions = dashboardExpressions()
  t.ok(expressions.length > 50, `${expressions.length} expressions`)
  for (const { where, expr } of expressions) {
    const parsed = parsePromQL(substituteGrafanaVariables(expr))
    t.same(parsed.errors, [], `${where} parses`)
    t.ok(parsed.metrics.length > 0 || parsed.functions.includes('time'), `${where} selects some metric`)
    for (const range of parsed.ranges) {
      t.equal(range, RATE_INTERVAL_STANDIN, `${where}: range windows are $__rate_interval, not fixed`)
    }
    if (parsed.functions.some((f) => RANGE_FUNCTIONS.test(f))) {
      t.ok(expr.includes('[$__rate_interval]'), `${where}: rate()/increase() over $__rate_interval`)
    }
    for (const metric of parsed.metrics) {
      t.ok(gatewayMetrics.has(metric), `${where}: ${metric} is in the gateway's /metrics`)
    }
  }
})

t.test('the PromQL checker itself catches what it is meant to', async (t) => {
  t.not(parsePromQL('sum by (tool (rate(x[5m]))').errors.length, 0, 'a missing parenthesis')
  t.same(parsePromQL(substituteGrafanaVariables('rate(a{s=~"$server"}[$__rate_interval])')).ranges, [RATE_INTERVAL_STANDIN])
  t.same(parsePromQL('rate(a[5m])').ranges, ['5m'], 'a fixed window is seen')
  t.same([...parsePromQL('max_over_time(rate(b{x="[y]"}[1m])[10m:1m])').ranges].sort(), ['10m', '1m'], 'subquery ranges are seen')
  t.same(parsePromQL('a_total / on (x) group_left {__name__="b_bucket"}').metrics, ['a_total', 'b_bucket'])
  t.notOk(gatewayMetrics.has('portcullis_no_such_metric_total'), 'an unknown name is not in /metrics')
})

t.test('the /metrics reader knows both exposition formats', async (t) => {
  const prometheusText = parseMetricsText([
    '# HELP a_total A counter', '# TYPE a_total counter',
    '# HELP h A histogram', '# TYPE h histogram',
    '# HELP g A gauge', '# TYPE g gauge', 'g{x="1"} 2',
  ].join('\n'))
  t.same([...prometheusText.seriesNames].sort(), ['a_total', 'g', 'h_bucket', 'h_count', 'h_sum'])
  // OpenMetrics (what exemplars need): a counter family is named without _total, its samples with it
  const openMetrics = parseMetricsText([
    '# HELP a A counter', '# TYPE a counter', 'a_total{s="x"} 1 # {trace_id="abc"} 1 1700000000.000', '# EOF',
  ].join('\n'), 'application/openmetrics-text; version=1.0.0; charset=utf-8')
  t.same([...openMetrics.seriesNames].sort(), ['a_total'])
  t.equal(openMetrics.families.get('a')?.type, 'counter')
})

const rules = parseYaml(readFileSync(rulesFile, 'utf8')) as { groups: { name: string; rules: JsonObject[] }[] }
const recorded = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.record)).filter((r): r is string => typeof r === 'string'))

t.test('every rules.yaml expression parses and names real metrics or recorded series', async (t) => {
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      const name = String(rule.alert ?? rule.record)
      const parsed = parsePromQL(String(rule.expr))
      t.same(parsed.errors, [], `${group.name}/${name} parses`)
      for (const metric of parsed.metrics) {
        t.ok(gatewayMetrics.has(metric) || recorded.has(metric) || PROMETHEUS_SYNTHETIC.has(metric),
          `${group.name}/${name}: ${metric} is in the gateway's /metrics, a recording rule, or made by Prometheus`)
      }
    }
  }
})

// promtool knows PromQL's semantics too (e.g. a scalar comparison without `bool`), which a
// grammar does not: check every dashboard expression as a recording rule.
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
t.test('promtool accepts every dashboard expression', { skip: promtool.error === undefined ? false : 'promtool is not installed (apt-get install prometheus)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dashboards-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const asRules = {
    groups: [{
      name: 'dashboards',
      rules: dashboardExpressions().map(({ expr }, i) => ({ record: `dashboard:expr:${i}`, expr: substituteGrafanaVariables(expr) })),
    }],
  }
  const file = join(dir, 'dashboards.rules.yaml')
  writeFileSync(file, stringifyYaml(asRules))
  const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' })
  t.equal(result.status, 0, `promtool check rules: ${result.stdout}${result.stderr}`)
})

t.test('Grafana provisioning matches the compose stack', async (t) => {
  const datasources = parseYaml(readFileSync(join(root, 'grafana/provisioning/datasources/portcullis.yaml'), 'utf8')) as { apiVersion: number; datasources: JsonObject[] }
  const providers = parseYaml(readFileSync(join(root, 'grafana/provisioning/dashboards/portcullis.yaml'), 'utf8')) as { apiVersion: number; providers: JsonObject[] }
  const compose = parseYaml(readFileSync(join(root, 'deploy/compose/docker-compose.yaml'), 'utf8')) as { services: Record<string, { volumes?: string[] }> }
  t.equal(datasources.apiVersion, 1)
  const prometheus = datasources.datasources.find((d) => d.type === 'prometheus')
  t.ok(prometheus, 'a Prometheus data source')
  const exemplarTargets = ((prometheus?.jsonData as JsonObject | undefined)?.exemplarTraceIdDestinations ?? []) as JsonObject[]
  const tracing = datasources.datasources.find((d) => d.uid === exemplarTargets[0]?.datasourceUid)
  t.equal(exemplarTargets[0]?.name, 'trace_id', 'exemplars link by trace_id')
  t.ok(tracing, 'to a provisioned tracing data source')
  t.equal(providers.apiVersion, 1)
  const path = (providers.providers[0]?.options as JsonObject | undefined)?.path
  const volumes = compose.services.grafana?.volumes ?? []
  t.ok(volumes.includes(`../../grafana/dashboards:${String(path)}:ro`), `compose mounts grafana/dashboards at the provider path ${String(path)}`)
  t.ok(volumes.includes('../../grafana/provisioning:/etc/grafana/provisioning:ro'), 'compose mounts the provisioning folder')
})
