/**
 * Table helpers of the features section of `npm run bench` (features.ts, store.ts): number
 * formats, a markdown table, and one row per variant with its ratios to a base variant taken
 * per round (side by side), then the median.
 */
import { median, perRoundValues, valid } from './report.ts'
import type { FeatureRecord, GrantRun } from './features.ts'

export const f2 = (v: number | undefined, d = 2, signed = false): string => v === undefined ? '' : `${signed && v >= 0 ? '+' : ''}${v.toFixed(d)}`
export const int = (v: number | undefined, signed = false): string => v === undefined ? '' : `${signed && v >= 0 ? '+' : ''}${Math.round(v)}`

export function markdown (title: string, head: readonly string[], lines: ReadonlyArray<readonly string[]>): string {
  const all = [head, ...lines]
  const widths = head.map((_, i) => Math.max(...all.map((l) => (l[i] ?? '').length)))
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ')} |`
  return [`### ${title}`, '', line(head), `|${widths.map((w, i) => i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`).join('|')}|`, ...lines.map(line)].join('\n')
}

export interface VariantRow {
  readonly target: string
  readonly rps: number | undefined
  readonly p50: number | undefined
  readonly p99: number | undefined
  readonly xBase: number | undefined
  readonly xBaseQuiet: number | undefined
  readonly quietRounds: number
  readonly addP50: number | undefined
  readonly addP99: number | undefined
  readonly cpuUs: number | undefined
  readonly addCpuUs: number | undefined
  readonly rssIdle: number | undefined
  readonly rssLoad: number | undefined
  readonly noise: number | undefined
  readonly validRuns: number
  readonly runs: number
  readonly errors: string
  readonly generated: number
  readonly distinct: number
  readonly requests: number
}

export function variantRows (records: readonly FeatureRecord[], targets: readonly string[], base: string): VariantRow[] {
  return targets.map((target) => {
    const all = records.filter((r) => r.target === target)
    const ok = all.filter(valid)
    const cmp = (f: (t: FeatureRecord, b: FeatureRecord) => number): number | undefined => target === base ? undefined : median(perRoundValues(records, target, base, f))
    const q = target === base ? [] : perRoundValues(records, target, base, (t, b) => t.result.rps / b.result.rps, true)
    const non2xx = all.reduce((s, r) => s + r.result.non2xx, 0)
    const socket = all.reduce((s, r) => s + r.result.errors - r.result.non2xx, 0)
    return {
      target,
      rps: median(ok.map((r) => r.result.rps)),
      p50: median(ok.map((r) => r.result.p50)),
      p99: median(ok.map((r) => r.result.p99)),
      xBase: cmp((t, b) => t.result.rps / b.result.rps),
      xBaseQuiet: median(q),
      quietRounds: q.length,
      addP50: cmp((t, b) => t.result.p50 - b.result.p50),
      addP99: cmp((t, b) => t.result.p99 - b.result.p99),
      cpuUs: median(ok.map((r) => r.proxyCpuUs ?? NaN)),
      addCpuUs: cmp((t, b) => (t.proxyCpuUs ?? NaN) - (b.proxyCpuUs ?? NaN)),
      rssIdle: median(ok.map((r) => r.rssIdle ?? NaN)),
      rssLoad: ok.length === 0 ? undefined : Math.max(...ok.map((r) => r.rssLoad ?? 0)),
      noise: median(all.map((r) => r.otherOnProxyCpu ?? NaN)),
      validRuns: ok.length,
      runs: all.length,
      errors: non2xx + socket === 0 ? '0' : `⚠ non-2xx ${non2xx}, socket ${socket}`,
      generated: ok.reduce((s, r) => s + (r.generated ?? 0), 0),
      distinct: ok.reduce((s, r) => s + (r.distinct ?? 0), 0),
      requests: ok.reduce((s, r) => s + r.result.requests, 0),
    }
  })
}

/** How much each counter of `after` grew since `before` (a counter absent before started at 0). */
export function grown (before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0)
  return out
}

/** A grant run counts when it sent grants and every answer was a 200 with an access token. */
export function grantsOk (g: GrantRun): boolean {
  return g.sent > 0 && g.ok === g.sent
}
