/**
 * Helpers shared by the main section (run.ts) and the features section (features.ts) of
 * `npm run bench`: free ports, readiness probes, noise from other processes, the gateway's memory
 * as it reports it, and a summary of what the gateway logged at warn or above.
 */
import { createServer, type AddressInfo, type Server } from 'node:net'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { CLOCK_TICK_US, cpuTicks, type Proc, type ProcessGroup } from './procs.ts'

export const mb = (bytes: number | undefined): string => bytes === undefined ? '?' : `${(bytes / 1048576).toFixed(0)} MB`
export const elapsed = (t0: number): string => { const s = Math.round((Date.now() - t0) / 1000); return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` }

export async function freePorts (n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => resolve(s))
  })))
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

export async function httpOk (url: string, init?: RequestInit): Promise<boolean> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) })
  await res.arrayBuffer()
  return res.ok
}

export async function upstreamPosts (port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`, { signal: AbortSignal.timeout(5_000) })
  return ((await res.json()) as { posts: number }).posts
}

export type Snapshot = Map<number, { ticks: number; comm: string }>

/** CPU ticks of every process except ours (the machine is shared: other sessions are noise). */
export function snapshot (ours: ReadonlySet<number>): Snapshot {
  const m: Snapshot = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    const pid = Number(d)
    if (pid === process.pid || ours.has(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const ticks = cpuTicks(pid)
      if (ticks !== undefined) m.set(pid, { ticks, comm })
    } catch { /* gone */ }
  }
  return m
}

/** Processes that used ≥ minPct of a core between two snapshots, busiest first. */
export function busiest (a: Snapshot, b: Snapshot, windowMs: number, minPct: number): string[] {
  const out: Array<[number, string]> = []
  for (const [pid, { ticks, comm }] of b) {
    const pct = ((ticks - (a.get(pid)?.ticks ?? 0)) * CLOCK_TICK_US) / (windowMs * 10)
    if (pct < minPct) continue
    let cmd = comm
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 110) || comm } catch { /* gone */ }
    out.push([pct, `pid ${pid} ${pct.toFixed(0)}% ${cmd}`])
  }
  return out.sort((x, y) => y[0] - x[0]).map(([, line]) => line)
}

export async function busyProcesses (ours: ReadonlySet<number>, windowMs = 1_000): Promise<string[]> {
  const a = snapshot(ours)
  await sleep(windowMs)
  return busiest(a, snapshot(ours), windowMs, 5)
}

/** The gateway's own view of its memory (prom-client default metrics on the admin listener). */
export async function gatewayMemory (adminPort: number): Promise<string> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
    const sum = (name: string): number | undefined => metricSum(text, name)
    const gc = sum('nodejs_gc_duration_seconds_sum')
    return `rss ${mb(sum('process_resident_memory_bytes'))}, heap used ${mb(sum('nodejs_heap_size_used_bytes'))} of ${mb(sum('nodejs_heap_size_total_bytes'))}, ` +
      `external ${mb(sum('nodejs_external_memory_bytes'))}, GC time so far ${gc === undefined ? '?' : `${gc.toFixed(2)} s`}`
  } catch (err) {
    return `(metrics unavailable: ${(err as Error).message})`
  }
}

/** Sum of every sample of metric `name` (any labels) in a Prometheus text exposition. */
export function metricSum (text: string, name: string, labelFilter?: (line: string) => boolean): number | undefined {
  const sample = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:\\{(?:[^"}]|"(?:[^"\\\\]|\\\\.)*")*\\})?\\s+(\\S+)`)
  const values = text.split('\n')
    .filter((l) => labelFilter === undefined || labelFilter(l))
    .map((l) => sample.exec(l)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .filter((v) => Number.isFinite(v))
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0)
}

export function rssSplit (pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string): string => { const m = new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(status); return m === null ? '?' : `${Math.round(Number(m[1]) / 1024)} MB` }
    return `VmRSS ${kb('VmRSS')} = RssAnon ${kb('RssAnon')} + RssFile ${kb('RssFile')} (mapped node binary and libraries) + RssShmem ${kb('RssShmem')}; VmHWM ${kb('VmHWM')}`
  } catch {
    return '(gone)'
  }
}

/**
 * What a gateway logged from byte `start` of its log file: line count, lines at warn/error/fatal
 * (or not JSON) grouped by message, the first one in full. `maxBytes` bounds what is read (an
 * info-level log under load is large): only its tail is scanned then, and that is said.
 */
export function scanGatewayLog (file: string, start: number, label: string, maxBytes = 64 * 1048576): string {
  if (!existsSync(file)) return `${label}: no log file`
  let buf = readFileSync(file)
  let note = ''
  if (buf.length - start > maxBytes) {
    note = ` (only the last ${mb(maxBytes)} of ${mb(buf.length - start)} scanned)`
    // from the first whole line inside the tail
    start = buf.indexOf(10, buf.length - maxBytes) + 1
  }
  buf = buf.subarray(start)
  const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '')
  const bad = lines.filter((l) => !/"level":[123]0,/.test(l))
  const groups = new Map<string, number>()
  for (const l of bad) {
    let key = l.slice(0, 160)
    try {
      const j = JSON.parse(l) as { level?: number; msg?: string; err?: { type?: string; message?: string; code?: string } }
      key = `level ${j.level} "${j.msg ?? ''}"${j.err === undefined ? '' : ` err ${j.err.type ?? ''}: ${j.err.message ?? ''}`}`
    } catch { /* not JSON: keep the raw start */ }
    groups.set(key, (groups.get(key) ?? 0) + 1)
  }
  return `${label}: ${lines.length} line(s)${note}, ${bad.length} at warn/error/fatal or not JSON` +
    [...groups].map(([k, n]) => `\n  ${n} × ${k}`).join('') +
    (bad.length === 0 ? '' : `\n  first one in full: ${bad[0]!.slice(0, 1500)}`)
}

/**
 * The node flags every bench gateway runs with: BENCH_GATEWAY_FLAGS, else the image's own
 * (deploy/Dockerfile's `ENV NODE_OPTIONS=…`), so the bench measures what is shipped.
 */
export function gatewayNodeFlags (root: string): string[] {
  const given = process.env.BENCH_GATEWAY_FLAGS
  if (given !== undefined) return given.split(/\s+/).filter((f) => f !== '')
  const image = /^ENV NODE_OPTIONS=(.+)$/m.exec(readFileSync(join(root, 'deploy/Dockerfile'), 'utf8'))?.[1] ?? ''
  return image.replace(/^"|"$/g, '').split(/\s+/).filter((f) => f !== '')
}

/** The allocator settings of deploy/Dockerfile (ENV MALLOC_*), for every benchmarked gateway (BENCH_GATEWAY_FLAGS does not change them). */
export function gatewayImageEnv (root: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of readFileSync(join(root, 'deploy/Dockerfile'), 'utf8').matchAll(/^ENV (MALLOC_[A-Z_]+)=(\S+)$/gm)) env[m[1] as string] = m[2] as string
  return env
}

/** An integer setting from the environment: `fallback` when unset, else at least `min`. */
export function intEnv (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min} (got ${JSON.stringify(raw)})`)
  return n
}

/** What every section of the bench is handed by run.ts. */
export interface SectionContext {
  readonly group: ProcessGroup
  readonly tmp: string
  readonly node: string
  readonly root: string
  readonly here: string
  readonly loadCpu: string
  readonly proxyCpu: string
  readonly upstream: Proc
  readonly upstreamPort: number
  readonly signal: AbortSignal
  readonly log: (line?: string) => void
}
