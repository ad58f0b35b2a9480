/**
 * Tables of `npm run bench`: per connection count, each target's median req/s and latency, and
 * the ratios / added latency taken **per round, side by side, then the median** (performance.md).
 * A run with any non-2xx or socket error does not count (it is shown, and flagged).
 */
import type { WrkResult } from './wrk.ts'

export interface RunRecord {
  /** response variant: 'json' (POST /mcp) or 'sse' (POST /mcp-sse) */
  readonly set: string
  readonly connections: number
  readonly round: number
  readonly target: string
  readonly result: WrkResult
  /** CPU of the proxy under test (all its processes) per request, µs */
  readonly proxyCpuUs?: number | undefined
  /** CPU of the upstream per request, µs */
  readonly upstreamCpuUs?: number | undefined
  /** proxy RSS just before the run and the largest sample during it, bytes */
  readonly rssIdle?: number | undefined
  readonly rssLoad?: number | undefined
  /** % of the proxy core (CPU 1) used by processes other than the proxy during the run: noise */
  readonly otherOnProxyCpu?: number | undefined
  /** CLOCK_MONOTONIC µs (process.hrtime) at the start and end of the measured wrk run */
  readonly window?: readonly [number, number] | undefined
  /** which of the target's processes served the run, when it has several (1…N) */
  readonly process?: number | undefined
}

export function median (values: readonly number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2
}

export function valid (r: RunRecord): boolean {
  return r.result.errors === 0 && r.result.requests > 0
}

/** Other processes took less than this share (%) of the proxy core during the run. */
export const QUIET_PCT = 10

export function quiet (r: RunRecord): boolean {
  return (r.otherOnProxyCpu ?? 0) < QUIET_PCT
}

export interface Row {
  readonly target: string
  readonly runs: number
  readonly validRuns: number
  readonly rps?: number | undefined
  readonly p50?: number | undefined
  readonly p99?: number | undefined
  readonly xDirect?: number | undefined
  readonly xNginx?: number | undefined
  /** × nginx over the rounds where neither run was noisy, and how many such rounds */
  readonly xNginxQuiet?: number | undefined
  readonly quietRounds: number
  /** this target's CPU per request ÷ nginx's, median of per-round values */
  readonly cpuVsNginx?: number | undefined
  readonly addP50Direct?: number | undefined
  readonly addP99Direct?: number | undefined
  readonly addP50Nginx?: number | undefined
  readonly addP99Nginx?: number | undefined
  readonly proxyCpuUs?: number | undefined
  readonly upstreamCpuUs?: number | undefined
  readonly rssIdle?: number | undefined
  readonly rssLoad?: number | undefined
  readonly otherOnProxyCpu?: number | undefined
  readonly non2xx: number
  readonly socketErrors: number
}

/** Per-round values of `target` against `base`, over rounds where both runs are valid (and quiet, if asked). */
export function perRoundValues<R extends RunRecord> (records: readonly R[], target: string, base: string, f: (t: R, b: R) => number, onlyQuiet = false): number[] {
  const out: number[] = []
  for (const t of records) {
    if (t.target !== target || !valid(t) || (onlyQuiet && !quiet(t))) continue
    const b = records.find((r) => r.target === base && r.round === t.round)
    if (b !== undefined && valid(b) && (!onlyQuiet || quiet(b))) out.push(f(t, b))
  }
  return out
}

function perRound (records: readonly RunRecord[], target: string, base: string, f: (t: RunRecord, b: RunRecord) => number): number | undefined {
  return median(perRoundValues(records, target, base, f))
}

export function rows (records: readonly RunRecord[], targets: readonly string[]): Row[] {
  return targets.map((target) => {
    const all = records.filter((r) => r.target === target)
    const ok = all.filter(valid)
    const cmp = (base: string, f: (t: RunRecord, b: RunRecord) => number): number | undefined =>
      target === base ? undefined : perRound(records, target, base, f)
    const rssLoads = ok.map((r) => r.rssLoad).filter((x): x is number => x !== undefined)
    return {
      target,
      runs: all.length,
      validRuns: ok.length,
      rps: median(ok.map((r) => r.result.rps)),
      p50: median(ok.map((r) => r.result.p50)),
      p99: median(ok.map((r) => r.result.p99)),
      xDirect: cmp('direct', (t, b) => t.result.rps / b.result.rps),
      xNginx: cmp('nginx', (t, b) => t.result.rps / b.result.rps),
      ...(() => {
        const q = target === 'nginx' ? [] : perRoundValues(records, target, 'nginx', (t, b) => t.result.rps / b.result.rps, true)
        return { xNginxQuiet: median(q), quietRounds: q.length }
      })(),
      cpuVsNginx: cmp('nginx', (t, b) => (t.proxyCpuUs ?? NaN) / (b.proxyCpuUs ?? NaN)),
      addP50Direct: cmp('direct', (t, b) => t.result.p50 - b.result.p50),
      addP99Direct: cmp('direct', (t, b) => t.result.p99 - b.result.p99),
      addP50Nginx: cmp('nginx', (t, b) => t.result.p50 - b.result.p50),
      addP99Nginx: cmp('nginx', (t, b) => t.result.p99 - b.result.p99),
      proxyCpuUs: median(ok.map((r) => r.proxyCpuUs ?? NaN)),
      upstreamCpuUs: median(ok.map((r) => r.upstreamCpuUs ?? NaN)),
      rssIdle: median(ok.map((r) => r.rssIdle ?? NaN)),
      rssLoad: rssLoads.length === 0 ? undefined : Math.max(...rssLoads),
      otherOnProxyCpu: median(all.map((r) => r.otherOnProxyCpu ?? NaN)),
      non2xx: all.reduce((s, r) => s + r.result.non2xx, 0),
      socketErrors: all.reduce((s, r) => s + r.result.errors - r.result.non2xx, 0),
    }
  })
}

