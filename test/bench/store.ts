/**
 * Part 4 of the features section of `npm run bench` (features.ts): the shared store (design §7)
 * is on the grant path, never on the MCP request path — "the MCP request path with `store.url`
 * set keeps ≥ 0.95× the throughput of the same gateway without it (same run)".
 *   CPU 0: a redis-server of our own (no persistence) with wrk / the grants load generator, the
 *          upstream and the dev IdP (in the bench process)
 *   CPU 1: the gateway under test
 * Gateways of the auth part's config (the `secured` server: auth required, one cached access
 * token on every request, rotate-auth.lua), BENCH_FEATURES_STORE_PROCESSES (3) processes per
 * variant taking turns by round as the telemetry ones, the same PORTCULLIS_SESSION_KEY for all:
 *   memory → no `store` key: the authorization server's state in the process
 *   redis  → `store: { url: redis://127.0.0.1:PORT }`
 * Like replicas behind one load balancer, every gateway has the same publicUrl and signing keys:
 * a token issued by one is good at all of them, and an ID-JAG redeemed at one redis gateway is a
 * replay at another.
 * Redis's own counters (INFO stats + commandstats, read on a connection of the bench's that
 * sends nothing else) just before and after each measured redis run give the commands per MCP
 * request — the store's keep-alive PING (one a second per gateway) and the bench's INFO apart —
 * and, around the grant runs (fresh single-use ID-JAGs at POST /oauth/token), the commands per
 * grant by name. commandstats also counts what Lua scripts run (an EVALSHA's inner SET…);
 * total_commands_processed only what clients sent: the table shows both.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { REDIS_SERVER_BIN } from '../helpers/redis-server.ts'
import { waitFor } from './procs.ts'
import { freePorts, gatewayMemory, mb, metricSum, scanGatewayLog } from './common.ts'
import { median, perRoundValues, valid } from './report.ts'
import { f2, grantsOk, grown, int, markdown, variantRows } from './feature-tables.ts'
import { TOKEN_TTL_S, authGatewayYaml, gatewayBaseEnv, type FeaturesOptions } from './features-options.ts'
import { CLIENT, basic, generateSigningKeys, grantBody, redeem, startBenchIdp, type BenchIdp } from './tokens.ts'
import type { FeatureRecord, FeaturesKit, GrantRun, Spec } from './features.ts'

export const GOAL_STORE = 0.95

/** counters that are not commands of the gateways' requests: the store's keep-alive and our own INFO */
const KEEP_ALIVE = 'ping'
const OURS = 'info'
const TOTAL = 'total_commands_processed'

const LABEL: Record<string, string> = {
  memory: 'no store (state in the process)',
  redis: 'store.url → redis-server (CPU 0)',
}

