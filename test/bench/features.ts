/**
 * The features section of `npm run bench` (after the main tables; alone: BENCH_ONLY=features):
 * what auth and telemetry cost, measured like the rest (performance.md Protocol P) —
 *   CPU 0: wrk -t1 (or the grants load generator) + the mock upstream + the OTLP sink
 *   CPU 1: the gateway under test (the others idle)
 * at BENCH_FEATURES_CONNECTIONS (10) connections, ≥ 3 rounds, order reversed every other round,
 * every ratio taken per round (side by side) and then the median. Runs with errors don't count.
 *
 * 1. Token validation per request (issue 3), one gateway process with two servers on the same
 *    upstream: `open` (auth: none) and `secured` (auth: required, scope tools.read):
 *      none    → /mcp/open with the same Authorization header (stripped, never checked)
 *      cached  → /mcp/secured, one real-flow access token on every request (cache hits)
 *      fresh   → /mcp/secured, a token the gateway has never seen on every request (signature
 *                check each time); the pool is sized from a probe run so each token is used once,
 *                and the table says how many distinct tokens the requests carried.
 *    All three use rotate-auth.lua, so the load generator does the same work on every side.
 * 2. Token endpoint throughput (issue 3): POST /oauth/token, jwt-bearer + client_secret_basic,
 *    fresh single-use ID-JAGs pre-minted in this process, fired by test/bench/grants.ts (undici
 *    Pool, 10 in flight) pinned to CPU 0; grants/s, p50/p99, every response must be 200.
 * 3. Cost of telemetry (issue 5: "the gateway with telemetry on reaches ≥ 0.9× the throughput of
 *    the same gateway with it off"): gateways of the same config (`auth: none`,
 *    `tools: [{allow: ["*"]}]`), BENCH_FEATURES_TELEMETRY_PROCESSES (3) processes per variant,
 *    round r measuring process ((r − 1) mod 3) + 1 of each: two processes of the same build and
 *    config differ by up to ~15 % for their whole life on this VM, so each per-round ratio is
 *    taken between another pair of processes and the median is not one draw:
 *      off    → PORTCULLIS_LOG_LEVEL=warn, no OTEL_* variables
 *      on     → telemetry as deploy/kubernetes/overlays/prod ships it: PORTCULLIS_LOG_LEVEL=info
 *               (the per-request audit line on stdout, a FIFO read by `cat` on CPU 0 that appends
 *               to a file, as containerd reads a container's stdout), OTEL_EXPORTER_OTLP_ENDPOINT →
 *               test/bench/otlp-sink.ts (CPU 0), http/protobuf,
 *               OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1
 *      always → the same with OTEL_TRACES_SAMPLER=parentbased_always_on: every request traced
 *               (the worst case; a client that samples its own traces gets this for them)
 *    (metrics are always on) and the sink's counts say whether spans were really exported.
 * 4. The shared store on the MCP path (design §7: "the store is on the grant path, never on the
 *    MCP request path"): a redis-server of the bench's own on CPU 0, and gateways of the auth
 *    gateway's config (the `secured` server, one cached token on every request) without a store
 *    (`memory`) and with `store.url` on it (`redis`), taking turns as the telemetry ones; the
 *    Redis commands the server saw per MCP request and per grant (test/bench/store.ts).
 *
 * Environment (besides run.ts's):
 *   BENCH_FEATURES_DURATION=6   seconds per measured run     BENCH_FEATURES_WARMUP=2  warm-up seconds
 *   BENCH_FEATURES_ROUNDS=3     rounds (default BENCH_ROUNDS) BENCH_FEATURES_PREWARM=5 unmeasured load per new gateway
 *   BENCH_FEATURES_CONNECTIONS=10
 *   BENCH_FEATURES_SECTIONS=auth,tokens,telemetry,store   which parts to run
 *   BENCH_FEATURES_TELEMETRY_SPLIT=1  also run "audit line only", "spans only at the shipped ratio"
 *                               and "spans only, always_on" gateways, to see which part of "on" costs what
 *   BENCH_FEATURES_TELEMETRY_PROCESSES=3  gateway processes per telemetry variant
 *   BENCH_FEATURES_TELEMETRY_ROUNDS  telemetry rounds (default max(rounds, 2 × processes))
 *   BENCH_FEATURES_STORE_PROCESSES=3  gateway processes per store variant
 *   BENCH_FEATURES_STORE_ROUNDS  store rounds (default max(rounds, 2 × processes))
 *   BENCH_FEATURES_PROFILE=1    run the gateways with --cpu-prof and summarise, for each variant, the
 *                               samples of its first measured run (profiling slows the gateway:
 *                               the tables of such a run are not the goal measurement)
 */
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Proc, CLOCK_TICK_US, cpuTicks, cpuTimes, rssBytes, waitFor, withChildren, tail } from './procs.ts'
import { runWrk, type WrkResult } from './wrk.ts'
import { median, perRoundValues, quiet, valid, QUIET_PCT, type RunRecord } from './report.ts'
import { f2, grantsOk, grown, int, markdown, variantRows, type VariantRow } from './feature-tables.ts'
import { formatProfile, summarizeProfile } from './profile.ts'
import { busiest, elapsed, freePorts, gatewayMemory, gatewayNodeFlags, httpOk, mb, metricSum, rssSplit, scanGatewayLog, snapshot, upstreamPosts, type SectionContext } from './common.ts'
import { PROD_SAMPLER, TOKEN_TTL_S, authGatewayYaml, featuresEstimateS, gatewayBaseEnv, otlpEnv, telemetryGatewayYaml, type FeaturesOptions } from './features-options.ts'
import { CLIENT, basic, claimDifferences, generateSigningKeys, mintAccessTokens, redeem, startBenchIdp, type BenchIdp } from './tokens.ts'
import { runStore, storeSummary } from './store.ts'

const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}'
/** performance.md G5 and issue 5 */
const GOAL_CACHED = 0.85
const GOAL_FRESH_VS_CACHED = 0.40
const GOAL_TELEMETRY = 0.90

export interface FeaturesContext extends SectionContext {
  readonly wrk: string
  /** PIDs of the bench's processes started outside this section (not noise) */
  readonly ours: () => ReadonlySet<number>
  readonly options: FeaturesOptions
}

export interface FeatureRecord extends RunRecord {
  /** rotate-auth.lua: requests built and distinct tokens they carried */
  readonly generated?: number | undefined
  readonly distinct?: number | undefined
  /** Spec.counters: how much each counter grew over the measured run */
  readonly counters?: Readonly<Record<string, number>> | undefined
}

export interface GrantRun {
  /** the part that ran it (undefined: tokens) and, in the store part, the variant and its process */
  readonly set?: 'tokens' | 'store'
  readonly target?: string
  readonly process?: number
  readonly round: number
  readonly sent: number
  readonly ok: number
  readonly statuses: Record<string, number>
  readonly elapsedMs: number
  readonly rps: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly ranOut: boolean
  readonly available: number
  readonly firstError?: string
  readonly gatewayCpuUs?: number | undefined
  readonly otherOnProxyCpu?: number | undefined
  /** CLOCK_MONOTONIC µs around the measured load generator (for the profile window) */
  readonly window?: readonly [number, number] | undefined
  /** as FeatureRecord.counters */
  readonly counters?: Readonly<Record<string, number>> | undefined
}

export interface FeaturesOutcome {
  readonly records: readonly FeatureRecord[]
  readonly grants: readonly GrantRun[]
  /** one line for the end of the bench's output */
  readonly summary: string
  /** the goal lines (telemetry: issue 5; store), or undefined when neither part ran */
  readonly goal: string | undefined
  readonly failed: boolean
}

// ---------------------------------------------------------------------------------------------

type Counters = () => Promise<Readonly<Record<string, number>>>
type GrantFiles = { readonly warm: string | undefined; readonly run: string }

