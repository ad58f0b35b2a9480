// `npm run conformance`: every server scenario of the official @modelcontextprotocol/conformance
// suite, run against server-everything directly and through the gateway (a fresh server-everything
// behind it, `auth: none`). Prints a side-by-side table; exits non-zero unless every scenario has
// the same outcome, check by check, both ways — except the differences listed, with their reason,
// in expected-differences.ts (each must happen exactly as listed). Raw results go to a temp dir.
import { createWriteStream } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway } from '../../src/gateway.ts'
import { withFreePorts } from '../helpers/ports.ts'
import {
  killAll, listServerScenarios, runScenario, startEverything, within,
  type Check, type Everything, type ScenarioResult,
} from './harness.ts'
import { EXPECTED_DIFFERENCES } from './expected-differences.ts'

const SCENARIO_TIMEOUT_MS = 60_000
const OVERALL_TIMEOUT_MS = 15 * 60_000

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => { console.error(`\n${signal}: stopping`); killAll(); process.exit(130) })
}
const watchdog = setTimeout(() => {
  console.error(`conformance: overall timeout (${OVERALL_TIMEOUT_MS} ms), giving up`)
  killAll()
  process.exit(2)
}, OVERALL_TIMEOUT_MS)

/**
 * The gateway in this process, on a free port, with publicUrl = the URL the suite is pointed at
 * (so the port is chosen first: on one taken meanwhile, it is started again).
 */
async function startGateway (upstreamUrl: string, logFile: string): Promise<{ gateway: Gateway, url: string }> {
  return await withFreePorts(1, async (port) => await startGatewayOn(upstreamUrl, logFile, port))
}

async function startGatewayOn (upstreamUrl: string, logFile: string, port: number): Promise<{ gateway: Gateway, url: string }> {
  const origin = `http://127.0.0.1:${port}`
  const config = parseConfig(`
publicUrl: ${origin}
listen: { host: 127.0.0.1, port: ${port}, drainTimeoutMs: 1000 }
admin: { host: 127.0.0.1, port: 0 }
servers:
  everything:
    upstream: { url: ${upstreamUrl} }
    auth: none
    tools: [{ allow: ["*"] }]
`, { source: '<conformance>', env: {} })
  const gateway = buildGateway(config, { logger: { level: 'info', stream: createWriteStream(logFile) } })
  await within(20_000, 'gateway listen', gateway.listen()).catch(async (err: unknown) => {
    await gateway.close().catch(() => {})
    throw err
  })
  return { gateway, url: `${origin}/mcp/everything` }
}

/** Run every scenario, one CLI invocation each (so one hang cannot take the others down). */
async function runAll (url: string, scenarios: string[], outDir: string, label: string): Promise<Map<string, ScenarioResult>> {
  const results = new Map<string, ScenarioResult>()
  for (const scenario of scenarios) {
    const result = await runScenario(url, scenario, join(outDir, scenario), SCENARIO_TIMEOUT_MS)
    process.stderr.write(`  [${label}] ${scenario}: ${result.outcome} (${result.ms} ms)\n`)
    results.set(scenario, result)
  }
  return results
}

function cell (r: ScenarioResult | undefined): string {
  if (r === undefined) return 'MISSING'
  if (r.checks.length === 0) return r.outcome
  const n = (status: string): number => r.checks.filter((c) => c.status === status).length
  const ok = n('SUCCESS')
  const judged = ok + n('FAILURE')
  const extra = [n('WARNING') > 0 ? `${n('WARNING')}w` : '', n('INFO') > 0 ? `${n('INFO')}i` : '', n('SKIPPED') > 0 ? `${n('SKIPPED')}s` : '']
  return [r.outcome, `${ok}/${judged}`, ...extra].filter((s) => s !== '').join(' ')
}

/** Listed differences (expected-differences.ts) that did occur, as `scenario/check`. */
const seenExpected = new Set<string>()

function isExpected (scenario: string, x: Check | undefined, y: Check | undefined): boolean {
  const hit = EXPECTED_DIFFERENCES.find((e) => e.scenario === scenario && e.check === x?.id && e.check === y?.id &&
    e.direct === x?.status && e.gateway === y?.status)
  if (hit !== undefined) seenExpected.add(`${hit.scenario}/${hit.check}`)
  return hit !== undefined
}