export async function runStore (kit: FeaturesKit): Promise<void> {
  const ctx = kit.ctx
  const o = ctx.options
  const P = o.storeProcesses
  kit.log(`\n## features 4: the shared store on the MCP path (c=${o.connections}, ${o.storeRounds} rounds × memory/redis, ${P} gateway process${P === 1 ? '' : 'es'} per variant taking turns by round, ${o.warmup} s warm-up + ${o.duration} s; then grants)`)
  if (!existsSync(REDIS_SERVER_BIN)) throw new Error(`redis-server not found at ${REDIS_SERVER_BIN} (apt-get install redis-server, or set PORTCULLIS_TEST_REDIS_SERVER)`)
  const [redisPort, publicPort, idpPort] = await freePorts(3) as [number, number, number]
  const dir = join(ctx.tmp, 'redis')
  mkdirSync(dir, { recursive: true })
  const redisLog = join(ctx.tmp, 'redis-server.log')
  // as test/helpers/redis-server.ts starts it, pinned with the rest of the load
  const redis = kit.spawn('redis-server', REDIS_SERVER_BIN, [
    '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice',
  ], ctx.loadCpu, redisLog)
  let info: RedisInfo | undefined
  let idp: BenchIdp | undefined
  const stops: Array<() => Promise<unknown>> = []
  try {
    await waitFor('redis-server', async () => readFileSync(redisLog, 'utf8').includes('Ready to accept connections'), 10_000, redis, ctx.group)
    info = await RedisInfo.connect(redisPort)
    const counters = info.counters.bind(info)
    const storeUrl = `redis://127.0.0.1:${redisPort}`
    kit.log(`redis-server pid ${redis.pid} ${storeUrl} (CPU ${ctx.loadCpu}, no persistence), ${(await info.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?'}`)

    // replicas behind one load balancer: one publicUrl, one signing key set, one session key
    const publicUrl = `http://127.0.0.1:${publicPort}`
    const keysFile = join(ctx.tmp, 'store-signing-keys.json')
    generateSigningKeys(ctx.node, ctx.root, keysFile)
    idp = await startBenchIdp(idpPort, publicUrl, `${publicUrl}/mcp/secured`)
    const env = { ...gatewayBaseEnv(), PORTCULLIS_LOG_LEVEL: 'warn', BENCH_CLIENT_SECRET: CLIENT.secret, PORTCULLIS_SESSION_KEY: randomBytes(32).toString('base64url') }
    const variants = [
      { target: 'memory', storeUrl: undefined, what: 'no store key' },
      { target: 'redis', storeUrl, what: `store: { url: ${storeUrl} }` },
    ]
    kit.log(`every gateway: the auth gateway's config, publicUrl ${publicUrl} (shared, as behind a load balancer; not listened on), the same signing keys and PORTCULLIS_SESSION_KEY`)
    const gws = await kit.startTurns('store', variants, P, (port, admin, v) => authGatewayYaml({
      publicUrl, port, admin, upstreamPort: ctx.upstreamPort, keysFile, idpIssuer: idp!.issuer, clientId: CLIENT.id, tokenTtlS: TOKEN_TTL_S, writer: 'test/bench/store.ts', storeUrl: v.storeUrl,
    }), () => env)
    stops.push(() => Promise.all(gws.map((g) => ctx.group.stop(g.proc, 10_000))))
    const url = (g: { port: number }): string => `http://127.0.0.1:${g.port}`
    for (const g of gws.filter((x) => x.target === 'redis')) {
      await waitFor(`${g.name}: portcullis_store_up 1`, async () => metricSum(await (await fetch(`http://127.0.0.1:${g.admin}/metrics`, { signal: AbortSignal.timeout(2_000) })).text(), 'portcullis_store_up') === 1, 15_000, g.proc, ctx.group)
    }
    const first = (target: string, n = 1): typeof gws[number] | undefined => gws.find((g) => g.target === target && g.process === n)

    // the MCP path's token: the real flow, once (at a gateway without the store, so that part runs whatever the grant path does)
    const { token } = await redeem(url(first('memory')!), await idp.idJagViaExchange())
    const one = join(ctx.tmp, 'store-token.txt')
    writeFileSync(one, `${token}\n`)
    kit.log('smoke checks (one POST each, the real-flow token from memory #1):')
    for (const g of gws) kit.log(`  ${await kit.expectResult(`${g.target} #${g.process}`.padEnd(9), `${url(g)}/mcp/secured`, token)}`)

    // the grant path with the store: one ID-JAG at redis #1, then the same at redis #2 (a replay there)
    let grantProblem: string | undefined
    try {
      const [jag] = await idp.mintIdJags(1)
      const before = await counters()
      await redeem(url(first('redis')!), jag!)
      const used = commands(grown(before, await counters()))
      kit.log(`  one grant at redis #1: 200 with an access token; Redis commands: ${formatCommands(used, 1) || 'none'}`)
      const other = first('redis', 2)
      if (other !== undefined) {
        const res = await fetch(`${url(other)}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CLIENT.id, CLIENT.secret) },
          body: grantBody(jag!),
          signal: AbortSignal.timeout(5_000),
        })
        const text = await res.text()
        kit.log(res.status === 400
          ? `  the same ID-JAG at redis #2: 400 (the replay is seen through the shared store) ${text.slice(0, 120)}`
          : `  ⚠ the same ID-JAG at redis #2: ${res.status}, expected 400 (a replay): the jti record is not shared through Redis ${text.slice(0, 200)}`)
      }
    } catch (err) {
      grantProblem = `a grant at the redis gateway failed: ${(err as Error).message}`
      kit.log(`  ✗ ${grantProblem} (the MCP runs go on; the grant runs are skipped)`)
    }

    const specs: Spec[] = gws.map((g) => ({
      set: 'store',
      target: g.target,
      process: g.process,
      url: `${url(g)}/mcp/secured`,
      pid: g.proc.pid,
      script: kit.rotate,
      args: () => [one],
      ...(g.target === 'redis' ? { counters } : {}),
    }))
    await kit.prewarm(specs)
    await kit.inTurns(specs, P, o.storeRounds)
    kit.log()
    kit.log(storeTable(kit.records.filter((r) => r.set === 'store'), o))

    if (grantProblem !== undefined) throw new Error(grantProblem)
    kit.log(`\n### grants with and without the store (information, not a goal): POST /oauth/token, fresh single-use ID-JAGs, ${o.connections} in flight, ${o.rounds} rounds × memory/redis (order reversed every other round, process ((r − 1) mod ${P}) + 1), ${o.warmup} s warm-up + ${o.duration} s`)
    let rate = 50
    for (const v of variants) {
      const g = first(v.target)!
      rate = Math.max(rate, await kit.grantProbe(idp, url(g), g.proc.pid, `store-${v.target}-probe`))
    }
    const files = new Map<string, Awaited<ReturnType<FeaturesKit['grantFiles']>>>()
    for (const v of variants) files.set(v.target, await kit.grantFiles(idp, `store-${v.target}`, rate, o.rounds))
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? variants : [...variants].reverse()
      for (const v of order) {
        if (ctx.signal.aborted) throw new Error('aborted')
        const g = first(v.target, ((round - 1) % P) + 1)!
        await kit.grantRound({ set: 'store', target: v.target, process: g.process }, url(g), g.proc.pid, files.get(v.target)![round - 1]!, round, o.rounds,
          v.target === 'redis' ? counters : undefined)
      }
    }
    kit.log()
    kit.log(storeGrantsTable(kit.grants.filter((g) => g.set === 'store'), o))

    const keyspace = (await info.info('keyspace')).split('\n').filter((l) => l.startsWith('db')).join(' ') || 'no keys'
    const memory = (await info.info('memory')).match(/used_memory_human:(\S+)/)?.[1] ?? '?'
    kit.notes.push(`redis-server after the store part: ${keyspace}, used_memory ${memory}`)
    for (const g of gws) {
      kit.notes.push(`${g.name} gateway RSS: fresh ${mb(g.fresh)}; /metrics: ${await gatewayMemory(g.admin)}`)
      kit.notes.push(scanGatewayLog(g.logFile, g.logStart, `${g.name} gateway log after startup`))
    }
  } finally {
    for (const stop of stops) await stop()
    info?.close()
    await idp?.close()
    await ctx.group.stop(redis, 5_000)
  }
  for (const v of ['memory', 'redis']) {
    kit.profiles(`gateway-store-${v}${P === 1 ? '' : '-1'}`, [[`store ${v} (round 1)`, kit.firstWindow('store', v)]])
  }
}

