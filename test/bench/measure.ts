/**
 * One measured wrk run against a proxy of `npm run bench` (performance.md Protocol P), shared by
 * the main section (run.ts) and the tails section (tails.ts): the warm-up, then the measured run
 * with the proxy's CPU per request from /proc, its RSS, the noise on its core and a check that
 * the upstream really answered every request wrk counted.
 */
import { CLOCK_TICK_US, cpuTicks, cpuTimes, rssBytes, type Proc } from './procs.ts'
import { busiest, snapshot, upstreamPosts } from './common.ts'
import { runWrk, type WrkResult } from './wrk.ts'
import type { RunRecord } from './report.ts'

export interface Target {
  readonly name: string
  readonly url: string
  readonly pids: () => number[]
  /** which of the target's processes (1…N) */
  readonly process?: number
}

export interface MeasureEnv {
  /** PIDs of the bench's own processes (not noise) */
  readonly ours: () => ReadonlySet<number>
  readonly wrk: string
  readonly script: string
  /** the script's arguments (rotate-auth.lua: the tokens file) */
  readonly args?: readonly string[]
  readonly upstream: Proc
  readonly upstreamPort: number
  readonly signal: AbortSignal
  /** seconds */
  readonly warmup: number
  readonly duration: number
  readonly loadCpu: string
  readonly proxyCpu: string
  readonly log: (line?: string) => void
}

export async function measure (env: MeasureEnv, set: string, target: Target, connections: number, round: number): Promise<RunRecord> {
  const common = { wrk: env.wrk, url: target.url, connections, script: env.script, args: env.args, cpu: env.loadCpu, signal: env.signal }
  const proxyPids = target.pids()
  const rssOf = (): number | undefined => proxyPids.length === 0 ? undefined : proxyPids.reduce((s, p) => s + (rssBytes(p) ?? 0), 0)
  const rssIdle = rssOf()
  if (env.warmup > 0) await runWrk({ ...common, durationS: env.warmup })
  const postsBefore = await upstreamPosts(env.upstreamPort)
  const proxyTicks0 = proxyPids.map((p) => cpuTicks(p) ?? 0)
  const upTicks0 = cpuTicks(env.upstream.pid) ?? 0
  const cpu1Before = cpuTimes(Number(env.proxyCpu))
  const others0 = snapshot(env.ours())
  let rssLoad = 0
  const sampler = setInterval(() => { rssLoad = Math.max(rssLoad, rssOf() ?? 0) }, 1_000)
  let result: WrkResult
  const startUs = Number(process.hrtime.bigint() / 1000n)
  try {
    result = await runWrk({ ...common, durationS: env.duration })
  } finally {
    clearInterval(sampler)
  }
  const window: [number, number] = [startUs, Number(process.hrtime.bigint() / 1000n)]
  const others = busiest(others0, snapshot(env.ours()), (window[1] - window[0]) / 1000, 5)
  const proxyTicks = proxyPids.reduce((s, p, i) => s + (cpuTicks(p) ?? proxyTicks0[i]!) - proxyTicks0[i]!, 0)
  const upTicks = (cpuTicks(env.upstream.pid) ?? upTicks0) - upTicks0
  const cpu1After = cpuTimes(Number(env.proxyCpu))
  const otherOnProxyCpu = cpu1Before === undefined || cpu1After === undefined
    ? undefined
    : Math.max(0, (100 * (cpu1After.busy - cpu1Before.busy - proxyTicks)) / ((cpu1After.busy + cpu1After.idle) - (cpu1Before.busy + cpu1Before.idle)))
  const postsAfter = await upstreamPosts(env.upstreamPort)
  const forwarded = postsAfter - postsBefore
  if (result.requests > 0 && forwarded < result.requests * 0.99) {
    env.log(`  ⚠ ${target.name}: wrk counted ${result.requests} responses but the upstream answered only ${forwarded} requests`)
  }
  if (otherOnProxyCpu !== undefined && otherOnProxyCpu >= 10) {
    env.log(`  ⚠ noise during ${target.name} c=${connections} round ${round}: other processes used ${otherOnProxyCpu.toFixed(0)}% of CPU ${env.proxyCpu}; busiest (any CPU): ${others.slice(0, 3).join(' | ') || 'none ≥ 5 % (kernel threads / softirq?)'}`)
  }
  const perReq = (ticks: number): number | undefined => result.requests === 0 ? undefined : (ticks * CLOCK_TICK_US) / result.requests
  return {
    set,
    connections,
    round,
    target: target.name,
    result,
    proxyCpuUs: proxyPids.length === 0 ? undefined : perReq(proxyTicks),
    upstreamCpuUs: perReq(upTicks),
    rssIdle,
    rssLoad: proxyPids.length === 0 ? undefined : rssLoad,
    otherOnProxyCpu,
    window,
    process: target.process,
  }
}