/** Check-level differences between the two runs of one scenario ([] = identical but for listed ones). */
function diff (scenario: string, a: ScenarioResult | undefined, b: ScenarioResult | undefined): string[] {
  if (a === undefined || b === undefined) return ['scenario missing from one run']
  const out: string[] = []
  let expected = 0
  const count = Math.max(a.checks.length, b.checks.length)
  for (let i = 0; i < count; i++) {
    const x = a.checks[i]
    const y = b.checks[i]
    if (x?.id === y?.id && x?.status === y?.status) continue
    if (isExpected(scenario, x, y)) { expected++; continue }
    out.push(`check #${i + 1}: direct ${describe(x)}\n      gateway ${describe(y)}`)
  }
  if (a.outcome !== b.outcome && expected === 0) out.unshift(`outcome: direct ${a.outcome} vs gateway ${b.outcome}`)
  if (out.length > 0 && a.note !== undefined) out.push(`direct CLI output: ${a.note}`)
  if (out.length > 0 && b.note !== undefined) out.push(`gateway CLI output: ${b.note}`)
  return out
}

function describe (c: Check | undefined): string {
  if (c === undefined) return '(no such check)'
  const details = c.details === undefined ? '' : ` details=${JSON.stringify(c.details).slice(0, 300)}`
  return `${c.id}=${c.status}${c.errorMessage === undefined ? '' : ` "${c.errorMessage.slice(0, 200)}"`}${details}`
}

function table (scenarios: string[], direct: Map<string, ScenarioResult>, via: Map<string, ScenarioResult>): string {
  const rows = scenarios.map((s) => {
    const d = diff(s, direct.get(s), via.get(s))
    const listed = EXPECTED_DIFFERENCES.some((e) => e.scenario === s)
    return [s, cell(direct.get(s)), cell(via.get(s)), d.length > 0 ? 'DIFFERENT' : listed ? 'expected difference' : 'same']
  })
  const header = ['scenario', 'direct', 'via gateway', '']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (r: string[]): string => r.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

async function main (): Promise<number> {
  const started = Date.now()
  const tmp = await mkdtemp(join(tmpdir(), 'portcullis-conformance-'))
  console.log(`raw results: ${tmp}`)
  const scenarios = await listServerScenarios()
  console.log(`${scenarios.length} server scenarios: ${scenarios.join(', ')}`)

  const servers: Everything[] = []
  let gateway: Gateway | undefined
  try {
    const direct = await startEverything(join(tmp, 'everything-direct.log'))
    servers.push(direct)
    const behind = await startEverything(join(tmp, 'everything-behind-gateway.log'))
    servers.push(behind)
    const gw = await startGateway(behind.url, join(tmp, 'gateway.log'))
    gateway = gw.gateway
    console.log(`direct:      ${direct.url}\nvia gateway: ${gw.url} (upstream ${behind.url})\n`)

    // The two targets share nothing, so they run side by side; each target's scenarios run in order.
    const [directResults, viaResults] = await Promise.all([
      runAll(direct.url, scenarios, join(tmp, 'direct'), 'direct'),
      runAll(gw.url, scenarios, join(tmp, 'gateway'), 'gateway'),
    ])

    console.log(`\n${table(scenarios, directResults, viaResults)}\n`)
    console.log('cells: outcome, SUCCESS/(SUCCESS+FAILURE) checks, then WARNING (w), INFO (i), SKIPPED (s) counts\n')
    const differences = scenarios
      .map((s) => ({ scenario: s, diffs: diff(s, directResults.get(s), viaResults.get(s)) }))
      .filter((d) => d.diffs.length > 0)
    for (const e of EXPECTED_DIFFERENCES) {
      if (seenExpected.has(`${e.scenario}/${e.check}`)) console.log(`expected difference ${e.scenario}/${e.check}: direct ${e.direct}, gateway ${e.gateway} — ${e.why}`)
      else differences.push({ scenario: e.scenario, diffs: [`listed difference ${e.check} (direct ${e.direct}, gateway ${e.gateway}) did not happen: update expected-differences.ts`] })
    }
    for (const { scenario, diffs } of differences) {
      console.log(`DIFFERENT ${scenario}:\n${diffs.map((d) => `  - ${d}`).join('\n')}\n`)
    }
    await writeFile(join(tmp, 'summary.json'), JSON.stringify({
      direct: direct.url,
      gateway: gw.url,
      scenarios: scenarios.map((s) => ({ scenario: s, direct: directResults.get(s), gateway: viaResults.get(s) })),
      differences,
    }, null, 2))
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    if (differences.length > 0) {
      console.log(`FAILED: ${differences.length} of ${scenarios.length} scenarios differ between direct and via gateway (${seconds} s; raw results in ${tmp})`)
      return 1
    }
    console.log(`OK: all ${scenarios.length} scenarios identical, check by check, direct and via gateway, but for ${seenExpected.size} listed difference(s) (${seconds} s; raw results in ${tmp})`)
    return 0
  } finally {
    if (gateway !== undefined) await within(5_000, 'gateway close', gateway.close()).catch((err: unknown) => console.error(String(err)))
    await Promise.all(servers.map((s) => s.close()))
  }
}

let code = 2
try {
  code = await main()
} catch (err) {
  console.error('conformance: run failed:', err)
} finally {
  clearTimeout(watchdog)
  killAll()
}
process.exit(code)