// ---------------------------------------------------------------------------------------------
// Redis's counters

/**
 * A connection to redis-server that sends INFO and nothing else (RESP by hand: node-redis would
 * add its own commands at connect), so the only commands it adds to the counters are its INFOs.
 */
class RedisInfo {
  readonly #socket: Socket
  #buf = Buffer.alloc(0)
  #pending: { resolve: (text: string) => void; reject: (err: Error) => void } | undefined
  #queue: Promise<unknown> = Promise.resolve()

  private constructor (socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk])
      this.#parse()
    })
    socket.on('error', (err) => { this.#pending?.reject(err) })
    socket.on('close', () => { this.#pending?.reject(new Error('redis-server closed the connection')) })
  }

  static async connect (port: number): Promise<RedisInfo> {
    return await new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.removeListener('error', reject)
        resolve(new RedisInfo(socket))
      })
      socket.once('error', reject)
    })
  }

  /** INFO SECTION… (Redis ≥ 7 takes several), one at a time */
  info (...sections: string[]): Promise<string> {
    const args = ['INFO', ...sections]
    const next = this.#queue.then(() => new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending = undefined; reject(new Error('redis-server did not answer INFO within 5 s')) }, 5_000)
      this.#pending = {
        resolve: (text) => { clearTimeout(timer); resolve(text) },
        reject: (err) => { clearTimeout(timer); reject(err) },
      }
      this.#socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
    }))
    this.#queue = next.catch(() => {})
    return next
  }

  /** calls per command name (commandstats, Lua scripts' inner commands included) and total_commands_processed (what clients sent) */
  async counters (): Promise<Record<string, number>> {
    const text = await this.info('stats', 'commandstats')
    const out: Record<string, number> = {}
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2])
    const total = /^total_commands_processed:(\d+)/m.exec(text)
    if (total === null) throw new Error(`INFO stats without total_commands_processed: ${text.slice(0, 200)}`)
    out[TOTAL] = Number(total[1])
    return out
  }

  close (): void {
    this.#socket.destroy()
  }

  /** one bulk string ($len CRLF bytes CRLF) or an error (-… CRLF) */
  #parse (): void {
    const p = this.#pending
    const eol = this.#buf.indexOf('\r\n')
    if (p === undefined || eol === -1) return
    const head = this.#buf.subarray(0, eol).toString()
    if (head.startsWith('$')) {
      const len = Number(head.slice(1))
      if (this.#buf.length < eol + 2 + len + 2) return
      const body = this.#buf.subarray(eol + 2, eol + 2 + len).toString()
      this.#buf = this.#buf.subarray(eol + 2 + len + 2)
      this.#pending = undefined
      p.resolve(body)
    } else {
      this.#buf = this.#buf.subarray(eol + 2)
      this.#pending = undefined
      p.reject(new Error(`redis-server answered ${head}`))
    }
  }
}