/** What the store part (store.ts) uses of this section: the same runs, turns, grant loads and notes. */
export interface FeaturesKit {
  readonly ctx: FeaturesContext
  /** rotate-auth.lua */
  readonly rotate: string
  readonly records: readonly FeatureRecord[]
  readonly grants: readonly GrantRun[]
  readonly notes: string[]
  log (line?: string): void
  /** a process of this section (stopped with the others, not counted as noise) */
  spawn (name: string, command: string, args: readonly string[], cpu: string, logFile: string): Proc
  startTurns<V extends { readonly target: string; readonly what: string }> (section: string, variants: readonly V[], P: number,
    yaml: (port: number, admin: number, v: V) => string, env: (v: V) => NodeJS.ProcessEnv): Promise<Array<V & TurnGateway>>
  prewarm (specs: readonly Spec[]): Promise<void>
  inTurns (specs: readonly Spec[], P: number, rounds: number): Promise<void>
  expectResult (what: string, url: string, token: string | undefined): Promise<string>
  grantProbe (idp: BenchIdp, issuer: string, pid: number, label: string): Promise<number>
  grantFiles (idp: BenchIdp, name: string, rate: number, rounds: number): Promise<GrantFiles[]>
  grantRound (tag: { set: 'store'; target: string; process: number }, issuer: string, pid: number, files: GrantFiles, round: number, rounds: number, counters?: Counters): Promise<GrantRun>
  profiles (name: string, windows: ReadonlyArray<readonly [string, readonly [number, number] | undefined]>): void
  firstWindow (set: string, target: string): readonly [number, number] | undefined
}

/** One of the gateway processes #startTurns started. */
export interface TurnGateway {
  readonly proc: Proc
  readonly logFile: string
  readonly config: string
  readonly name: string
  /** 1…P */
  readonly process: number
  readonly port: number
  readonly admin: number
  /** the log's size once ready: what follows was logged under load */
  logStart: number
  fresh: number | undefined
}

export interface Spec {
  readonly set: 'auth' | 'telemetry' | 'store'
  readonly target: string
  readonly url: string
  readonly pid: number
  readonly script: string
  /** wrk script args for the warm-up and the measured run */
  readonly args: (phase: 'warmup' | 'run', round: number) => string[]
  /** which of the variant's gateway processes this is (telemetry, store: 1…processes) */
  readonly process?: number
  /** counters read just before and just after the measured run (the store part: Redis's) */
  readonly counters?: Counters
}

class Features {
  readonly #ctx: FeaturesContext
  readonly #o: FeaturesOptions
  readonly #procs: Proc[] = []
  readonly records: FeatureRecord[] = []
  readonly grants: GrantRun[] = []
  readonly notes: string[] = []
  readonly failures: string[] = []
  /** POSTs to /v1/traces the OTLP sink received during the telemetry part (undefined: not asked) */
  tracePosts: number | undefined
  readonly #rotate: string
  readonly #post: string

  constructor (ctx: FeaturesContext) {
    this.#ctx = ctx
    this.#o = ctx.options
    this.#rotate = join(ctx.here, 'rotate-auth.lua')
    this.#post = join(ctx.here, 'post.lua')
  }

  #log (line = ''): void { this.#ctx.log(line) }

  #ours (): Set<number> {
    return new Set([...this.#ctx.ours(), ...this.#procs.flatMap((p) => withChildren(p.pid))])
  }

  #spawn (name: string, args: string[], cpu: string, env: NodeJS.ProcessEnv, logFile: string, logCollectorCpu?: string, command = this.#ctx.node): Proc {
    const p = this.#ctx.group.spawn(name, command, args, { cpu, cwd: this.#ctx.root, env, logFile, ...(logCollectorCpu === undefined ? {} : { logCollectorCpu }) })
    this.#procs.push(p)
    return p
  }

