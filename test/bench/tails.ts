/**
 * The tails section of `npm run bench` (alone: BENCH_ONLY=tails), issue 17: p50 and p99 at
 * c=1/10/100 for nginx and the full gateway with tracing off, at the shipped ratio and always_on,
 * measured as the main section (performance.md Protocol P, measure.ts):
 *   CPU 0: wrk -t1 + the mock upstream + the OTLP sink (test/bench/otlp-sink.ts) + log readers
 *   CPU 1: the proxy under test (the others idle)
 * The full gateway: the auth benchmarks' config (features-options.ts authGatewayYaml, the
 * `secured` server: auth required with one cached access token from the real flow, scope
 * tools.read, the tool policy), metrics, log level `info` as shipped (the audit line into a FIFO
 * read on CPU 0), and
 *   off    → no OTEL_*
 *   on     → OTLP http/protobuf to the sink, parentbased_traceidratio 0.1 (the prod overlay's)
 *   always → the same with parentbased_always_on
 * BENCH_TAILS_PROCESSES (3) processes per variant, round r measuring process ((r − 1) mod P) + 1.
 * Every target gets the same wrk script (rotate-auth.lua, the one token: nginx passes the header
 * on unread). Rounds in alternating order; p99/p50 and × nginx per round, then the median. Runs
 * with errors don't count. Targets: p99 ≤ 5 × p50 at c=100 for `on`; `on` ≥ 0.37 × nginx at c=10.
 *
 * Environment:
 *   BENCH_TAILS_CONNECTIONS=1,10,100   BENCH_TAILS_ROUNDS=3      BENCH_TAILS_PROCESSES=3
 *   BENCH_TAILS_DURATION=5  seconds per measured run   BENCH_TAILS_WARMUP=1   BENCH_TAILS_PREWARM=5 (per process, c=10)
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor, withChildren, type Proc } from './procs.ts'
import { elapsed, freePorts, gatewayMemory, gatewayNodeFlags, httpOk, intEnv, metricSum, scanGatewayLog, type SectionContext } from './common.ts'
import { nginxArgs, writeNginxConfig } from './nginx.ts'
import { runWrk } from './wrk.ts'
import { measure, type Target } from './measure.ts'
import { QUIET_PCT, median, perRoundValues, quiet, rows, runLine, valid, type RunRecord } from './report.ts'
import { f2, int, markdown } from './feature-tables.ts'
import { PROD_SAMPLER, TOKEN_TTL_S, authGatewayYaml, gatewayBaseEnv, otlpEnv } from './features-options.ts'

const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}'
const GOAL_TAIL = 5
const GOAL_RATIO = 0.37

export interface TailsOptions {
  readonly connections: readonly number[]
  readonly rounds: number
  readonly processes: number
  readonly duration: number
  readonly warmup: number
  readonly prewarm: number
}

export function tailsOptions (env: NodeJS.ProcessEnv): TailsOptions {
  const connections = (env.BENCH_TAILS_CONNECTIONS ?? '1,10,100').split(',').map((s) => Number(s.trim()))
  if (connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('BENCH_TAILS_CONNECTIONS must be a comma-separated list of integers ≥ 1')
  return {
    connections,
    rounds: intEnv(env, 'BENCH_TAILS_ROUNDS', 3, 1),
    processes: intEnv(env, 'BENCH_TAILS_PROCESSES', 3, 1),
    duration: intEnv(env, 'BENCH_TAILS_DURATION', 5, 1),
    warmup: intEnv(env, 'BENCH_TAILS_WARMUP', 1, 0),
    prewarm: intEnv(env, 'BENCH_TAILS_PREWARM', 5, 0),
  }
}

const VARIANTS = ['off', 'on', 'always'] as const
const TARGETS = ['nginx', ...VARIANTS]

/** Seconds the section should take (for run.ts's estimate and watchdog). */
export function tailsEstimateS (o: TailsOptions): number {
  return 25 + (1 + VARIANTS.length * o.processes) * (o.prewarm + 1) + o.connections.length * o.rounds * TARGETS.length * (o.warmup + o.duration + 1)
}

export interface TailsContext extends SectionContext {
  readonly wrk: string
  readonly nginx: string
  /** PIDs of the bench's processes started outside this section (not noise) */
  readonly ours: () => ReadonlySet<number>
  readonly options: TailsOptions
}

export interface TailsOutcome {
  readonly records: readonly RunRecord[]
  readonly summary: string
  readonly goal: string
  readonly failed: boolean
}

const LABEL: Record<string, string> = {
  nginx: 'nginx',
  off: 'gateway, tracing off',
  on: `gateway, ${PROD_SAMPLER.OTEL_TRACES_SAMPLER} ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG}`,
  always: 'gateway, parentbased_always_on',
}