/** What the gateways' requests made Redis run: every command but the keep-alive PING and our INFO (names upper-case). */
function commands (grew: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(grew)) if (k !== TOTAL && k !== KEEP_ALIVE && k !== OURS) out[k.toUpperCase()] = v
  return out
}

/** commands clients sent (total_commands_processed), without PINGs and INFOs */
function sent (grew: Readonly<Record<string, number>>): number {
  return (grew[TOTAL] ?? 0) - (grew[KEEP_ALIVE] ?? 0) - (grew[OURS] ?? 0)
}

const sum = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0)

function formatCommands (c: Readonly<Record<string, number>>, per: number): string {
  return Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${f2(v / per, v / per >= 10 ? 1 : 2)}`).join(', ')
}

interface Tally {
  /** requests (or grants) of the runs with counters */
  readonly n: number
  readonly runs: number
  /** by name, per request, scripts' inner commands included */
  readonly byName: Record<string, number>
  /** the same, summed */
  readonly all: number
  /** commands clients sent per request (without PINGs and INFOs) */
  readonly sent: number
  /** keep-alive PINGs per second, median of the runs */
  readonly pingsPerS: number | undefined
}

function tally (runs: ReadonlyArray<{ n: number; counters: Readonly<Record<string, number>> | undefined; seconds: number }>): Tally | undefined {
  const with_ = runs.filter((r) => r.counters !== undefined)
  if (with_.length === 0) return undefined
  const n = with_.reduce((s, r) => s + r.n, 0)
  const byName: Record<string, number> = {}
  let clients = 0
  for (const r of with_) {
    for (const [k, v] of Object.entries(commands(r.counters!))) byName[k] = (byName[k] ?? 0) + v
    clients += sent(r.counters!)
  }
  const per = Math.max(n, 1)
  for (const k of Object.keys(byName)) byName[k] = byName[k]! / per
  return {
    n,
    runs: with_.length,
    byName,
    all: sum(byName),
    sent: clients / per,
    pingsPerS: median(with_.map((r) => (r.counters![KEEP_ALIVE] ?? 0) / r.seconds)),
  }
}

const seconds = (w: readonly [number, number] | undefined): number => w === undefined ? NaN : (w[1] - w[0]) / 1e6

function mcpTally (records: readonly FeatureRecord[]): Tally | undefined {
  return tally(records.filter((r) => r.target === 'redis' && valid(r)).map((r) => ({ n: r.result.requests, counters: r.counters, seconds: seconds(r.window) })))
}

function grantTally (grants: readonly GrantRun[]): Tally | undefined {
  return tally(grants.filter((g) => g.target === 'redis' && grantsOk(g)).map((g) => ({ n: g.ok, counters: g.counters, seconds: seconds(g.window) })))
}

function perRequestText (t: Tally | undefined, what: string): string {
  if (t === undefined) return 'n/a'
  const names = formatCommands(t.byName, 1)
  const nested = t.all - t.sent > 1e-9 ? `; sent by the gateway: ${f2(t.sent, 3)}, the rest run inside Lua scripts` : ''
  return `${f2(t.all, t.all === 0 ? 0 : 3)}${names === '' ? '' : ` (${names}${nested})`} in ${t.n} ${what} over ${t.runs} run(s)`
}

function pingText (t: Tally | undefined, P: number): string {
  return t?.pingsPerS === undefined ? '?' : `${f2(t.pingsPerS, 1)}/s from ${P} gateway${P === 1 ? '' : 's'} with the store (≈ ${f2(t.pingsPerS / P, 1)}/s each), not per request`
}

// ---------------------------------------------------------------------------------------------
// tables and the summary

function storeTable (records: readonly FeatureRecord[], o: FeaturesOptions): string {
  const rs = variantRows(records, ['memory', 'redis'], 'memory')
  const t = mcpTally(records)
  const ratios = perRoundValues(records, 'redis', 'memory', (a, b) => a.result.rps / b.result.rps)
  const head = ['store', 'req/s', '× memory', '× memory, quiet rounds', 'p50 ms', 'p99 ms', '+p50 vs memory ms', '+p99 vs memory ms', 'gateway CPU µs/req', '+CPU µs/req vs memory',
    'Redis commands per request', 'RSS idle→load MB', 'CPU1 other % (noise)', 'valid runs', 'errors']
  const lines = rs.map((r) => [
    LABEL[r.target] ?? r.target,
    int(r.rps), f2(r.xBase), r.target === 'memory' ? '' : r.xBaseQuiet === undefined ? 'none quiet' : `${f2(r.xBaseQuiet)} (${r.quietRounds})`,
    f2(r.p50, 3), f2(r.p99, 2), f2(r.addP50, 3, true), f2(r.addP99, 2, true), int(r.cpuUs), int(r.addCpuUs, true),
    r.target === 'redis' ? (t === undefined ? '?' : `${f2(t.all, t.all === 0 ? 0 : 3)} in ${t.n}`) : '',
    r.rssIdle === undefined ? '' : `${Math.round(r.rssIdle / 1048576)}→${Math.round((r.rssLoad ?? 0) / 1048576)}`,
    r.noise === undefined ? '' : r.noise.toFixed(0), `${r.validRuns}/${r.runs}`, r.errors,
  ])
  return [
    markdown(`the shared store on the MCP path: auth required, one cached token, c=${o.connections} (medians of ${o.storeRounds} rounds, ${o.storeProcesses} processes per variant taking turns by round; ratios and added values: median of per-round values)`, head, lines),
    '',
    `redis/memory req/s per round: ${ratios.map((x) => x.toFixed(3)).join(' ') || 'none valid'}; median ${f2(median(ratios), 3)} (goal ≥ ${GOAL_STORE.toFixed(2)})`,
    `Redis commands per MCP request: ${perRequestText(t, 'requests')}`,
    `store keep-alive PINGs: ${pingText(t, o.storeProcesses)}`,
  ].join('\n')
}

function storeGrantsTable (runs: readonly GrantRun[], o: FeaturesOptions): string {
  const head = ['round', 'store', 'grants/s', 'p50 ms', 'p99 ms', 'gateway CPU µs/grant', 'responses', 'all 200 with a token', 'Redis commands per grant', 'CPU1 other % (noise)']
  const lines = runs.map((g) => {
    const c = g.counters === undefined || g.ok === 0 ? '' : formatCommands(commands(g.counters), g.ok) || '0'
    return [String(g.round), `${g.target ?? ''} #${g.process ?? 1}`, int(g.rps), f2(g.p50), f2(g.p99), int(g.gatewayCpuUs),
      `${g.sent}${g.ranOut ? ' (all ID-JAGs used: count-bound)' : ''}`, grantsOk(g) ? 'yes' : `⚠ no: ${JSON.stringify(g.statuses)}`, c,
      g.otherOnProxyCpu === undefined ? '' : g.otherOnProxyCpu.toFixed(0)]
  })
  for (const target of ['memory', 'redis']) {
    const ok = runs.filter((g) => g.target === target && grantsOk(g))
    lines.push(['median', target, int(median(ok.map((g) => g.rps))), f2(median(ok.map((g) => g.p50))), f2(median(ok.map((g) => g.p99))), int(median(ok.map((g) => g.gatewayCpuUs ?? NaN))),
      `${ok.length}/${runs.filter((g) => g.target === target).length} rounds valid`, '', '', ''])
  }
  const t = grantTally(runs)
  return [
    markdown(`token endpoint with and without the store, ${o.connections} in flight (undici Pool, CPU 0), ${o.duration} s per round`, head, lines),
    '',
    `Redis commands per grant: ${perRequestText(t, 'grants')}`,
    `store keep-alive PINGs during the grant runs: ${pingText(t, o.storeProcesses)}`,
  ].join('\n')
}