const fmt = (v: number | undefined, digits: number, signed = false): string =>
  v === undefined ? '' : `${signed && v >= 0 ? '+' : ''}${v.toFixed(digits)}`
const mb = (v: number | undefined): string => v === undefined ? '' : String(Math.round(v / 1048576))

/** A markdown table, one row per target. */
export function table (title: string, rs: readonly Row[]): string {
  const head = ['target', 'req/s', 'p50 ms', 'p99 ms', '× direct', '× nginx', '× nginx, quiet rounds', '+p50 vs direct', '+p99 vs direct',
    '+p50 vs nginx', '+p99 vs nginx', 'proxy CPU µs/req', 'CPU/req × nginx', 'upstream CPU µs/req', 'proxy RSS idle→load MB', 'CPU1 other % (noise)', 'valid runs', 'errors']
  const lines = rs.map((r) => [
    r.target,
    r.rps === undefined ? '' : String(Math.round(r.rps)),
    fmt(r.p50, 3), fmt(r.p99, 2),
    fmt(r.xDirect, 2), fmt(r.xNginx, 2),
    r.xNginxQuiet === undefined ? (r.target === 'nginx' ? '' : 'none quiet') : `${fmt(r.xNginxQuiet, 2)} (${r.quietRounds})`,
    fmt(r.addP50Direct, 3, true), fmt(r.addP99Direct, 2, true),
    fmt(r.addP50Nginx, 3, true), fmt(r.addP99Nginx, 2, true),
    r.proxyCpuUs === undefined ? '' : String(Math.round(r.proxyCpuUs)),
    fmt(r.cpuVsNginx, 1),
    r.upstreamCpuUs === undefined ? '' : String(Math.round(r.upstreamCpuUs)),
    r.rssIdle === undefined ? '' : `${mb(r.rssIdle)}→${mb(r.rssLoad)}`,
    r.otherOnProxyCpu === undefined ? '' : r.otherOnProxyCpu.toFixed(0),
    `${r.validRuns}/${r.runs}`,
    r.non2xx + r.socketErrors === 0 ? '0' : `⚠ non-2xx ${r.non2xx}, socket ${r.socketErrors}`,
  ])
  const all = [head, ...lines]
  const widths = head.map((_, i) => Math.max(...all.map((l) => l[i]!.length)))
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ')} |`
  return [`### ${title}`, '', line(head), `|${widths.map((w, i) => i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`).join('|')}|`, ...lines.map(line)].join('\n')
}

/** One progress line per run. */
export function runLine (r: RunRecord, rounds: number): string {
  const x = r.result
  const errs = x.errors === 0 ? '' : `  ⚠ non-2xx ${x.non2xx} socket c/r/w/t ${x.socket.connect}/${x.socket.read}/${x.socket.write}/${x.socket.timeout} (run does not count)`
  const cpu = r.proxyCpuUs === undefined ? '' : `  proxy ${Math.round(r.proxyCpuUs)} µs/req`
  const up = r.upstreamCpuUs === undefined ? '' : `  upstream ${Math.round(r.upstreamCpuUs)} µs/req`
  const rss = r.rssLoad === undefined ? '' : `  rss ${mb(r.rssIdle)}→${mb(r.rssLoad)} MB`
  const noise = r.otherOnProxyCpu === undefined ? '' : `  cpu1-other ${r.otherOnProxyCpu.toFixed(0)}%${r.otherOnProxyCpu >= 10 ? ' ⚠ noisy' : ''}`
  const target = r.process === undefined ? r.target : `${r.target} #${r.process}`
  return `  [${r.set} c=${r.connections} round ${r.round}/${rounds}] ${target.padEnd(10)} ${String(Math.round(x.rps)).padStart(6)} req/s  p50 ${x.p50.toFixed(3)} ms  p99 ${x.p99.toFixed(2)} ms${cpu}${up}${rss}${noise}${errs}`
}
