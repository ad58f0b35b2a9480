// The Prometheus rules (deploy/prometheus/): promtool accepts them and their unit tests pass;
// every alert has a severity, a summary, a description and a runbook that exists in docs/runbooks;
// every alert is shown firing and not firing by rules.test.yaml; the compose stack's
// prometheus.yml is a valid config.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'

const root = fileURLToPath(new URL('../../', import.meta.url))
const dir = join(root, 'deploy/prometheus')

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RulesFile { groups: { name: string; rules: Rule[] }[] }
interface RulesTest {
  rule_files: string[]
  tests: { name: string; alert_rule_test?: { alertname: string; eval_time: string; exp_alerts: unknown[] }[] }[]
}

const rules = parseYaml(readFileSync(join(dir, 'rules.yaml'), 'utf8')) as RulesFile
const unitTests = parseYaml(readFileSync(join(dir, 'rules.test.yaml'), 'utf8')) as RulesTest
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => typeof r.alert === 'string')

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const noPromtool = promtool.error === undefined ? false : 'promtool is not installed (apt-get install prometheus)'

function run (args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

t.test('promtool check rules deploy/prometheus/rules.yaml', { skip: noPromtool }, async (t) => {
  const { status, output } = run(['check', 'rules', 'deploy/prometheus/rules.yaml'])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS/)
})

t.test('promtool test rules deploy/prometheus/rules.test.yaml', { skip: noPromtool }, async (t) => {
  const { status, output } = run(['test', 'rules', 'deploy/prometheus/rules.test.yaml'])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS/)
})

t.test('promtool check config deploy/prometheus/prometheus.yml', { skip: noPromtool }, async (t) => {
  // the rule_files glob is a path inside the Prometheus container; promtool resolves it here and
  // finds nothing, which is not an error
  const { status, output } = run(['check', 'config', 'deploy/prometheus/prometheus.yml'])
  t.equal(status, 0, output)
})

t.test('the alerts the issue asks for are there', async (t) => {
  const names = alerts.map((a) => a.alert).sort()
  t.same(names, ['PortcullisDown', 'PortcullisEventLoopLagHigh', 'PortcullisInstanceDown', 'PortcullisJwksStale',
    'PortcullisLogLinesDropped', 'PortcullisStoreDown', 'PortcullisTokenRejectionSpike', 'PortcullisToolErrorRatioHigh', 'PortcullisUpstreamCircuitOpen', 'PortcullisUpstreamLatencyHigh'])
  const expr = (name: string): string => alerts.find((a) => a.alert === name)?.expr ?? ''
  t.match(expr('PortcullisDown'), /absent\(up\{job="portcullis"\}\)/, 'down covers a missing target')
  t.match(expr('PortcullisDown'), /up\{job="portcullis"\}/, 'down covers up == 0')
  t.match(expr('PortcullisEventLoopLagHigh'), /nodejs_eventloop_lag_p99_seconds/)
  t.match(expr('PortcullisJwksStale'), /outcome!="success"[\s\S]*unless[\s\S]*outcome="success"/, 'JWKS stale: failures and no success')
  const storeDown = alerts.find((a) => a.alert === 'PortcullisStoreDown')
  t.match(storeDown?.expr, /^portcullis_store_up\{job="portcullis"\} == 0\s*$/, 'store down: the gauge at 0, per instance')
  t.notMatch(storeDown?.expr, /absent/, 'store down: an absent series (no store.url) is not an outage')
  t.equal(storeDown?.for, '1m', 'store down: after 1 minute')
  t.match(expr('PortcullisUpstreamCircuitOpen'), /portcullis_upstream_circuit_open\{job="portcullis"\}\) == 1/, 'circuit open: per server, on any instance')
})

t.test('rules.test.yaml shows PortcullisStoreDown quiet with the store up and with no store at all', async (t) => {
  const own = unitTests.tests.filter((c) => (c.alert_rule_test ?? []).some((a) => a.alertname === 'PortcullisStoreDown'))
  const series = (c: (typeof own)[number]): string[] => ((c as { input_series?: { series: string }[] }).input_series ?? []).map((s) => s.series)
  const quiet = own.filter((c) => (c.alert_rule_test ?? []).every((a) => a.alertname !== 'PortcullisStoreDown' || a.exp_alerts.length === 0))
  t.ok(quiet.some((c) => series(c).length > 0 && series(c).every((s) => !s.startsWith('portcullis_store_up'))), 'a case without any portcullis_store_up series')
  t.ok(quiet.some((c) => series(c).some((s) => s.startsWith('portcullis_store_up'))), 'a case with the store reachable')
})

t.test('every alert has severity, summary, description and an existing runbook', async (t) => {
  for (const alert of alerts) {
    t.test(alert.alert, async (t) => {
      t.match(alert.labels?.severity, /^(critical|warning|info)$/, 'severity label')
      t.ok(alert.annotations?.summary, 'summary')
      t.ok(alert.annotations?.description, 'description')
      const url = alert.annotations?.runbook_url ?? ''
      t.match(url, new RegExp(`/docs/runbooks/${alert.alert}\\.md$`), 'runbook_url points at docs/runbooks/<alert>.md')
      const file = join(root, 'docs/runbooks', `${alert.alert}.md`)
      t.ok(existsSync(file), `${file} exists`)
      if (existsSync(file)) {
        const text = readFileSync(file, 'utf8')
        t.match(text, new RegExp(`^# ${alert.alert}\\b`), 'titled with the alert name')
        for (const section of ['## What it means', '## How to check', '## What to do']) t.ok(text.includes(section), section)
      }
    })
  }
})

t.test('every recording rule is named level:metric:operations', async (t) => {
  for (const rule of rules.groups.flatMap((g) => g.rules).filter((r) => r.record !== undefined)) {
    t.match(rule.record, /^[a-z_]+:portcullis_[a-z0-9_]+:[a-z0-9_]+$/, String(rule.record))
  }
})

t.test('rules.test.yaml shows every alert firing and not firing', async (t) => {
  t.same(unitTests.rule_files, ['rules.yaml'])
  const cases = unitTests.tests.flatMap((c) => c.alert_rule_test ?? [])
  for (const alert of alerts) {
    const own = cases.filter((c) => c.alertname === alert.alert)
    t.ok(own.some((c) => c.exp_alerts.length > 0), `${alert.alert} fires in some case`)
    t.ok(own.some((c) => c.exp_alerts.length === 0), `${alert.alert} stays quiet in some case`)
  }
})