/** p99 / p50 of each valid run of `target`, then the median over the rounds. */
function tailRatio (records: readonly RunRecord[], target: string): number | undefined {
  return median(records.filter((r) => r.target === target && valid(r)).map((r) => r.result.p99 / r.result.p50))
}

export async function runTails (ctx: TailsContext): Promise<TailsOutcome> {
  const t0 = Date.now()
  const o = ctx.options
  const log = ctx.log
  const P = o.processes
  log(`\n# tails: p50/p99 at c=${o.connections.join('/')}, nginx vs the full gateway with tracing off / ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG} / always_on ` +
    `(${o.rounds} rounds, ${P} gateway process${P === 1 ? '' : 'es'} per variant taking turns by round, ${o.warmup} s warm-up + ${o.duration} s; estimated ${Math.ceil(tailsEstimateS(o) / 60)} min)`)
  log(`pinning: CPU ${ctx.loadCpu} = wrk -t1 + upstream + OTLP sink + the gateways' log readers; CPU ${ctx.proxyCpu} = the proxy under test`)
  // loaded only now: it imports src/ (dev IdP, token issuing), which others may be editing
  const { CLIENT, generateSigningKeys, redeem, startBenchIdp } = await import('./tokens.ts')
  const [sinkPort, nginxPort, publicPort, idpPort] = await freePorts(4) as [number, number, number, number]
  const procs: Proc[] = []
  const stops: Array<() => Promise<unknown>> = []
  const notes: string[] = []
  const records: RunRecord[] = []
  /** the gateways' logs from the byte they were ready at */
  const logs: Array<{ name: string; file: string; start: number }> = []
  const spawn = (name: string, command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv, collector?: string): Proc => {
    const p = ctx.group.spawn(name, command, args, { cpu: name.startsWith('gateway') || name === 'nginx (tails)' ? ctx.proxyCpu : ctx.loadCpu, cwd: ctx.root, logFile, ...(env === undefined ? {} : { env }), ...(collector === undefined ? {} : { logCollectorCpu: collector }) })
    procs.push(p)
    return p
  }
  try {
    const sink = spawn('otlp-sink (tails)', ctx.node, [join(ctx.here, 'otlp-sink.ts'), String(sinkPort)], join(ctx.tmp, 'otlp-sink-tails.log'))
    const files = writeNginxConfig(join(ctx.tmp, 'tails'), nginxPort, ctx.upstreamPort)
    const nginx = spawn('nginx (tails)', ctx.nginx, nginxArgs(files), join(ctx.tmp, 'nginx-tails.out'))
    await waitFor('the OTLP sink', () => httpOk(`http://127.0.0.1:${sinkPort}/stats`), 15_000, sink, ctx.group)
    await waitFor('nginx', () => httpOk(`http://127.0.0.1:${nginxPort}/stats`), 15_000, nginx, ctx.group)

    // replicas behind one load balancer: one publicUrl, one signing key set, one token good at all
    const publicUrl = `http://127.0.0.1:${publicPort}`
    const keysFile = join(ctx.tmp, 'tails-signing-keys.json')
    generateSigningKeys(ctx.node, ctx.root, keysFile)
    const idp = await startBenchIdp(idpPort, publicUrl, `${publicUrl}/mcp/secured`)
    stops.push(() => idp.close())
    const otlp = otlpEnv(sinkPort)
    const otel: Record<string, Record<string, string>> = {
      off: {},
      on: { ...otlp, ...PROD_SAMPLER },
      always: { ...otlp, OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
    }
    const base = { ...gatewayBaseEnv(), PORTCULLIS_LOG_LEVEL: 'info', BENCH_CLIENT_SECRET: CLIENT.secret, PORTCULLIS_SESSION_KEY: randomBytes(32).toString('base64url') }
    // one at a time, each on ports picked just before: a port found free can be taken by another
    // process's outgoing connection before the gateway binds it (this machine is shared), so an
    // EADDRINUSE start is retried on new ports
    const gws: Array<{ variant: string; process: number; name: string; port: number; admin: number; proc: Proc; logFile: string }> = []
    for (const variant of VARIANTS) {
      for (let k = 1; k <= P; k++) {
        const name = `tails-${variant}-${k}`
        for (let attempt = 1; ; attempt++) {
          const [port, admin] = await freePorts(2) as [number, number]
          const config = join(ctx.tmp, `gateway-${name}.yaml`)
          writeFileSync(config, authGatewayYaml({
            publicUrl, port, admin, upstreamPort: ctx.upstreamPort, keysFile, idpIssuer: idp.issuer, clientId: CLIENT.id, tokenTtlS: TOKEN_TTL_S, writer: 'test/bench/tails.ts',
          }))
          const logFile = join(ctx.tmp, `gateway-${name}-${attempt}.log`)
          const proc = spawn(`gateway ${name}`, ctx.node, [...gatewayNodeFlags(ctx.root), join(ctx.root, 'bin/portcullis.js'), 'start', '--config', config], logFile, { ...base, ...otel[variant] }, ctx.loadCpu)
          try {
            await waitFor(`the ${name} gateway (/readyz)`, () => httpOk(`http://127.0.0.1:${admin}/readyz`), 30_000, proc, ctx.group)
          } catch (err) {
            if (attempt < 3 && (err as Error).message.includes('EADDRINUSE')) {
              log(`  ${name}: a port was taken before the gateway bound it (EADDRINUSE); again on new ports`)
              continue
            }
            throw err
          }
          logs.push({ name, file: logFile, start: readFileSync(logFile).length })
          gws.push({ variant, process: k, name, port, admin, proc, logFile })
          break
        }
      }
    }
    log(`started: OTLP sink pid ${sink.pid} :${sinkPort}, nginx pid ${nginx.pid} :${nginxPort}, ${gws.length} gateways (${gws.map((g) => `${g.variant} #${g.process} pid ${g.proc.pid}`).join(', ')}), publicUrl ${publicUrl} (shared, not listened on)`)

    // the real flow once, at the first gateway; the token is good at every one
    const { token } = await redeem(`http://127.0.0.1:${gws[0]!.port}`, await idp.idJagViaExchange())
    const tokenFile = join(ctx.tmp, 'tails-token.txt')
    writeFileSync(tokenFile, `${token}\n`)
    const url = (g: typeof gws[number]): string => `http://127.0.0.1:${g.port}/mcp/secured`
    const nginxUrl = `http://127.0.0.1:${nginxPort}/mcp`
    log('smoke checks (one POST each, the real-flow token):')
    for (const [what, u] of [['nginx', nginxUrl], ...gws.map((g) => [`${g.variant} #${g.process}`, url(g)])] as Array<[string, string]>) {
      const res = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` }, body: BODY, signal: AbortSignal.timeout(5_000) })
      const text = await res.text()
      if (res.status !== 200 || !text.includes('"result"')) throw new Error(`smoke check ${what} (${u}) failed: HTTP ${res.status}\n${text.slice(0, 500)}`)
      log(`  ${what.padEnd(9)} ${res.status} ${res.headers.get('content-type') ?? ''}, ${Buffer.byteLength(text)} B`)
    }

    const script = join(ctx.here, 'rotate-auth.lua')
    const nginxTarget: Target = { name: 'nginx', url: nginxUrl, pids: () => withChildren(nginx.pid) }
    const gwTarget = (g: typeof gws[number]): Target => ({ name: g.variant, url: url(g), pids: () => [g.proc.pid], process: g.process })
    if (o.prewarm > 0) {
      for (const t of [nginxTarget, ...gws.map(gwTarget)]) {
        const w = await runWrk({ wrk: ctx.wrk, url: t.url, connections: 10, durationS: o.prewarm, script, args: [tokenFile], cpu: ctx.loadCpu, signal: ctx.signal })
        log(`pre-warm ${`${t.name}${t.process === undefined ? '' : ` #${t.process}`}`.padEnd(9)} c=10 ${o.prewarm} s (not counted): ${Math.round(w.rps)} req/s${w.errors === 0 ? '' : `, ⚠ ${w.errors} errors`}`)
      }
    }
    const env = {
      ours: () => new Set([...ctx.ours(), ...procs.flatMap((p) => withChildren(p.pid))]),
      wrk: ctx.wrk,
      script,
      args: [tokenFile],
      upstream: ctx.upstream,
      upstreamPort: ctx.upstreamPort,
      signal: ctx.signal,
      warmup: o.warmup,
      duration: o.duration,
      loadCpu: ctx.loadCpu,
      proxyCpu: ctx.proxyCpu,
      log,
    }
    for (const c of o.connections) {
      log(`\n## tails, ${c} connection${c === 1 ? '' : 's'}`)
      for (let round = 1; round <= o.rounds; round++) {
        const p = ((round - 1) % P) + 1
        const targets = [nginxTarget, ...gws.filter((g) => g.process === p).map(gwTarget)]
        for (const t of round % 2 === 1 ? targets : targets.reverse()) {
          if (ctx.signal.aborted) throw new Error('aborted')
          const r = await measure(env, 'tails', t, c, round)
          records.push(r)
          log(runLine(r, o.rounds))
        }
      }
    }

    // one table: a row per connection count and target
    const head = ['c', 'proxy', 'req/s', '× nginx', 'p50 ms', 'p99 ms', 'p99/p50', 'p99/p50 per round', 'CPU µs/req', `noisy runs (CPU ${ctx.proxyCpu} other ≥ ${QUIET_PCT} %)`, 'valid runs']
    const lines: string[][] = []
    for (const c of o.connections) {
      const rs = records.filter((r) => r.connections === c)
      for (const row of rows(rs, TARGETS)) {
        const per = rs.filter((r) => r.target === row.target).sort((a, b) => a.round - b.round).map((r) => valid(r) ? (r.result.p99 / r.result.p50).toFixed(1) : '✗')
        lines.push([String(c), LABEL[row.target] ?? row.target, int(row.rps), row.target === 'nginx' ? '' : f2(row.xNginx), f2(row.p50, 3), f2(row.p99, 2), f2(tailRatio(rs, row.target), 1), per.join(', '), int(row.proxyCpuUs), String(rs.filter((r) => r.target === row.target && !quiet(r)).length), `${row.validRuns}/${row.runs}`])
      }
    }
    log()
    log(markdown(`tails (medians of ${o.rounds} rounds; p99/p50 and × nginx: median of per-round values; the gateway: auth + policy + metrics + info audit log, ${P} processes per variant taking turns)`, head, lines))

    await new Promise((resolve) => setTimeout(resolve, 6_000)) // the last batch of spans (OTEL_BSP_SCHEDULE_DELAY 5 s)
    try {
      const s = await (await fetch(`http://127.0.0.1:${sinkPort}/stats`, { signal: AbortSignal.timeout(5_000) })).json() as { posts: Record<string, number> }
      notes.push(`OTLP sink received (the on and always gateways): ${JSON.stringify(s.posts)}${(s.posts['/v1/traces'] ?? 0) === 0 ? ' ⚠ no spans: the tracing variants made none' : ''}`)
    } catch (err) {
      notes.push(`OTLP sink stats unavailable: ${(err as Error).message}`)
    }
    for (const g of gws.filter((x) => x.process === 1)) notes.push(`${g.name} /metrics after the runs: ${await gatewayMemory(g.admin)}`)
    // A gateway that dropped audit lines (its log reader too far behind) did less work than the
    // others: its figures would flatter it.
    let dropped = 0
    for (const g of gws) {
      const text = await (await fetch(`http://127.0.0.1:${g.admin}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
      dropped += metricSum(text, 'portcullis_log_lines_dropped_total') ?? Number.NaN
    }
    notes.push(`log lines dropped by the gateways (portcullis_log_lines_dropped_total, all ${gws.length}): ${dropped}${dropped === 0 ? '' : ' ⚠ the audit log lost lines: these runs did less work than a gateway whose reader keeps up'}`)

    // verdicts
    const hi = Math.max(...o.connections)
    const tailOn = tailRatio(records.filter((r) => r.connections === hi), 'on')
    const at10 = records.filter((r) => r.connections === 10)
    const ratio = (t: string): number | undefined => median(perRoundValues(at10, t, 'nginx', (a, b) => a.result.rps / b.result.rps))
    const pf = (ok: boolean | undefined): string => ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL'
    const tailsAt = (c: number): string => TARGETS.map((t) => `${t} ${f2(tailRatio(records.filter((r) => r.connections === c), t), 1)}`).join(', ')
    const goal = `GOAL (issue 17, tails): p99/p50 at c=${hi} with ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG} sampling ${f2(tailOn, 2)} (≤ ${GOAL_TAIL}: ${pf(tailOn === undefined ? undefined : tailOn <= GOAL_TAIL)}; ${tailsAt(hi)})` +
      ` | full gateway at ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG} / nginx req/s at c=10 ${f2(ratio('on'), 3)} (≥ ${GOAL_RATIO}: ${pf(ratio('on') === undefined ? undefined : ratio('on')! >= GOAL_RATIO)}; off ${f2(ratio('off'), 3)}, always_on ${f2(ratio('always'), 3)})`
    log()
    log(goal)
    if (notes.length > 0) log(`\n${notes.join('\n')}`)
    const bad = records.filter((r) => !valid(r)).length
    return {
      records,
      summary: `TAILS SUMMARY: p99/p50 ${o.connections.map((c) => `c=${c}: ${tailsAt(c)}`).join('; ')} | runs with errors: ${bad}/${records.length} | noisy runs (other processes ≥ ${QUIET_PCT} % of CPU ${ctx.proxyCpu}): ${records.filter((r) => !quiet(r)).length}/${records.length} | tails wall ${elapsed(t0)}`,
      goal,
      failed: false,
    }
  } finally {
    await Promise.all(procs.filter((p) => p.name.startsWith('gateway')).map((p) => ctx.group.stop(p, 10_000)))
    // info-level logs: one audit line per request; what matters is what is at warn or above
    for (const l of logs) log(scanGatewayLog(l.file, l.start, `${l.name} gateway log after startup`))
    await Promise.all([...procs].reverse().map((p) => ctx.group.stop(p, 5_000)))
    for (const s of stops) await s()
  }
}
