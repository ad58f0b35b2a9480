/**
 * `npm run bench`: the gateway side by side with a direct connection and with nginx as a plain
 * reverse proxy, measured as performance.md's Protocol P prescribes:
 *   CPU 0: wrk (1 thread) + the mock upstream (test/bench/upstream.ts)
 *   CPU 1: the proxy under test — nginx (worker_processes 1) or the gateway (`auth: none`)
 * For each connection count: ≥ 3 rounds, each running direct / nginx / gateway back to back
 * (order reversed every other round), each run a 2 s warm-up then a wrk -d run; ratios and added
 * latency are taken per round, then the median. Runs with non-2xx or socket errors don't count.
 * Then the features section (test/bench/features.ts, same pinning, c=10): the cost of token
 * validation (auth: none vs a cached token vs a new token per request), the token endpoint's
 * grants/s, telemetry off vs on (issue 5's ≥ 0.9× goal), and the MCP path with and without the
 * shared store (store.url → a redis-server of its own, test/bench/store.ts: ≥ 0.95×, Redis commands
 * per MCP request and per grant); its BENCH_FEATURES_* options are described there.
 * Then the memory section (test/bench/memory.ts: idle RSS, RSS per open GET stream over rounds of
 * opening and closing them, the gateway's heap; gateway vs nginx; BENCH_MEMORY_*) and the tails
 * section (test/bench/tails.ts: p50/p99 at c=1/10/100 for nginx and the full gateway with tracing
 * off / at the shipped ratio / always_on, and its ratio to nginx at c=10; BENCH_TAILS_*).
 *
 * Environment:
 *   BENCH_DURATION=10        seconds per measured run      BENCH_WARMUP=2   warm-up seconds
 *   BENCH_ROUNDS=3           rounds                        BENCH_CONNECTIONS=1,10,100
 *   BENCH_PREWARM=10         seconds of unmeasured c=10 load on each proxy before the first round
 *                            (the gateway's JIT and V8 heap sizing take ~15 s of load to settle;
 *                            without it the first rounds measure a cold gateway)
 *   BENCH_SSE=1              also run the SSE response variant (POST /mcp-sse; doubles the time)
 *   BENCH_PROFILE=1          instead: profile the gateway alone on its core (--cpu-prof) under
 *                            wrk at BENCH_PROFILE_CONNECTIONS (10) and print the top self-time functions
 *                            (BENCH_PROFILE_SET=sse: profile the SSE response path instead)
 *   BENCH_GATEWAY_PROCESSES=3 gateway processes, taking turns by round (round r measures process
 *                            ((r − 1) mod N) + 1): two processes of the same build and config differ
 *                            by up to ~15 % for their whole life on this VM, so one process per run
 *                            would make the ratio partly a draw (the profile uses one)
 *   BENCH_GATEWAY_FLAGS="…"  node flags for every gateway process (default: deploy/Dockerfile's NODE_OPTIONS; "" for none)
 *   BENCH_JSON=FILE          also write every run as a JSON line to FILE
 *   BENCH_KEEP=1             keep the temp dir (configs, logs) instead of deleting it
 *   BENCH_ONLY=features      only the features section (no nginx, no main tables, no micro-benchmark)
 *   BENCH_ONLY=main          only the main section (as before the features section existed)
 *   BENCH_ONLY=memory,tails  only those sections (a comma-separated list of main, features, memory, tails)
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync, spawn } from 'node:child_process'
import { ProcessGroup, rssBytes, waitFor, withChildren, type Proc } from './procs.ts'
import { busyProcesses, elapsed, freePorts, gatewayImageEnv, gatewayMemory, gatewayNodeFlags, httpOk, intEnv, mb, rssSplit, scanGatewayLog } from './common.ts'
import { ensureTools, nginxArgs, writeNginxConfig } from './nginx.ts'
import { runWrk, runningWrk } from './wrk.ts'
import { measure as measureRun, type MeasureEnv, type Target } from './measure.ts'
import { QUIET_PCT, quiet, rows, runLine, table, valid, type Row, type RunRecord } from './report.ts'
import { formatProfile, summarizeProfile } from './profile.ts'
import { featuresEstimateS, featuresOptions } from './features-options.ts'
import { memoryEstimateS, memoryOptions, runMemory, type MemoryOutcome } from './memory.ts'
import { runTails, tailsEstimateS, tailsOptions, type TailsOutcome } from './tails.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('./', import.meta.url))
const NODE = process.execPath
const LOAD_CPU = '0'
const PROXY_CPU = '1'
const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}'
const GOAL_RATIO = 0.40

// ---------------------------------------------------------------------------------------------
// options

const options = {
  duration: intEnv(process.env, 'BENCH_DURATION', 10, 1),
  warmup: intEnv(process.env, 'BENCH_WARMUP', 2, 0),
  prewarm: intEnv(process.env, 'BENCH_PREWARM', 10, 0),
  rounds: intEnv(process.env, 'BENCH_ROUNDS', 3, 1),
  gatewayProcesses: intEnv(process.env, 'BENCH_GATEWAY_PROCESSES', 3, 1),
  connections: (process.env.BENCH_CONNECTIONS ?? '1,10,100').split(',').map((s) => Number(s.trim())),
  sse: process.env.BENCH_SSE === '1',
  profile: process.env.BENCH_PROFILE === '1',
  profileConnections: intEnv(process.env, 'BENCH_PROFILE_CONNECTIONS', 10, 1),
  profileSet: process.env.BENCH_PROFILE_SET === 'sse' ? 'sse' : 'json',
  json: process.env.BENCH_JSON,
  keep: process.env.BENCH_KEEP === '1',
  only: process.env.BENCH_ONLY ?? '',
}
const SECTION_NAMES = ['main', 'features', 'memory', 'tails']
const only = new Set(options.only.split(',').map((s) => s.trim()).filter((s) => s !== ''))
for (const s of only) if (!SECTION_NAMES.includes(s)) throw new Error(`BENCH_ONLY must be a comma-separated list of ${SECTION_NAMES.join(', ')} (got ${JSON.stringify(options.only)})`)
/** a section runs when BENCH_ONLY is unset or names it */
const sectionOn = (name: string): boolean => only.size === 0 || only.has(name)
if (options.connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('BENCH_CONNECTIONS must be a comma-separated list of integers ≥ 1')

const log = (line = ''): void => { process.stdout.write(`${line}\n`) }

// ---------------------------------------------------------------------------------------------
// helpers

function gatewayConfig (gwPort: number, adminPort: number, upstreamPort: number): string {
  const server = (path: string): string => `
    upstream: { url: http://127.0.0.1:${upstreamPort}${path} }
    auth: none
    tools:
      - allow: ["*"]`
  return `# written by test/bench/run.ts
publicUrl: http://127.0.0.1:${gwPort}
listen: { host: 127.0.0.1, port: ${gwPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
servers:
  bench:${server('/mcp')}
  bench-sse:${server('/mcp-sse')}
`
}

/** POST the bench body once and check the answer: 200, the expected content type, a JSON-RPC result. */
async function smoke (target: Target, sse: boolean): Promise<string> {
  const res = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: BODY,
    signal: AbortSignal.timeout(5_000),
  })
  const text = await res.text()
  const type = res.headers.get('content-type') ?? ''
  const expected = sse ? 'text/event-stream' : 'application/json'
  if (res.status !== 200 || !type.startsWith(expected) || !text.includes('"result"')) {
    throw new Error(`smoke check of ${target.name} (${target.url}) failed: HTTP ${res.status} ${type}\n${text.slice(0, 500)}`)
  }
  return `${target.name.padEnd(8)} ${res.status} ${type}, ${Buffer.byteLength(text)} B`
}

