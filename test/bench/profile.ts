/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`): top functions by self time with
 * file:line, and self time grouped by where the code lives (src/ file, npm package, node
 * internals, GC…). Used by `BENCH_PROFILE=1 npm run bench`; also standalone:
 *   node test/bench/profile.ts FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface ProfileSummary {
  /** what was counted: the whole profile, or only the samples inside the measured window */
  readonly scope: string
  readonly totalMs: number
  readonly idleMs: number
  readonly top: ReadonlyArray<{ name: string; where: string; selfMs: number; pct: number }>
  readonly areas: ReadonlyArray<{ area: string; selfMs: number; pct: number }>
  /** total (inclusive) time of the project's own functions (src/…), biggest first */
  readonly inclusive: ReadonlyArray<{ name: string; where: string; totalMs: number; pct: number }>
  /** the JS frames that called the top native entries (e.g. writev), with their share */
  readonly nativeCallers: ReadonlyArray<{ native: string; caller: string; ms: number }>
}

const root = fileURLToPath(new URL('../../', import.meta.url))

function where (cf: CallFrame): string {
  if (cf.url === '') return ''
  let path = cf.url.startsWith('file://') ? fileURLToPath(cf.url) : cf.url
  if (path.startsWith(root)) path = relative(root, path)
  return `${path}:${cf.lineNumber + 1}:${cf.columnNumber + 1}`
}

function area (cf: CallFrame): string {
  if (cf.url === '') return cf.functionName.startsWith('(') ? cf.functionName : '(native / builtin)'
  const path = cf.url.startsWith('file://') ? fileURLToPath(cf.url) : cf.url
  if (path.startsWith('node:')) return 'node: internals'
  const nm = path.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/')
    return `pkg ${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`
  }
  if (path.startsWith(root)) return relative(root, path)
  return path
}

/**
 * `window`: [start, end] in CLOCK_MONOTONIC µs (process.hrtime, the clock V8 stamps samples
 * with); only samples inside it are counted — e.g. the measured run, without start-up and warm-up.
 */
export function summarizeProfile (file: string, topN = 25, window?: readonly [number, number]): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const collect = (from: number, to: number): Map<number, number> => {
    const self = new Map<number, number>()
    let t = profile.startTime
    // timeDeltas[i] is the time between sample i-1 and sample i: charge it to sample i-1
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i] ?? 0
      if (t < from || t > to) continue
      const delta = profile.timeDeltas[i + 1] ?? 0
      const id = profile.samples[i]!
      self.set(id, (self.get(id) ?? 0) + Math.max(0, delta))
    }
    return self
  }
  let self = window === undefined ? new Map<number, number>() : collect(window[0], window[1])
  let scope = window === undefined ? '' : `samples of the measured run only (${((window[1] - window[0]) / 1e6).toFixed(1)} s window)`
  if (self.size === 0) {
    self = collect(-Infinity, Infinity)
    scope = window === undefined ? 'whole profile' : 'whole profile (no sample fell inside the measured window: clock mismatch?)'
  }
  let total = 0
  let idle = 0
  const fns = new Map<string, { name: string; where: string; us: number }>()
  const areas = new Map<string, number>()
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame
    total += us
    if (cf.functionName === '(idle)') { idle += us; continue }
    const w = where(cf)
    const key = `${cf.functionName}@${w}`
    const entry = fns.get(key) ?? { name: cf.functionName === '' ? '(anonymous)' : cf.functionName, where: w, us: 0 }
    entry.us += us
    fns.set(key, entry)
    const a = area(cf)
    areas.set(a, (areas.get(a) ?? 0) + us)
  }
  const busy = total - idle
  // inclusive time: each sample's time counts once for every distinct src/ function on its stack
  const incl = new Map<string, { name: string; where: string; us: number }>()
  const nativeCallers = new Map<string, number>()
  const topNative = new Set([...fns.values()].filter((f) => f.where === '' && !f.name.startsWith('(')).sort((a, b) => b.us - a.us).slice(0, 3).map((f) => f.name))
  for (const [id, us] of self) {
    const seen = new Set<string>()
    const leaf = byId.get(id)!.callFrame
    if (leaf.url === '' && topNative.has(leaf.functionName)) {
      // the first frame up the stack that is not node's own plumbing
      let cur = parent.get(id)
      let caller = '(unknown)'
      for (let depth = 0; cur !== undefined && depth < 40; depth++, cur = parent.get(cur)) {
        const cf = byId.get(cur)!.callFrame
        if (cf.url !== '' && !cf.url.startsWith('node:')) { caller = `${cf.functionName || '(anonymous)'} ${where(cf)}`; break }
      }
      const key = `${leaf.functionName}\u0000${caller}`
      nativeCallers.set(key, (nativeCallers.get(key) ?? 0) + us)
    }
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame
      const w = where(cf)
      if (!w.startsWith('src/')) continue
      const key = `${cf.functionName}@${w}`
      if (seen.has(key)) continue
      seen.add(key)
      const entry = incl.get(key) ?? { name: cf.functionName === '' ? '(anonymous)' : cf.functionName, where: w, us: 0 }
      entry.us += us
      incl.set(key, entry)
    }
  }
  return {
    inclusive: [...incl.values()].sort((a, b) => b.us - a.us).slice(0, topN)
      .map((f) => ({ name: f.name, where: f.where, totalMs: f.us / 1000, pct: (100 * f.us) / busy })),
    nativeCallers: [...nativeCallers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
      .map(([k, us]) => { const [native, caller] = k.split('\u0000') as [string, string]; return { native, caller, ms: us / 1000 } }),
    scope,
    totalMs: total / 1000,
    idleMs: idle / 1000,
    top: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, topN)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, pct: (100 * f.us) / busy })),
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN)
      .map(([a, us]) => ({ area: a, selfMs: us / 1000, pct: (100 * us) / busy })),
  }
}

export function formatProfile (s: ProfileSummary): string {
  const busy = s.totalMs - s.idleMs
  const out = [`profile (${s.scope}): ${s.totalMs.toFixed(0)} ms sampled, ${s.idleMs.toFixed(0)} ms idle, ${busy.toFixed(0)} ms busy (percentages of busy)`, '',
    '| self ms | % busy | function | where |', '|---:|---:|---|---|']
  for (const f of s.top) out.push(`| ${f.selfMs.toFixed(1)} | ${f.pct.toFixed(1)} | ${f.name} | ${f.where} |`)
  out.push('', '| self ms | % busy | area |', '|---:|---:|---|')
  for (const a of s.areas) out.push(`| ${a.selfMs.toFixed(1)} | ${a.pct.toFixed(1)} | ${a.area} |`)
  out.push('', 'project functions (src/) by total time, callees included:', '', '| total ms | % busy | function | where |', '|---:|---:|---|---|')
  for (const f of s.inclusive) out.push(`| ${f.totalMs.toFixed(1)} | ${f.pct.toFixed(1)} | ${f.name} | ${f.where} |`)
  out.push('', 'who calls the top native functions (first frame above node internals):', '', '| ms | native | caller |', '|---:|---|---|')
  for (const c of s.nativeCallers) out.push(`| ${c.ms.toFixed(1)} | ${c.native} | ${c.caller} |`)
  return out.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: node test/bench/profile.ts FILE.cpuprofile [TOP]')
    process.exit(2)
  }
  console.log(formatProfile(summarizeProfile(file, Number(process.argv[3] ?? 25))))
}