  #gateway (name: string, yaml: string, env: NodeJS.ProcessEnv): { proc: Proc; logFile: string; config: string } {
    const config = join(this.#ctx.tmp, `${name}.yaml`)
    writeFileSync(config, yaml)
    const logFile = join(this.#ctx.tmp, `${name}.log`)
    const prof = this.#o.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(this.#ctx.tmp, `cpuprof-${name}`)}`] : []
    // stdout (the audit log) goes into a pipe read on the load CPU, as a container runtime reads a
    // pod's stdout: the gateway pays its write(2) into the pipe, not this VM's disk.
    const proc = this.#spawn(name, [...prof, ...gatewayNodeFlags(this.#ctx.root), join(this.#ctx.root, 'bin/portcullis.js'), 'start', '--config', config], this.#ctx.proxyCpu, env, logFile, this.#ctx.loadCpu)
    return { proc, logFile, config }
  }

  /** BENCH_FEATURES_PROFILE=1: after `name` stopped, one profile summary per labelled window. */
  #profiles (name: string, windows: ReadonlyArray<readonly [string, readonly [number, number] | undefined]>): void {
    if (!this.#o.profile) return
    const dir = join(this.#ctx.tmp, `cpuprof-${name}`)
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : []
    if (files.length === 0) {
      this.#log(`⚠ ${name} wrote no .cpuprofile in ${dir}`)
      return
    }
    const kept = join(tmpdir(), `portcullis-${name}-${Date.now()}.cpuprofile`)
    copyFileSync(join(dir, files[0]!), kept)
    this.#log(`\n### profile of ${name} (kept at ${kept})`)
    for (const [label, window] of windows) {
      if (window === undefined) continue
      this.#log(`\n#### ${name}: ${label}\n`)
      this.#log(formatProfile(summarizeProfile(kept, 15, window)))
    }
  }

  #firstWindow (set: string, target: string): readonly [number, number] | undefined {
    return this.records.find((r) => r.set === set && r.target === target && r.round === 1)?.window
  }

  /** A clean environment for a gateway: no OTEL_* and no log level inherited from the caller. */
  async #post1 (url: string, token: string | undefined): Promise<{ status: number; type: string; text: string }> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: BODY,
      signal: AbortSignal.timeout(5_000),
    })
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
  }

  async #expectResult (what: string, url: string, token: string | undefined): Promise<string> {
    const r = await this.#post1(url, token)
    if (r.status !== 200 || !r.type.startsWith('application/json') || !r.text.includes('"result"')) {
      throw new Error(`smoke check ${what} (${url}) failed: HTTP ${r.status} ${r.type}\n${r.text.slice(0, 500)}`)
    }
    return `${what}: ${r.status} ${r.type}, ${Buffer.byteLength(r.text)} B`
  }

  async #wrk (url: string, script: string, args: string[], durationS: number, connections = this.#o.connections): Promise<WrkResult> {
    return await runWrk({ wrk: this.#ctx.wrk, url, connections, durationS, script, args, cpu: this.#ctx.loadCpu, signal: this.#ctx.signal })
  }

  /** One measured run (after its warm-up), as run.ts's measure(): CPU from /proc, noise on the gateway's core. */
  async #measure (spec: Spec, round: number): Promise<FeatureRecord> {
    const o = this.#o
    const rssIdle = rssBytes(spec.pid)
    if (o.warmup > 0) await this.#wrk(spec.url, spec.script, spec.args('warmup', round), o.warmup)
    const postsBefore = await upstreamPosts(this.#ctx.upstreamPort)
    const ticks0 = cpuTicks(spec.pid) ?? 0
    const upTicks0 = cpuTicks(this.#ctx.upstream.pid) ?? 0
    const cpu1Before = cpuTimes(Number(this.#ctx.proxyCpu))
    const others0 = snapshot(this.#ours())
    let rssLoad = 0
    const counters0 = await spec.counters?.()
    const sampler = setInterval(() => { rssLoad = Math.max(rssLoad, rssBytes(spec.pid) ?? 0) }, 1_000)
    const startUs = Number(process.hrtime.bigint() / 1000n)
    let result: WrkResult
    try {
      result = await this.#wrk(spec.url, spec.script, spec.args('run', round), o.duration)
    } finally {
      clearInterval(sampler)
    }
    const window: [number, number] = [startUs, Number(process.hrtime.bigint() / 1000n)]
    const counters = counters0 === undefined ? undefined : grown(counters0, await spec.counters!())
    const others = busiest(others0, snapshot(this.#ours()), (window[1] - window[0]) / 1000, 5)
    const ticks = (cpuTicks(spec.pid) ?? ticks0) - ticks0
    const upTicks = (cpuTicks(this.#ctx.upstream.pid) ?? upTicks0) - upTicks0
    const cpu1After = cpuTimes(Number(this.#ctx.proxyCpu))
    const otherOnProxyCpu = cpu1Before === undefined || cpu1After === undefined
      ? undefined
      : Math.max(0, (100 * (cpu1After.busy - cpu1Before.busy - ticks)) / ((cpu1After.busy + cpu1After.idle) - (cpu1Before.busy + cpu1Before.idle)))
    const forwarded = await upstreamPosts(this.#ctx.upstreamPort) - postsBefore
    if (result.requests > 0 && forwarded < result.requests * 0.99) {
      this.#log(`  ⚠ ${spec.target}: wrk counted ${result.requests} responses but the upstream answered only ${forwarded} requests`)
    }
    if (otherOnProxyCpu !== undefined && otherOnProxyCpu >= QUIET_PCT) {
      this.#log(`  ⚠ noise during ${spec.target} round ${round}: other processes used ${otherOnProxyCpu.toFixed(0)}% of CPU ${this.#ctx.proxyCpu}; busiest (any CPU): ${others.slice(0, 3).join(' | ') || 'none ≥ 5 % (kernel threads / softirq?)'}`)
    }
    const perReq = (t: number): number | undefined => result.requests === 0 ? undefined : (t * CLOCK_TICK_US) / result.requests
    return {
      set: spec.set,
      connections: o.connections,
      round,
      target: spec.target,
      result,
      proxyCpuUs: perReq(ticks),
      upstreamCpuUs: perReq(upTicks),
      rssIdle,
      rssLoad,
      otherOnProxyCpu,
      window,
      generated: result.fields.generated,
      distinct: result.fields.distinct,
      process: spec.process,
      counters,
    }
  }

  #runLine (r: FeatureRecord): string {
    const x = r.result
    const errs = x.errors === 0 ? '' : `  ⚠ non-2xx ${x.non2xx} socket c/r/w/t ${x.socket.connect}/${x.socket.read}/${x.socket.write}/${x.socket.timeout} (run does not count)`
    const tokens = r.generated === undefined || r.set !== 'auth' ? '' : `  tokens ${r.distinct}/${r.generated} distinct`
    const noise = r.otherOnProxyCpu === undefined ? '' : `  cpu1-other ${r.otherOnProxyCpu.toFixed(0)}%${r.otherOnProxyCpu >= QUIET_PCT ? ' ⚠ noisy' : ''}`
    const rounds = r.set === 'telemetry' ? this.#o.telemetryRounds : r.set === 'store' ? this.#o.storeRounds : this.#o.rounds
    const target = r.process === undefined ? r.target : `${r.target} #${r.process}`
    return `  [${r.set} c=${r.connections} round ${r.round}/${rounds}] ${target.padEnd(13)} ${String(Math.round(x.rps)).padStart(6)} req/s  p50 ${x.p50.toFixed(3)} ms  p99 ${x.p99.toFixed(2)} ms` +
      `  gateway ${r.proxyCpuUs === undefined ? '?' : Math.round(r.proxyCpuUs)} µs/req  rss ${mb(r.rssIdle)}→${mb(r.rssLoad)}${tokens}${noise}${errs}`
  }

  /** Each round runs every spec once (`specs(round)`: the ones of that round), order reversed every other round. */
  async #rounds (specs: readonly Spec[] | ((round: number) => readonly Spec[]), rounds = this.#o.rounds): Promise<void> {
    for (let round = 1; round <= rounds; round++) {
      const these = typeof specs === 'function' ? specs(round) : specs
      const order = round % 2 === 1 ? these : [...these].reverse()
      for (const spec of order) {
        if (this.#ctx.signal.aborted) throw new Error('aborted')
        const r = await this.#measure(spec, round)
        this.records.push(r)
        this.#log(this.#runLine(r))
      }
    }
  }

  /**
   * P gateway processes of each variant (`SECTION-TARGET-k`) on the gateway CPU, started side by
   * side and waited for: two processes of one build and config differ by up to ~15 % for their
   * whole life, so #inTurns measures another process of each variant every round.
   */
  async #startTurns<V extends { readonly target: string; readonly what: string }> (section: string, variants: readonly V[], P: number,
    yaml: (port: number, admin: number, v: V) => string, env: (v: V) => NodeJS.ProcessEnv): Promise<Array<V & TurnGateway>> {
    const ports = await freePorts(2 * variants.length * P)
    const gws = variants.flatMap((v, i) => Array.from({ length: P }, (_, k) => {
      const port = ports[2 * (i * P + k)]!
      const admin = ports[2 * (i * P + k) + 1]!
      const name = `${section}-${v.target}${P === 1 ? '' : `-${k + 1}`}`
      const g = this.#gateway(`gateway-${name}`, yaml(port, admin, v), env(v))
      return { ...v, ...g, name, process: k + 1, port, admin, logStart: 0, fresh: undefined as number | undefined }
    }))
    for (const g of gws) {
      await waitFor(`the ${g.name} gateway (/readyz)`, () => httpOk(`http://127.0.0.1:${g.admin}/readyz`), 30_000, g.proc, this.#ctx.group)
      g.logStart = statSync(g.logFile).size
      g.fresh = rssBytes(g.proc.pid)
      this.#log(`${section} ${`${g.target} #${g.process}`.padEnd(9)} gateway pid ${g.proc.pid} :${g.port}, ${g.what}; RSS fresh ${mb(g.fresh)}`)
    }
    return gws
  }

  /** Unmeasured load on each spec's gateway first: its JIT and V8 heap sizing settle under load. */
  async #prewarm (specs: readonly Spec[]): Promise<void> {
    const o = this.#o
    if (o.prewarm <= 0) return
    for (const s of specs) {
      const w = await this.#wrk(s.url, s.script, s.args('warmup', 0), o.prewarm)
      this.#log(`pre-warm ${s.set} ${`${s.target} #${s.process ?? 1}`.padEnd(9)} c=${o.connections} ${o.prewarm} s (not counted): ${Math.round(w.rps)} req/s${w.errors === 0 ? '' : `, ⚠ ${w.errors} errors`}`)
    }
  }

  /** #rounds in which round r measures process ((r − 1) mod P) + 1 of every variant. */
  async #inTurns (specs: readonly Spec[], P: number, rounds: number): Promise<void> {
    await this.#rounds((round) => specs.filter((s) => s.process === ((round - 1) % P) + 1), rounds)
  }

  // -------------------------------------------------------------------------------------------
  // 1 + 2: auth and the token endpoint share one gateway (and the dev IdP)

  async authAndTokens (): Promise<void> {
    const o = this.#o
    const ctx = this.#ctx
    const [gwPort, adminPort, idpPort] = await freePorts(3) as [number, number, number]
    const issuer = `http://127.0.0.1:${gwPort}`
    const resource = `${issuer}/mcp/secured`
    const keysFile = join(ctx.tmp, 'signing-keys.json')
    generateSigningKeys(ctx.node, ctx.root, keysFile)
    let idp: BenchIdp | undefined
    try {
      idp = await startBenchIdp(idpPort, issuer, resource)
      const gw = this.#gateway('gateway-auth', authGatewayYaml({
        publicUrl: issuer, port: gwPort, admin: adminPort, upstreamPort: ctx.upstreamPort, keysFile, idpIssuer: idp.issuer, clientId: CLIENT.id, tokenTtlS: TOKEN_TTL_S, writer: 'test/bench/features.ts',
      }), { ...gatewayBaseEnv(), PORTCULLIS_LOG_LEVEL: 'warn', BENCH_CLIENT_SECRET: CLIENT.secret })
      await waitFor('the auth gateway (/readyz)', () => httpOk(`http://127.0.0.1:${adminPort}/readyz`), 30_000, gw.proc, ctx.group)
      const logStart = statSync(gw.logFile).size
      const rssFresh = rssBytes(gw.proc.pid)
      this.#log(`auth gateway pid ${gw.proc.pid} :${gwPort} (admin :${adminPort}), RSS fresh ${mb(rssFresh)}; dev IdP in the bench process at ${idp.issuer}; signing keys ${keysFile}`)

      // the real flow, once: IdP password grant → ID token → token exchange → ID-JAG → /oauth/token
      const t0 = Date.now()
      const { token, body } = await redeem(issuer, await idp.idJagViaExchange())
      this.#log(`real flow: access token from the gateway's /oauth/token in ${Date.now() - t0} ms (${token.length} chars, expires_in ${String(body.expires_in)}, scope "${String(body.scope)}")`)
      const [minted] = await mintAccessTokens(keysFile, token, 1, TOKEN_TTL_S)
      const diffs = claimDifferences(token, minted!)
      if (diffs.length > 0) throw new Error(`minted access tokens differ from the real-flow one: ${diffs.join('; ')}`)
      const noToken = await this.#post1(`${issuer}/mcp/secured`, undefined)
      if (noToken.status !== 401) throw new Error(`POST /mcp/secured without a token answered ${noToken.status}, expected 401`)
      this.#log('smoke checks (one POST each):')
      this.#log(`  ${await this.#expectResult('open    + token header', `${issuer}/mcp/open`, token)}`)
      this.#log(`  ${await this.#expectResult('secured + real-flow token', `${issuer}/mcp/secured`, token)}`)
      this.#log(`  ${await this.#expectResult('secured + minted token', `${issuer}/mcp/secured`, minted)}`)
      this.#log('  secured without a token: 401 (as it must)')

      const one = join(ctx.tmp, 'token-one.txt')
      writeFileSync(one, `${token}\n`)
      if (o.sections.has('auth')) await this.#auth(issuer, gw.proc, one, keysFile, token)
      if (o.sections.has('tokens')) await this.#tokens(issuer, gw.proc, idp)

      this.notes.push(`auth gateway RSS: fresh ${mb(rssFresh)}, after ${mb(rssBytes(gw.proc.pid))}; ${rssSplit(gw.proc.pid)}`)
      this.notes.push(`auth gateway /metrics after: ${await gatewayMemory(adminPort)}`)
      this.notes.push(await this.#authCounters(adminPort))
      this.notes.push(scanGatewayLog(gw.logFile, logStart, 'auth gateway log after startup'))
      await ctx.group.stop(gw.proc, 10_000)
      this.#profiles('gateway-auth', [
        ['auth: none (round 1)', this.#firstWindow('auth', 'none')],
        ['auth: required, one cached token (round 1)', this.#firstWindow('auth', 'cached')],
        ['auth: required, a new token per request (round 1)', this.#firstWindow('auth', 'fresh')],
        ['token endpoint (round 1)', this.grants.find((g) => g.round === 1)?.window],
      ])
    } finally {
      await idp?.close()
    }
  }

  async #authCounters (adminPort: number): Promise<string> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
      const lines = text.split('\n').filter((l) => /^portcullis_(access_token_validations|token_requests)_total\{/.test(l))
      // one request without a token is the smoke check's (401 expected)
      const missing = metricSum(text, 'portcullis_access_token_validations_total', (l) => l.includes('result="missing"')) ?? 0
      const invalid = metricSum(text, 'portcullis_access_token_validations_total', (l) => !l.includes('result="valid"') && !l.includes('result="missing"')) ?? 0
      const rejected = metricSum(text, 'portcullis_token_requests_total', (l) => !l.includes('outcome="issued"')) ?? 0
      const clean = invalid === 0 && rejected === 0 && missing <= 1
      return `auth gateway counters: ${clean ? 'no invalid token, no rejected grant (the one "missing" is the smoke check without a token)' : `⚠ ${invalid} invalid token(s), ${missing} request(s) without a token (1 expected), ${rejected} grant(s) rejected`}\n  ${lines.join('\n  ')}`
    } catch (err) {
      return `auth gateway counters: unavailable (${(err as Error).message})`
    }
  }

  async #auth (issuer: string, gw: Proc, one: string, keysFile: string, token: string): Promise<void> {
    const o = this.#o
    const ctx = this.#ctx
    this.#log(`\n## features 1: token validation per request (c=${o.connections}, ${o.rounds} rounds × none/cached/fresh, ${o.warmup} s warm-up + ${o.duration} s)`)
    if (o.prewarm > 0) {
      for (const [name, url] of [['open', `${issuer}/mcp/open`], ['secured', `${issuer}/mcp/secured`]] as const) {
        const w = await this.#wrk(url, this.#rotate, [one], o.prewarm)
        this.#log(`pre-warm ${name} (one token) c=${o.connections} ${o.prewarm} s (not counted): ${Math.round(w.rps)} req/s${w.errors === 0 ? '' : `, ⚠ ${w.errors} errors`}`)
      }
    }
    // probe: how fast the gateway goes when every token is new, to size the pool (also warms that path)
    const probeS = 3
    const probeN = 15_000
    let t = Date.now()
    const probeTokens = await mintAccessTokens(keysFile, token, probeN, TOKEN_TTL_S)
    const probeFile = join(ctx.tmp, 'tokens-probe.txt')
    writeFileSync(probeFile, probeTokens.join('\n') + '\n')
    this.#log(`minted ${probeN} access tokens for a probe in ${((Date.now() - t) / 1000).toFixed(1)} s`)
    const probeTicks0 = cpuTicks(gw.pid) ?? 0
    const probe = await this.#wrk(`${issuer}/mcp/secured`, this.#rotate, [probeFile], probeS)
    if (probe.errors > 0) throw new Error(`the fresh-token probe had ${probe.errors} errors (non-2xx ${probe.non2xx}):\n${probe.raw.slice(0, 800)}`)
    const probeCpuUs = probe.requests === 0 ? undefined : (((cpuTicks(gw.pid) ?? probeTicks0) - probeTicks0) * CLOCK_TICK_US) / probe.requests
    // The probe's req/s drops when other processes take the gateway's core; its CPU per request
    // does not, and 1e6 / (µs per request) bounds what the gateway can do alone on its core.
    const rate = Math.max(probe.rps, probeCpuUs === undefined || probeCpuUs === 0 ? 0 : 1e6 / probeCpuUs)
    const MARGIN = 1.4
    const per = (s: number): number => Math.max(200, Math.ceil(rate * MARGIN * s))
    const warmN = o.warmup > 0 ? per(o.warmup) : 0
    const runN = per(o.duration)
    const total = o.rounds * (warmN + runN)
    this.#log(`probe, a new token per request, ${probeS} s: ${Math.round(probe.rps)} req/s, gateway ${probeCpuUs === undefined ? '?' : Math.round(probeCpuUs)} µs/req (${probe.fields.distinct}/${probe.fields.generated} distinct) → ` +
      `${warmN} + ${runN} tokens per round (${MARGIN} × max(probe req/s, 1e6 / probe µs per request) = ${Math.round(rate * MARGIN)}/s × ${o.warmup} + ${o.duration} s), ${total} in all`)
    t = Date.now()
    const pool = await mintAccessTokens(keysFile, token, total, TOKEN_TTL_S)
    const files = new Map<string, string>()
    let at = 0
    for (let round = 1; round <= o.rounds; round++) {
      for (const [phase, n] of [['warmup', warmN], ['run', runN]] as const) {
        if (n === 0) continue
        const f = join(ctx.tmp, `tokens-r${round}-${phase}.txt`)
        writeFileSync(f, pool.slice(at, at + n).join('\n') + '\n')
        at += n
        files.set(`${round}-${phase}`, f)
      }
    }
    this.#log(`minted ${total} access tokens (the gateway's issueAccessToken and signing key, the real-flow token's claims) in ${((Date.now() - t) / 1000).toFixed(1)} s; ` +
      `${mb(pool.reduce((s, x) => s + x.length + 1, 0))} in ${files.size} files`)
    const oneArgs = (): string[] => [one]
    await this.#rounds([
      { set: 'auth', target: 'none', url: `${issuer}/mcp/open`, pid: gw.pid, script: this.#rotate, args: oneArgs },
      { set: 'auth', target: 'cached', url: `${issuer}/mcp/secured`, pid: gw.pid, script: this.#rotate, args: oneArgs },
      { set: 'auth', target: 'fresh', url: `${issuer}/mcp/secured`, pid: gw.pid, script: this.#rotate, args: (phase, round) => [files.get(`${round}-${phase}`) ?? one] },
    ])
    this.#log()
    this.#log(authTable(this.records.filter((r) => r.set === 'auth'), o))
  }

  async #tokens (issuer: string, gw: Proc, idp: BenchIdp): Promise<void> {
    const o = this.#o
    this.#log(`\n## features 2: token endpoint throughput (POST /oauth/token, jwt-bearer + client_secret_basic, fresh single-use ID-JAGs, ${o.connections} in flight, ${o.rounds} rounds × ${o.warmup} s warm-up + ${o.duration} s)`)
    const rate = await this.#grantProbe(idp, issuer, gw.pid, 'probe')
    const files = await this.#grantFiles(idp, 'tokens', rate, o.rounds)
    for (let round = 1; round <= o.rounds; round++) {
      if (this.#ctx.signal.aborted) throw new Error('aborted')
      await this.#grantRound({ set: 'tokens' }, issuer, gw.pid, files[round - 1]!, round, o.rounds)
    }
    this.#log()
    this.#log(grantsTable(this.grants.filter((g) => g.set === 'tokens'), o))
  }

  /** `n` fresh single-use ID-JAGs in a file, one per line */
  async #writeJags (idp: BenchIdp, name: string, n: number): Promise<string> {
    const f = join(this.#ctx.tmp, `idjags-${name}.txt`)
    writeFileSync(f, (await idp.mintIdJags(n)).join('\n') + '\n')
    return f
  }

  /** grants.ts on the load CPU: the ID-JAGs of `file` at `issuer`'s token endpoint, for `durationS` at most */
  async #fireGrants (issuer: string, file: string, durationS: number, label: string): Promise<Omit<GrantRun, 'round'>> {
    const ctx = this.#ctx
    const logFile = join(ctx.tmp, `grants-${label}.out`)
    const p = this.#spawn(`grants ${label}`, [join(ctx.here, 'grants.ts'), issuer, basic(CLIENT.id, CLIENT.secret), file, String(durationS), String(this.#o.connections)], ctx.loadCpu, process.env, logFile)
    const killer = setTimeout(() => { void ctx.group.stop(p, 1_000) }, (durationS + 60) * 1000)
    const onAbort = (): void => { void ctx.group.stop(p, 1_000) }
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    const code = await p.exited
    clearTimeout(killer)
    ctx.signal.removeEventListener('abort', onAbort)
    const line = /^BENCH_GRANTS (\{.*\})$/m.exec(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
    if (code !== 0 || line === null) throw new Error(`grants load generator (${label}) failed (exit ${code}):\n${tail(logFile)}`)
    return JSON.parse(line[1]!) as Omit<GrantRun, 'round'>
  }

  /**
   * An unmeasured grant run against the gateway `pid` (also the pre-warm of its grant path) that
   * sizes the measured ones: the grants/s to mint ID-JAGs for.
   */
  async #grantProbe (idp: BenchIdp, issuer: string, pid: number, label: string): Promise<number> {
    const t = Date.now()
    const probeN = 5_000
    const probeFile = await this.#writeJags(idp, label, probeN)
    this.#log(`minted ${probeN} ID-JAGs (dev IdP key) in ${((Date.now() - t) / 1000).toFixed(1)} s`)
    const probeTicks0 = cpuTicks(pid) ?? 0
    const probe = await this.#fireGrants(issuer, probeFile, Math.max(2, this.#o.prewarm), label)
    const probeCpuUs = probe.ok === 0 ? undefined : (((cpuTicks(pid) ?? probeTicks0) - probeTicks0) * CLOCK_TICK_US) / probe.ok
    this.#log(`${label}: ${Math.round(probe.rps)} grants/s, gateway ${probeCpuUs === undefined ? '?' : Math.round(probeCpuUs)} µs/grant (${probe.ok}/${probe.sent} × 200${probe.ranOut ? `, all ${probe.available} used` : ''}), p50 ${probe.p50.toFixed(2)} ms${probe.ok === probe.sent ? '' : ` ⚠ statuses ${JSON.stringify(probe.statuses)} first error: ${probe.firstError ?? ''}`}`)
    // as for the access tokens: the CPU per grant bounds the rate better than a noisy probe's grants/s
    return Math.max(probe.rps, probeCpuUs === undefined || probeCpuUs === 0 ? 0 : 1e6 / probeCpuUs, 50)
  }

  /** ID-JAG files for `rounds` rounds (a warm-up and a measured run each), 1.5 × `rate` per second */
  async #grantFiles (idp: BenchIdp, name: string, rate: number, rounds: number): Promise<GrantFiles[]> {
    const o = this.#o
    const warmN = o.warmup > 0 ? Math.ceil(rate * 1.5 * o.warmup) + 50 : 0
    const runN = Math.ceil(rate * 1.5 * o.duration) + 100
    const t = Date.now()
    const files: GrantFiles[] = []
    for (let round = 1; round <= rounds; round++) {
      files.push({ warm: warmN === 0 ? undefined : await this.#writeJags(idp, `${name}-r${round}-warmup`, warmN), run: await this.#writeJags(idp, `${name}-r${round}-run`, runN) })
    }
    this.#log(`minted ${rounds * (warmN + runN)} ID-JAGs for ${name} (${warmN} + ${runN} per round: 1.5 × max(probe grants/s, 1e6 / probe µs per grant)) in ${((Date.now() - t) / 1000).toFixed(1)} s`)
    return files
  }

  /** One round of grants at the gateway `pid`: the warm-up, then the measured run (its CPU per grant, the noise on its core, `counters`) */
  async #grantRound (tag: { set: 'tokens' | 'store'; target?: string; process?: number }, issuer: string, pid: number, files: GrantFiles,
    round: number, rounds: number, counters?: Counters): Promise<GrantRun> {
    const o = this.#o
    const ctx = this.#ctx
    const label = tag.set === 'tokens' ? `r${round}` : `store-${tag.target ?? ''}-r${round}`
    if (files.warm !== undefined) await this.#fireGrants(issuer, files.warm, o.warmup, `${label}-warmup`)
    const ticks0 = cpuTicks(pid) ?? 0
    const cpu1Before = cpuTimes(Number(ctx.proxyCpu))
    const counters0 = await counters?.()
    const startUs = Number(process.hrtime.bigint() / 1000n)
    const r = await this.#fireGrants(issuer, files.run, o.duration, `${label}-run`)
    const window: [number, number] = [startUs, Number(process.hrtime.bigint() / 1000n)]
    const grew = counters0 === undefined ? undefined : grown(counters0, await counters!())
    const ticks = (cpuTicks(pid) ?? ticks0) - ticks0
    const cpu1After = cpuTimes(Number(ctx.proxyCpu))
    const otherOnProxyCpu = cpu1Before === undefined || cpu1After === undefined
      ? undefined
      : Math.max(0, (100 * (cpu1After.busy - cpu1Before.busy - ticks)) / ((cpu1After.busy + cpu1After.idle) - (cpu1Before.busy + cpu1Before.idle)))
    const run: GrantRun = { ...r, ...tag, round, gatewayCpuUs: r.ok === 0 ? undefined : (ticks * CLOCK_TICK_US) / r.ok, otherOnProxyCpu, window, counters: grew }
    this.grants.push(run)
    const who = tag.set === 'tokens' ? `tokens c=${o.connections}` : `store grants c=${o.connections}`
    const target = tag.target === undefined ? '' : `${`${tag.target} #${tag.process ?? 1}`.padEnd(10)} `
    this.#log(`  [${who} round ${round}/${rounds}] ${target}${String(Math.round(run.rps)).padStart(6)} grants/s  p50 ${run.p50.toFixed(2)} ms  p99 ${run.p99.toFixed(2)} ms  ` +
      `gateway ${run.gatewayCpuUs === undefined ? '?' : Math.round(run.gatewayCpuUs)} µs/grant  ${run.ok}/${run.sent} × 200${run.ranOut ? ` (ran out of ID-JAGs after ${(run.elapsedMs / 1000).toFixed(1)} s: count-bound)` : ''}` +
      `${otherOnProxyCpu === undefined ? '' : `  cpu1-other ${otherOnProxyCpu.toFixed(0)}%${otherOnProxyCpu >= QUIET_PCT ? ' ⚠ noisy' : ''}`}` +
      `${run.ok === run.sent ? '' : `  ⚠ statuses ${JSON.stringify(run.statuses)}, first: ${run.firstError ?? ''}`}`)
    return run
  }

  // -------------------------------------------------------------------------------------------
  // 3: telemetry off vs on

  async telemetry (): Promise<void> {
    const o = this.#o
    const ctx = this.#ctx
    const [sinkPort] = await freePorts(1) as [number]
    const otlp = otlpEnv(sinkPort)
    const sampled = { ...otlp, ...PROD_SAMPLER }
    const always = { ...otlp, OTEL_TRACES_SAMPLER: 'parentbased_always_on' }
    const sampler = (env: Record<string, string>): string => `${env.OTEL_TRACES_SAMPLER}${env.OTEL_TRACES_SAMPLER_ARG === undefined ? '' : ` ${env.OTEL_TRACES_SAMPLER_ARG}`}`
    // off, on (as the prod overlay ships it) and always (every request traced); with
    // BENCH_FEATURES_TELEMETRY_SPLIT=1 also each part alone: the audit line, the spans at the
    // shipped ratio (so "on" = audit + sampled), and the spans of every request
    const variants: ReadonlyArray<{ target: string; level: string; otel: Record<string, string> | undefined; what: string }> = [
      { target: 'off', level: 'warn', otel: undefined, what: 'PORTCULLIS_LOG_LEVEL=warn, no OTEL_*' },
      { target: 'on', level: 'info', otel: sampled, what: `PORTCULLIS_LOG_LEVEL=info (audit line per request, stdout → a pipe) + OTEL_* (spans to the sink, ${sampler(sampled)})` },
      { target: 'always', level: 'info', otel: always, what: `PORTCULLIS_LOG_LEVEL=info (audit line per request, stdout → a pipe) + OTEL_* (spans to the sink, ${sampler(always)})` },
      ...(o.telemetrySplit
        ? [
            { target: 'audit', level: 'info', otel: undefined, what: 'PORTCULLIS_LOG_LEVEL=info (audit line per request, stdout → a pipe), no OTEL_*' },
            { target: 'sampled', level: 'warn', otel: sampled, what: `PORTCULLIS_LOG_LEVEL=warn + OTEL_* (spans to the sink, ${sampler(sampled)}), no audit line` },
            { target: 'traces', level: 'warn', otel: always, what: `PORTCULLIS_LOG_LEVEL=warn + OTEL_* (spans to the sink, ${sampler(always)}), no audit line` },
          ]
        : []),
    ]
    const P = o.telemetryProcesses
    this.#log(`\n## features 3: cost of telemetry (c=${o.connections}, ${o.telemetryRounds} rounds × ${variants.map((v) => v.target).join('/')}, ${P} gateway process${P === 1 ? '' : 'es'} per variant taking turns by round, ${o.warmup} s warm-up + ${o.duration} s)`)
    const sink = this.#spawn('otlp-sink', [join(ctx.here, 'otlp-sink.ts'), String(sinkPort)], ctx.loadCpu, process.env, join(ctx.tmp, 'otlp-sink.log'))
    await waitFor('the OTLP sink', () => httpOk(`http://127.0.0.1:${sinkPort}/stats`), 15_000, sink, ctx.group)
    this.#log(`OTLP sink pid ${sink.pid} :${sinkPort} (CPU ${ctx.loadCpu}); the gateways with traces get ${Object.entries(otlp).map(([k, v]) => `${k}=${v}`).join(' ')} and their sampler`)
    const gws = await this.#startTurns('telemetry', variants, P,
      (port, admin) => telemetryGatewayYaml(port, admin, ctx.upstreamPort, 'test/bench/features.ts'),
      (v) => ({ ...gatewayBaseEnv(), PORTCULLIS_LOG_LEVEL: v.level, ...v.otel }))
    this.#log('smoke checks (one POST each):')
    for (const g of gws) this.#log(`  ${await this.#expectResult(`${g.target} #${g.process}`.padEnd(9), `http://127.0.0.1:${g.port}/mcp/open`, undefined)}`)
    const specs: Spec[] = gws.map((g) => ({ set: 'telemetry', target: g.target, process: g.process, url: `http://127.0.0.1:${g.port}/mcp/open`, pid: g.proc.pid, script: this.#post, args: () => [] }))
    await this.#prewarm(specs)
    await this.#inTurns(specs, P, o.telemetryRounds)
    this.#log()
    this.#log(telemetryTable(this.records.filter((r) => r.set === 'telemetry'), o))

    await new Promise((resolve) => setTimeout(resolve, 6_000)) // the last batch of spans (OTEL_BSP_SCHEDULE_DELAY defaults to 5 s)
    let sinkStats = '(unavailable)'
    let tracePosts = 0
    try {
      const s = await (await fetch(`http://127.0.0.1:${sinkPort}/stats`, { signal: AbortSignal.timeout(5_000) })).json() as { posts: Record<string, number>; bytes: Record<string, number>; contentTypes: Record<string, number> }
      tracePosts = s.posts['/v1/traces'] ?? 0
      this.tracePosts = tracePosts
      sinkStats = `${JSON.stringify(s.posts)} bytes ${JSON.stringify(s.bytes)} content types ${JSON.stringify(s.contentTypes)}`
    } catch (err) {
      sinkStats = `(unavailable: ${(err as Error).message})`
    }
    this.notes.push(`OTLP sink received (the "on", "always"${o.telemetrySplit ? ', "sampled" and "traces"' : ''} gateways together): ${sinkStats}${tracePosts === 0 ? '\n  ⚠ no trace export reached the sink although OTEL_EXPORTER_OTLP_ENDPOINT was set: the gateways made no spans (does `portcullis start` start the OpenTelemetry SDK from OTEL_*? see src/telemetry/tracing.ts startTracing and src/cli/start.ts)' : ''}`)
    for (const g of gws) {
      if (g.level === 'info') {
        const requests = await this.#requestsServed(g.admin)
        const st = logStats(g.logFile, g.logStart)
        this.notes.push(`${g.name} gateway log: ${st.lines} lines, ${st.audit} audit lines ("log.type":"audit"), ${mb(st.bytes)} (${st.audit === 0 ? '?' : Math.round(st.bytes / st.audit)} B per audit line) for ${requests ?? '?'} MCP requests counted by its metrics` +
          `${st.example === undefined || g.target !== 'always' || g.process !== 1 ? '' : `\n  one audit line: ${st.example.slice(0, 700)}`}`)
      }
      this.notes.push(`${g.name} gateway RSS: fresh ${mb(g.fresh)}, after ${mb(rssBytes(g.proc.pid))}; /metrics: ${await gatewayMemory(g.admin)}`)
      this.notes.push(scanGatewayLog(g.logFile, g.logStart, `${g.name} gateway log after startup`))
    }
    await Promise.all([...gws.map((g) => ctx.group.stop(g.proc, 10_000)), ctx.group.stop(sink, 5_000)])
    // profiles: the first process of each variant, in round 1 (the round it serves)
    for (const g of gws.filter((x) => x.process === 1)) this.#profiles(`gateway-${g.name}`, [[`telemetry ${g.target} (round 1)`, this.#firstWindow('telemetry', g.target)]])
  }

  // -------------------------------------------------------------------------------------------
  // 4: the shared store (store.ts)

  async store (): Promise<void> {
    await runStore({
      ctx: this.#ctx,
      rotate: this.#rotate,
      records: this.records,
      grants: this.grants,
      notes: this.notes,
      log: (line) => { this.#log(line) },
      spawn: (name, command, args, cpu, logFile) => this.#spawn(name, [...args], cpu, process.env, logFile, undefined, command),
      startTurns: (section, variants, P, yaml, env) => this.#startTurns(section, variants, P, yaml, env),
      prewarm: (specs) => this.#prewarm(specs),
      inTurns: (specs, P, rounds) => this.#inTurns(specs, P, rounds),
      expectResult: (what, url, token) => this.#expectResult(what, url, token),
      grantProbe: (idp, issuer, pid, label) => this.#grantProbe(idp, issuer, pid, label),
      grantFiles: (idp, name, rate, rounds) => this.#grantFiles(idp, name, rate, rounds),
      grantRound: (tag, issuer, pid, files, round, rounds, counters) => this.#grantRound(tag, issuer, pid, files, round, rounds, counters),
      profiles: (name, windows) => { this.#profiles(name, windows) },
      firstWindow: (set, target) => this.#firstWindow(set, target),
    })
  }

  async #requestsServed (adminPort: number): Promise<number | undefined> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
      return metricSum(text, 'portcullis_mcp_requests_total')
    } catch {
      return undefined
    }
  }
}

/** Lines, audit lines and bytes a gateway logged from byte `start` (streamed: the file may be large). */
function logStats (file: string, start: number): { lines: number; audit: number; bytes: number; example: string | undefined } {
  if (!existsSync(file)) return { lines: 0, audit: 0, bytes: 0, example: undefined }
  const buf = readFileSync(file).subarray(start)
  let lines = 0
  let audit = 0
  let example: string | undefined
  const needle = Buffer.from('"log.type":"audit"')
  let from = 0
  while (from < buf.length) {
    let nl = buf.indexOf(10, from)
    if (nl === -1) nl = buf.length
    if (nl > from) {
      lines++
      const line = buf.subarray(from, nl)
      if (line.indexOf(needle) !== -1) {
        audit++
        example ??= line.toString('utf8')
      }
    }
    from = nl + 1
  }
  return { lines, audit, bytes: buf.length, example }
}

// ---------------------------------------------------------------------------------------------
// tables

const AUTH_LABEL: Record<string, string> = {
  none: 'auth: none (same header, unchecked)',
  cached: 'auth: required, one cached token',
  fresh: 'auth: required, a new token per request',
}

export function authRows (records: readonly FeatureRecord[]): VariantRow[] {
  return variantRows(records, ['none', 'cached', 'fresh'], 'none')
}

function authTable (records: readonly FeatureRecord[], o: FeaturesOptions): string {
  const rs = authRows(records)
  const vsCached = median(perRoundValues(records, 'fresh', 'cached', (t, b) => t.result.rps / b.result.rps))
  const head = ['variant', 'req/s', '× none', '× none, quiet rounds', '× cached', 'p50 ms', 'p99 ms', '+p50 vs none ms', '+p99 vs none ms', 'gateway CPU µs/req', '+CPU µs/req vs none',
    'tokens: distinct / requests sent', 'RSS idle→load MB', 'CPU1 other % (noise)', 'valid runs', 'errors']
  const lines = rs.map((r) => [
    AUTH_LABEL[r.target] ?? r.target,
    int(r.rps), f2(r.xBase), r.target === 'none' ? '' : r.xBaseQuiet === undefined ? 'none quiet' : `${f2(r.xBaseQuiet)} (${r.quietRounds})`,
    r.target === 'fresh' ? f2(vsCached) : '',
    f2(r.p50, 3), f2(r.p99, 2), f2(r.addP50, 3, true), f2(r.addP99, 2, true),
    int(r.cpuUs), int(r.addCpuUs, true),
    r.generated === 0
      ? ''
      : r.target === 'fresh'
        ? `${r.distinct} / ${r.generated} (${(100 * r.distinct / r.generated).toFixed(r.distinct === r.generated ? 0 : 1)} % new)`
        : `the same 1 / ${r.generated}`,
    r.rssIdle === undefined ? '' : `${Math.round(r.rssIdle / 1048576)}→${Math.round((r.rssLoad ?? 0) / 1048576)}`,
    r.noise === undefined ? '' : r.noise.toFixed(0),
    `${r.validRuns}/${r.runs}`, r.errors,
  ])
  return markdown(`token validation per request, c=${o.connections} (medians of ${o.rounds} rounds; ratios, added ms and added µs: median of per-round values)`, head, lines)
}

const TELEMETRY_LABEL: Record<string, string> = {
  off: 'off (warn, no OTel)',
  on: `on as shipped (info audit → pipe, OTLP http/protobuf, ${PROD_SAMPLER.OTEL_TRACES_SAMPLER} ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG})`,
  always: 'every request traced (info audit → pipe, OTLP http/protobuf, always_on)',
  audit: 'audit line only (info → pipe, no OTel)',
  sampled: `spans only, as shipped (warn, OTLP http/protobuf, ${PROD_SAMPLER.OTEL_TRACES_SAMPLER} ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG})`,
  traces: 'spans only (warn, OTLP http/protobuf, always_on)',
}

export function telemetryRows (records: readonly FeatureRecord[]): VariantRow[] {
  return variantRows(records, ['off', 'on', 'always', 'audit', 'sampled', 'traces'].filter((t) => records.some((r) => r.target === t)), 'off')
}

function telemetryTable (records: readonly FeatureRecord[], o: FeaturesOptions): string {
  const rs = telemetryRows(records)
  const head = ['telemetry', 'req/s', '× off', '× off, quiet rounds', 'p50 ms', 'p99 ms', '+p50 vs off ms', '+p99 vs off ms', 'gateway CPU µs/req', '+CPU µs/req vs off', 'RSS idle→load MB', 'CPU1 other % (noise)', 'valid runs', 'errors']
  const lines = rs.map((r) => [
    TELEMETRY_LABEL[r.target] ?? r.target,
    int(r.rps), f2(r.xBase), r.target === 'off' ? '' : r.xBaseQuiet === undefined ? 'none quiet' : `${f2(r.xBaseQuiet)} (${r.quietRounds})`,
    f2(r.p50, 3), f2(r.p99, 2), f2(r.addP50, 3, true), f2(r.addP99, 2, true), int(r.cpuUs), int(r.addCpuUs, true),
    r.rssIdle === undefined ? '' : `${Math.round(r.rssIdle / 1048576)}→${Math.round((r.rssLoad ?? 0) / 1048576)}`,
    r.noise === undefined ? '' : r.noise.toFixed(0), `${r.validRuns}/${r.runs}`, r.errors,
  ])
  return markdown(`telemetry off vs on, c=${o.connections} (medians of ${o.telemetryRounds} rounds, ${o.telemetryProcesses} processes per variant taking turns by round; ratios and added values: median of per-round values)`, head, lines)
}

function grantsTable (runs: readonly GrantRun[], o: FeaturesOptions): string {
  const head = ['round', 'grants/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'gateway CPU µs/grant', 'responses', 'all 200 with a token', 'CPU1 other % (noise)']
  const lines = runs.map((g) => [
    String(g.round), int(g.rps), f2(g.p50), f2(g.p90), f2(g.p99), f2(g.max), int(g.gatewayCpuUs),
    `${g.sent}${g.ranOut ? ' (all ID-JAGs used: count-bound)' : ''}`, grantsOk(g) ? 'yes' : `⚠ no: ${JSON.stringify(g.statuses)}`,
    g.otherOnProxyCpu === undefined ? '' : g.otherOnProxyCpu.toFixed(0),
  ])
  const ok = runs.filter(grantsOk)
  lines.push(['median', int(median(ok.map((g) => g.rps))), f2(median(ok.map((g) => g.p50))), f2(median(ok.map((g) => g.p90))), f2(median(ok.map((g) => g.p99))),
    f2(median(ok.map((g) => g.max))), int(median(ok.map((g) => g.gatewayCpuUs ?? NaN))), `${ok.length}/${runs.length} rounds valid`, '', ''])
  return markdown(`token endpoint, ${o.connections} in flight (undici Pool, CPU 0), ${o.duration} s per round`, head, lines)
}

// ---------------------------------------------------------------------------------------------

export async function runFeatures (ctx: FeaturesContext): Promise<FeaturesOutcome> {
  const t0 = Date.now()
  const o = ctx.options
  const f = new Features(ctx)
  ctx.log(`\n# features: auth, telemetry and shared-store costs (${[...o.sections].join(', ')}; c=${o.connections}, ${o.rounds} rounds, ${o.warmup} s warm-up + ${o.duration} s per run, ${o.prewarm} s pre-warm per gateway; estimated ${Math.ceil(featuresEstimateS(o) / 60)} min)`)
  ctx.log(`pinning: CPU ${ctx.loadCpu} = wrk -t1 / grants load generator + upstream + OTLP sink + redis-server; CPU ${ctx.proxyCpu} = the gateway under test`)
  if (o.profile) ctx.log('⚠ BENCH_FEATURES_PROFILE=1: the gateways run with --cpu-prof, which slows them: use this run for the profiles, not for the ratios')
  if (o.sections.has('auth') || o.sections.has('tokens')) {
    try {
      await f.authAndTokens()
    } catch (err) {
      f.failures.push(`auth/tokens: ${(err as Error).message}`)
      ctx.log(`\n✗ features (auth/tokens) failed: ${(err as Error).message}`)
    }
  }
  if (o.sections.has('telemetry') && !ctx.signal.aborted) {
    try {
      await f.telemetry()
    } catch (err) {
      f.failures.push(`telemetry: ${(err as Error).message}`)
      ctx.log(`\n✗ features (telemetry) failed: ${(err as Error).message}`)
    }
  }
  if (o.sections.has('store') && !ctx.signal.aborted) {
    try {
      await f.store()
    } catch (err) {
      f.failures.push(`store: ${(err as Error).message}`)
      ctx.log(`\n✗ features (store) failed: ${(err as Error).message}`)
    }
  }
  if (f.notes.length > 0) ctx.log(`\n${f.notes.join('\n')}`)

  // summary
  const parts: string[] = []
  const verdict = (v: number | undefined, goal: number): string => v === undefined ? 'n/a' : `${v.toFixed(3)} (≥ ${goal.toFixed(2)}: ${v >= goal ? 'PASS' : 'FAIL'})`
  const auth = f.records.filter((r) => r.set === 'auth')
  if (auth.length > 0) {
    const [, cached, fresh] = authRows(auth)
    const vsCached = median(perRoundValues(auth, 'fresh', 'cached', (t, b) => t.result.rps / b.result.rps))
    parts.push(`auth cached/none ${verdict(cached?.xBase, GOAL_CACHED)}, ${f2(cached?.addCpuUs, 0, true)} µs CPU/req, ${f2(cached?.addP50, 3, true)} ms p50`)
    parts.push(`new token per request/cached ${verdict(vsCached, GOAL_FRESH_VS_CACHED)}, /none ${f2(fresh?.xBase, 3)}, ${f2(fresh?.addCpuUs, 0, true)} µs CPU/req, ${f2(fresh?.addP50, 3, true)} ms p50; ${fresh === undefined || fresh.generated === 0 ? '' : `${(100 * fresh.distinct / fresh.generated).toFixed(1)} % of requests carried a token not seen before`}`)
  }
  const tokenGrants = f.grants.filter((g) => g.set === 'tokens')
  if (tokenGrants.length > 0) {
    const ok = tokenGrants.filter(grantsOk)
    parts.push(`token endpoint ${int(median(ok.map((g) => g.rps)))} grants/s, p50 ${f2(median(ok.map((g) => g.p50)))} ms, p99 ${f2(median(ok.map((g) => g.p99)))} ms, ${int(median(ok.map((g) => g.gatewayCpuUs ?? NaN)))} µs CPU/grant; all 200: ${ok.length === tokenGrants.length ? 'yes' : `NO (${tokenGrants.length - ok.length} round(s) with other statuses)`}`)
  }
  const tel = f.records.filter((r) => r.set === 'telemetry')
  let goal: string | undefined
  if (tel.length > 0) {
    const trs = telemetryRows(tel)
    const on = trs.find((r) => r.target === 'on')
    const always = trs.find((r) => r.target === 'always')
    const partLabel: Record<string, string> = { audit: 'audit line only', sampled: `spans only (prod sampler ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG})`, traces: 'spans only (always_on)' }
    const split = trs.filter((r) => partLabel[r.target] !== undefined)
      .map((r) => `; ${partLabel[r.target]} ${f2(r.xBase, 3)} (${f2(r.addCpuUs, 0, true)} µs)`).join('')
    parts.push(`telemetry on (prod sampler ${PROD_SAMPLER.OTEL_TRACES_SAMPLER_ARG})/off ${f2(on?.xBase, 3)}, ${f2(on?.addCpuUs, 0, true)} µs CPU/req, ${f2(on?.addP50, 3, true)} ms p50; ` +
      `every request traced (always_on)/off ${f2(always?.xBase, 3)}, ${f2(always?.addCpuUs, 0, true)} µs CPU/req${split}`)
    goal = `GOAL (issue 5) telemetry on (as the prod overlay ships it) / off req/s at c=${o.connections}: ${verdict(on?.xBase, GOAL_TELEMETRY).replace('(≥', '(goal ≥')}` +
      ` | quiet rounds only: ${on === undefined || on.quietRounds === 0 ? 'none' : `(${on.quietRounds}/${o.telemetryRounds}) ${verdict(on.xBaseQuiet, GOAL_TELEMETRY).replace('(≥', '(goal ≥')}`}` +
      (f.tracePosts === 0 ? ' | ⚠ NOT A VALID CHECK YET: the "on" gateway exported no spans (0 POSTs at the OTLP sink), so "on" = audit log + metrics only' : f.tracePosts === undefined ? '' : ` | spans exported: ${f.tracePosts} OTLP POSTs`)
  }
  const store = storeSummary(f.records.filter((r) => r.set === 'store'), f.grants.filter((g) => g.set === 'store'), o)
  if (store !== undefined) {
    parts.push(store.part)
    goal = goal === undefined ? store.goal : `${goal}\n${store.goal}`
  }
  const bad = f.records.filter((r) => !valid(r)).length + f.grants.filter((g) => !grantsOk(g)).length
  parts.push(`runs with errors: ${bad}/${f.records.length + f.grants.length}`)
  parts.push(`noisy gateway runs (other processes ≥ ${QUIET_PCT}% of CPU ${ctx.proxyCpu}): ${f.records.filter((r) => !quiet(r)).length}/${f.records.length}`)
  if (f.failures.length > 0) parts.push(`FAILED: ${f.failures.map((x) => x.split('\n')[0]).join('; ')}`)
  parts.push(`features wall ${elapsed(t0)}`)
  if (o.profile) parts.unshift('⚠ profiled (--cpu-prof) run: not the goal measurement')
  const summary = `FEATURES SUMMARY${f.failures.length === 0 ? '' : ' (FAILED)'}: ${parts.join(' | ')}`
  return { records: f.records, grants: f.grants, summary, goal, failed: f.failures.length > 0 }
}