// ---------------------------------------------------------------------------------------------
// one measured run (measure.ts), with this section's options

async function measure (env: Env, set: string, target: Target, connections: number, round: number): Promise<RunRecord> {
  return await measureRun({ ...env, warmup: options.warmup, duration: options.duration, loadCpu: LOAD_CPU, proxyCpu: PROXY_CPU, log }, set, target, connections, round)
}

type Env = Omit<MeasureEnv, 'warmup' | 'duration' | 'loadCpu' | 'proxyCpu' | 'log'>

// ---------------------------------------------------------------------------------------------
// main

const sets = options.sse ? ['json', 'sse'] : ['json']

async function main (): Promise<number> {
  const t0 = Date.now()
  const perRun = options.warmup + options.duration + 1
  const mainOn = options.profile || sectionOn('main')
  const featuresOn = !options.profile && sectionOn('features')
  const featOpts = featuresOn ? featuresOptions(process.env, { rounds: options.rounds }) : undefined
  const memOpts = !options.profile && sectionOn('memory') ? memoryOptions(process.env) : undefined
  const tailsOpts = !options.profile && sectionOn('tails') ? tailsOptions(process.env) : undefined
  const mainEstimate = !mainOn
    ? 0
    : options.profile
      ? perRun + options.prewarm + 20
      : sets.length * options.connections.length * options.rounds * 3 * perRun + (1 + options.gatewayProcesses) * (options.prewarm + 3) + 25
  const estimate = mainEstimate + (featOpts === undefined ? 0 : featuresEstimateS(featOpts)) + (mainOn ? 0 : 15) +
    (memOpts === undefined ? 0 : memoryEstimateS(memOpts)) + (tailsOpts === undefined ? 0 : tailsEstimateS(tailsOpts))
  log(`# portcullis bench (performance.md Protocol P) — ${new Date().toISOString()}`)
  log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  log(options.profile
    ? `mode: profile the gateway (${options.profileSet} responses) at c=${options.profileConnections}, ${options.prewarm} s pre-warm, ${options.warmup} s warm-up + ${options.duration} s (only the measured run is summarised)`
    : `runs: ${mainOn
? `connections ${options.connections.join(', ')} × ${options.rounds} rounds × direct/nginx/gateway${options.sse ? ' × json/sse' : ''}, ` +
      `${options.warmup} s warm-up + ${options.duration} s each`
: `main section skipped (BENCH_ONLY=${options.only})`}` +
      `${featOpts === undefined ? `; features section skipped (BENCH_ONLY=${options.only})` : `; then the features section (${[...featOpts.sections].join(', ')}; c=${featOpts.connections}, ${featOpts.rounds} rounds, ${featOpts.duration} s runs)`}` +
      `${memOpts === undefined ? '' : `; then memory (${memOpts.rounds} × ${memOpts.streams} streams)`}${tailsOpts === undefined ? '' : `; then tails (c=${tailsOpts.connections.join('/')}, ${tailsOpts.rounds} rounds, ${tailsOpts.duration} s runs)`}` +
      `; estimated ${Math.ceil(estimate / 60)} min`)
  log(`pinning: CPU ${LOAD_CPU} = wrk -t1 + upstream; CPU ${PROXY_CPU} = the proxy under test (nginx or gateway)`)

  const tools = ensureTools(log)
  // The gateways run what the image runs: compiled dist/ (bin/portcullis.js takes it while it is fresh).
  execFileSync(NODE, [join(ROOT, 'bin/build.js')], { cwd: ROOT, stdio: 'inherit' })
  log(`built dist/; gateway node flags: ${gatewayNodeFlags(ROOT).join(' ') || '(none)'}`)
  const tmp = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
  const group = new ProcessGroup()
  const abort = new AbortController()
  group.installCleanup((signal) => {
    log(`\n${signal}: stopping every bench process (wrk, load generators, gateways, nginx, upstream, OTLP sink)…`)
    abort.abort()
    for (const w of runningWrk) w.kill('SIGKILL')
  }, () => { if (!options.keep) rmSync(tmp, { recursive: true, force: true }) })
  // bounded total time: a hung step can't keep processes around for long
  const watchdogS = Math.ceil(estimate * 1.5) + 120
  const watchdog = setTimeout(() => {
    log(`\n⚠ watchdog: still running after ${watchdogS} s — aborting and stopping every bench process`)
    abort.abort()
    for (const w of runningWrk) w.kill('SIGKILL')
    void group.stopAll().finally(() => {
      if (!options.keep) rmSync(tmp, { recursive: true, force: true })
      process.exit(1)
    })
  }, watchdogS * 1000)
  watchdog.unref()

  const records: RunRecord[] = []
  let exitCode = 0
  let features: Awaited<ReturnType<typeof import('./features.ts').runFeatures>> | undefined
  let memory: MemoryOutcome | undefined
  let tails: TailsOutcome | undefined
  try {
    const [upstreamPort] = await freePorts(1) as [number]

    // upstream (CPU 0)
    const upstream = group.spawn('upstream', NODE, [join(HERE, 'upstream.ts'), String(upstreamPort)], { cpu: LOAD_CPU, logFile: join(tmp, 'upstream.log') })
    await waitFor('the upstream', () => httpOk(`http://127.0.0.1:${upstreamPort}/stats`), 15_000, upstream, group)

    if (mainOn) await mainSection({ tools, tmp, group, abort, upstream, upstreamPort, records })
    else {
      const noiseBefore = await busyProcesses(new Set(withChildren(upstream.pid)))
      log(`started: upstream pid ${upstream.pid} :${upstreamPort}`)
      log(noiseBefore.length === 0 ? 'other busy processes: none ≥ 5 % of a core' : `⚠ other busy processes (noise on this shared machine):\n  ${noiseBefore.join('\n  ')}`)
    }

    if (featOpts !== undefined && !abort.signal.aborted) {
      let runFeatures: typeof import('./features.ts').runFeatures
      try {
        // loaded only now: it imports src/ (dev IdP, token issuing), which others may be editing
        ;({ runFeatures } = await import('./features.ts'))
      } catch (err) {
        throw new Error(`the features section could not be loaded: ${(err as Error).message}`)
      }
      features = await runFeatures({
        group,
        tmp,
        wrk: tools.wrk,
        node: NODE,
        root: ROOT,
        here: HERE,
        loadCpu: LOAD_CPU,
        proxyCpu: PROXY_CPU,
        upstream,
        upstreamPort,
        signal: abort.signal,
        ours: () => new Set(withChildren(upstream.pid)),
        log,
        options: featOpts,
      })
      if (features.failed) exitCode = 1
      const noiseAfter = await busyProcesses(new Set(withChildren(upstream.pid)))
      if (noiseAfter.length > 0) log(`⚠ other busy processes at the end:\n  ${noiseAfter.join('\n  ')}`)
    }

    // a section that fails is reported and the next one still runs
    const common = { group, tmp, nginx: tools.nginx, node: NODE, root: ROOT, here: HERE, loadCpu: LOAD_CPU, proxyCpu: PROXY_CPU, upstream, upstreamPort, signal: abort.signal, log }
    if (memOpts !== undefined && !abort.signal.aborted) {
      try {
        memory = await runMemory({ ...common, options: memOpts })
      } catch (err) {
        exitCode = 1
        log(`\n✗ memory section failed: ${(err as Error).message}`)
      }
    }
    if (tailsOpts !== undefined && !abort.signal.aborted) {
      try {
        tails = await runTails({ ...common, wrk: tools.wrk, ours: () => new Set(withChildren(upstream.pid)), options: tailsOpts })
      } catch (err) {
        exitCode = 1
        log(`\n✗ tails section failed: ${(err as Error).message}`)
      }
    }
  } catch (err) {
    exitCode = 1
    log(`\n✗ bench failed: ${(err as Error).message}`)
  } finally {
    await group.stopAll()
    clearTimeout(watchdog)
  }

  if (options.json !== undefined) {
    const lines = [...records, ...(features?.records ?? []), ...(tails?.records ?? [])].map((r) => JSON.stringify({ ...r, result: { ...r.result, raw: undefined } }))
    for (const g of features?.grants ?? []) lines.push(JSON.stringify({ set: 'tokens', ...g }))
    writeFileSync(options.json, lines.join('\n') + '\n')
  }
  if (options.keep) log(`temp dir kept: ${tmp}`)
  else rmSync(tmp, { recursive: true, force: true })

  // the micro-benchmarks (JSON-RPC parse, audit line), pinned like the proxy
  if (exitCode === 0 && mainOn && !options.profile) await microBench()

  if (options.profile) log(`\nwall time ${elapsed(t0)}`)
  else {
    log()
    if (mainOn) log(summary(records, exitCode, t0))
    if (features !== undefined) {
      log(features.summary)
      if (features.goal !== undefined) log(features.goal)
    }
    for (const s of [memory, tails]) {
      if (s === undefined) continue
      log(s.summary)
      log(s.goal)
    }
    log(`wall ${elapsed(t0)}`)
  }
  return exitCode
}