/** The summary's part and the goal line, or undefined when the store part made no run. */
export function storeSummary (records: readonly FeatureRecord[], grants: readonly GrantRun[], o: FeaturesOptions): { part: string; goal: string } | undefined {
  if (records.length === 0) return undefined
  const redis = variantRows(records, ['memory', 'redis'], 'memory')[1]
  const ratio = redis?.xBase
  const t = mcpTally(records)
  const g = grantTally(grants)
  const okRps = (target: string): number | undefined => median(grants.filter((x) => x.target === target && grantsOk(x)).map((x) => x.rps))
  const okP = (target: string, k: 'p50' | 'p99'): number | undefined => median(grants.filter((x) => x.target === target && grantsOk(x)).map((x) => x[k]))
  const verdict = ratio === undefined ? 'n/a' : `${ratio.toFixed(3)} (goal ≥ ${GOAL_STORE.toFixed(2)}: ${ratio >= GOAL_STORE ? 'PASS' : 'FAIL'})`
  const perGrant = g === undefined ? 'n/a' : `${f2(g.all, 2)}${Object.keys(g.byName).length === 0 ? '' : ` (${formatCommands(g.byName, 1)})`}`
  const part = `store.url set/not, MCP path (cached token) ${ratio === undefined ? 'n/a' : ratio.toFixed(3)}, ${f2(redis?.addCpuUs, 0, true)} µs CPU/req, ${f2(redis?.addP50, 3, true)} ms p50; ` +
    `grants/s with the store ${int(okRps('redis'))} (p50 ${f2(okP('redis', 'p50'))} ms, p99 ${f2(okP('redis', 'p99'))} ms) vs ${int(okRps('memory'))} without`
  const goal = `GOAL (design §7) MCP path with store.url / without, req/s at c=${o.connections}: ${verdict}` +
    ` | Redis commands per MCP request: ${t === undefined ? 'n/a' : f2(t.all, t.all === 0 ? 0 : 3)} (0 expected; keep-alive PINGs apart: ${pingText(t, o.storeProcesses)})` +
    ` | per grant: ${perGrant}`
  return { part, goal }
}