interface MainContext {
  readonly tools: { nginx: string; wrk: string }
  readonly tmp: string
  readonly group: ProcessGroup
  readonly abort: AbortController
  readonly upstream: Proc
  readonly upstreamPort: number
  readonly records: RunRecord[]
}

interface BenchGateway {
  readonly proc: Proc
  /** 1…BENCH_GATEWAY_PROCESSES */
  readonly n: number
  readonly port: number
  readonly admin: number
  readonly logFile: string
  logStart: number
  fresh?: number | undefined
  splitFresh?: string
  memFresh?: string
}

/** The main tables: direct / nginx / gateway (auth: none) per connection count (or the profile). Stops nginx and the gateways at the end. */
async function mainSection ({ tools, tmp, group, abort, upstream, upstreamPort, records }: MainContext): Promise<void> {
  const count = options.profile ? 1 : options.gatewayProcesses
  const ports = await freePorts(1 + 2 * count)
  const nginxPort = ports[0]!
  const procs: Proc[] = [upstream]
  const gatewayNotes: string[] = []
  const gws: BenchGateway[] = []
  let nginx: Proc | undefined
  try {
    // nginx (CPU 1)
    if (!options.profile) {
      const files = writeNginxConfig(tmp, nginxPort, upstreamPort)
      nginx = group.spawn('nginx', tools.nginx, nginxArgs(files), { cpu: PROXY_CPU, logFile: join(tmp, 'nginx.out') })
      procs.push(nginx)
      await waitFor('nginx', () => httpOk(`http://127.0.0.1:${nginxPort}/stats`), 15_000, nginx, group)
    }

    // the gateways (CPU 1): `count` processes of the same config, taking turns by round
    const profDir = join(tmp, 'cpuprof')
    const extraFlags = gatewayNodeFlags(ROOT)
    if (extraFlags.length > 0) log(`gateway node flags: ${extraFlags.join(' ')}`)
    const nodeFlags = [...extraFlags, ...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])]
    for (let n = 1; n <= count; n++) {
      const port = ports[2 * n - 1]!
      const admin = ports[2 * n]!
      const configFile = join(tmp, `portcullis-${n}.yaml`)
      writeFileSync(configFile, gatewayConfig(port, admin, upstreamPort))
      const logFile = join(tmp, `gateway-${n}.log`)
      const proc = group.spawn(`gateway #${n}`, NODE, [...nodeFlags, join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], {
        cpu: PROXY_CPU,
        cwd: ROOT,
        env: { ...process.env, ...gatewayImageEnv(ROOT), PORTCULLIS_LOG_LEVEL: 'warn' },
        logFile,
      })
      gws.push({ proc, n, port, admin, logFile, logStart: 0 })
      procs.push(proc)
    }
    for (const g of gws) {
      await waitFor(`gateway #${g.n} (/readyz)`, () => httpOk(`http://127.0.0.1:${g.admin}/readyz`), 30_000, g.proc, group)
      g.fresh = rssBytes(g.proc.pid)
      g.splitFresh = rssSplit(g.proc.pid)
      g.logStart = statSync(g.logFile).size // startup warnings (auth: none, ephemeral key) are expected
      g.memFresh = await gatewayMemory(g.admin)
    }
    log(`started: upstream pid ${upstream.pid} :${upstreamPort}${nginx === undefined ? '' : `, nginx pid ${nginx.pid} :${nginxPort}`}, ` +
      gws.map((g) => `gateway #${g.n} pid ${g.proc.pid} :${g.port} (admin :${g.admin}), RSS fresh ${mb(g.fresh)}`).join('; '))

    const ours = new Set(procs.flatMap((p) => withChildren(p.pid)))
    const noiseBefore = await busyProcesses(ours)
    log(noiseBefore.length === 0 ? 'other busy processes: none ≥ 5 % of a core' : `⚠ other busy processes (noise on this shared machine):\n  ${noiseBefore.join('\n  ')}`)

    const gatewayTarget = (set: string, g: BenchGateway): Target =>
      ({ name: 'gateway', url: `http://127.0.0.1:${g.port}/mcp/${set === 'sse' ? 'bench-sse' : 'bench'}`, pids: () => [g.proc.pid], ...(count === 1 ? {} : { process: g.n }) })
    // round r measures gateway process ((r - 1) mod count) + 1
    const targetsFor = (set: string, round = 1): Target[] => {
      const path = set === 'sse' ? '/mcp-sse' : '/mcp'
      const all: Target[] = [
        { name: 'direct', url: `http://127.0.0.1:${upstreamPort}${path}`, pids: () => [] },
        { name: 'nginx', url: `http://127.0.0.1:${nginxPort}${path}`, pids: () => nginx === undefined ? [] : withChildren(nginx.pid) },
        gatewayTarget(set, gws[(round - 1) % count]!),
      ]
      return options.profile ? all.filter((t) => t.name !== 'nginx') : all
    }
    log('smoke checks (one POST each):')
    for (const set of ['json', 'sse']) {
      for (const t of [...targetsFor(set).filter((x) => x.name !== 'gateway'), ...gws.map((g) => gatewayTarget(set, g))]) {
        log(`  ${set.padEnd(4)} ${await smoke(t, set === 'sse')}${t.process === undefined ? '' : ` (#${t.process})`}`)
      }
    }

    const env: Env = { ours: () => new Set(procs.flatMap((p) => withChildren(p.pid))), wrk: tools.wrk, script: join(HERE, 'post.lua'), upstream, upstreamPort, signal: abort.signal }

    if (options.profile) {
      const target = targetsFor(options.profileSet).find((t) => t.name === 'gateway')!
      if (options.prewarm > 0) {
        const w = await runWrk({ wrk: env.wrk, url: target.url, connections: 10, durationS: options.prewarm, script: env.script, cpu: LOAD_CPU, signal: abort.signal })
        log(`pre-warm gateway c=10 ${options.prewarm} s (not profiled): ${Math.round(w.rps)} req/s`)
      }
      const gw = gws[0]!.proc
      log(`\nprofiling the gateway (pid ${gw.pid}, alone on CPU ${PROXY_CPU}), ${options.profileSet} responses, c=${options.profileConnections}…`)
      const r = await measure(env, options.profileSet, target, options.profileConnections, 1)
      records.push(r)
      log(runLine(r, 1))
      const code = await group.stop(gw, 15_000)
      const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : []
      if (files.length === 0) throw new Error(`the gateway (exit ${code}) wrote no .cpuprofile in ${profDir}`)
      const kept = join(tmpdir(), `portcullis-gateway-${Date.now()}.cpuprofile`)
      copyFileSync(join(profDir, files[0]!), kept)
      log(`\nprofile kept at ${kept} (open in Chrome DevTools or: node test/bench/profile.ts ${kept})\n`)
      log(formatProfile(summarizeProfile(kept, 30, r.window)))
    } else {
      if (options.prewarm > 0) {
        for (const t of [...targetsFor('json').filter((x) => x.name === 'nginx'), ...gws.map((g) => gatewayTarget('json', g))]) {
          const r = await runWrk({ wrk: env.wrk, url: t.url, connections: 10, durationS: options.prewarm, script: env.script, cpu: LOAD_CPU, signal: abort.signal })
          const name = t.process === undefined ? t.name : `${t.name} #${t.process}`
          log(`pre-warm ${name.padEnd(10)} c=10 ${options.prewarm} s (not counted): ${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(3)} ms${r.errors === 0 ? '' : `, ⚠ ${r.errors} errors`}`)
        }
      }
      for (const set of sets) {
        for (const c of options.connections) {
          log(`\n## ${set} responses, ${c} connection${c === 1 ? '' : 's'}`)
          for (let round = 1; round <= options.rounds; round++) {
            const order = round % 2 === 1 ? targetsFor(set, round) : targetsFor(set, round).reverse()
            for (const target of order) {
              if (abort.signal.aborted) throw new Error('aborted')
              const r = await measure(env, set, target, c, round)
              records.push(r)
              log(runLine(r, options.rounds))
            }
          }
          log()
          log(table(`${set} responses, c=${c} (medians of ${options.rounds} rounds${count === 1 ? '' : `, ${count} gateway processes taking turns by round`}; ratios and added ms: median of per-round values)`,
            rows(records.filter((r) => r.set === set && r.connections === c), ['direct', 'nginx', 'gateway'])))
        }
      }
    }

    if (!options.profile) {
      for (const g of gws) {
        const name = count === 1 ? 'gateway' : `gateway #${g.n}`
        const loadMax = Math.max(0, ...records.filter((r) => r.target === 'gateway' && (r.process ?? 1) === g.n).map((r) => r.rssLoad ?? 0))
        gatewayNotes.push(`${name} RSS: fresh ${mb(g.fresh)}, max under load ${mb(loadMax)}, after the runs ${mb(rssBytes(g.proc.pid))}`)
        gatewayNotes.push(`${name} /proc status fresh:          ${g.splitFresh ?? '?'}`)
        gatewayNotes.push(`${name} /proc status after the runs: ${rssSplit(g.proc.pid)}`)
        gatewayNotes.push(`${name} /metrics fresh:           ${g.memFresh ?? '?'}`)
        gatewayNotes.push(`${name} /metrics after the runs: ${await gatewayMemory(g.admin)}`)
      }
      if (nginx !== undefined) gatewayNotes.push(`nginx RSS (master+worker) after the runs: ${mb(withChildren(nginx.pid).reduce((s, p) => s + (rssBytes(p) ?? 0), 0))}`)
    }
    const noiseAfter = await busyProcesses(new Set(procs.flatMap((p) => withChildren(p.pid))))
    if (noiseAfter.length > 0) gatewayNotes.push(`⚠ other busy processes at the end:\n  ${noiseAfter.join('\n  ')}`)
  } finally {
    if (nginx !== undefined) await group.stop(nginx)
    await Promise.all(gws.map((g) => group.stop(g.proc, 15_000)))
    // what the gateways and nginx logged at warn or above during the load
    for (const g of gws) gatewayNotes.push(scanGatewayLog(g.logFile, g.logStart, `${count === 1 ? 'gateway' : `gateway #${g.n}`} log after startup`))
    const ngLog = join(tmp, 'nginx', 'error.log')
    if (existsSync(ngLog)) {
      const lines = readFileSync(ngLog, 'utf8').split('\n').filter((l) => l.trim() !== '')
      gatewayNotes.push(`nginx error log: ${lines.length} line(s)${lines.length === 0 ? '' : ':\n  ' + lines.slice(0, 5).join('\n  ')}`)
    }
    if (gatewayNotes.length > 0) log(`\n${gatewayNotes.join('\n')}`)
  }
}

/** The in-process micro-benchmarks, each pinned like the proxy: what one request's parse and audit line cost. */
const MICRO = [
  { file: 'parse.bench.ts', title: 'JSON-RPC parse' },
  { file: 'audit.bench.ts', title: 'audit line' },
]

async function microBench (): Promise<void> {
  for (const { file: name, title } of MICRO) {
    const file = join(HERE, 'micro', name)
    if (!existsSync(file)) {
      log(`\n(micro-benchmark test/bench/micro/${name} not present: skipped)`)
      continue
    }
    log(`\n## ${title} micro-benchmark (taskset -c ${PROXY_CPU} node test/bench/micro/${name})`)
    await new Promise<void>((resolve) => {
      const child = spawn('taskset', ['-c', PROXY_CPU, NODE, file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
      const timer = setTimeout(() => { log('⚠ micro-benchmark still running after 120 s: killed'); child.kill('SIGKILL') }, 120_000)
      child.once('error', (err) => { clearTimeout(timer); log(`⚠ micro-benchmark could not start: ${err.message}`); resolve() })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        if (code !== 0) log(`⚠ micro-benchmark exited with ${code ?? signal}`)
        resolve()
      })
    })
  }
}

function summary (records: readonly RunRecord[], exitCode: number, t0: number): string {
  const pick = (c: number): Row | undefined => rows(records.filter((r) => r.set === 'json' && r.connections === c), ['direct', 'nginx', 'gateway'])[2]
  const at10 = pick(10)
  const at1 = pick(1)
  const ratio = at10?.xNginx
  const bad = records.filter((r) => !valid(r))
  const noisy = records.filter((r) => !quiet(r) && r.target !== 'direct')
  const verdict = (v: number): string => `${v.toFixed(3)} (goal ≥ ${GOAL_RATIO.toFixed(2)}: ${v >= GOAL_RATIO ? 'PASS' : 'FAIL'})`
  const parts = [
    ratio === undefined ? 'gateway/nginx req/s at c=10: n/a' : `gateway/nginx req/s at c=10: ${verdict(ratio)}`,
    at10 === undefined || at10.quietRounds === 0 ? 'quiet rounds only: none' : `quiet rounds only (${at10.quietRounds}/${options.rounds}): ${verdict(at10.xNginxQuiet!)}`,
    at10?.cpuVsNginx === undefined ? '' : `gateway CPU/request at c=10: ${at10.cpuVsNginx.toFixed(1)} × nginx's`,
    at1?.addP50Nginx === undefined ? 'p50 added at c=1: n/a' : `p50 added at c=1: ${fmtMs(at1.addP50Nginx)} vs nginx, ${fmtMs(at1.addP50Direct)} vs direct`,
    `runs with errors: ${bad.length}/${records.length}${bad.length === 0 ? '' : ` (${bad.map((r) => `${r.set} c=${r.connections} r${r.round} ${r.target}`).join(', ')})`}`,
    `noisy proxy runs (other processes ≥ ${QUIET_PCT}% of CPU ${PROXY_CPU}): ${noisy.length}/${records.filter((r) => r.target !== 'direct').length}`,
    `wall ${elapsed(t0)}`,
  ].filter((p) => p !== '')
  return `SUMMARY${exitCode === 0 ? '' : ' (bench FAILED)'}: ${parts.join(' | ')}`
}

function fmtMs (v: number | undefined): string {
  return v === undefined ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`
}

process.exitCode = await main()
