/**
 * `npm run bench:instructions`: what telemetry costs the gateway in instructions per request,
 * counted by callgrind (valgrind), which counts the same for the same code and input whatever else
 * the VM is doing. Throughput ratios on this VM move by ±10 % between runs (README, Benchmark), so
 * a change of a few per cent to the telemetry path only shows here.
 *
 * Each variant is one gateway (the telemetry section's config: `auth: none`, every tool allowed)
 * under `valgrind --tool=callgrind --instr-atstart=no`, pinned to CPU 1, its stdout in a pipe read
 * on CPU 0 (as in features.ts); wrk -t1 -c10 and the upstream and OTLP sink on CPU 0. After
 * INSTR_WARMUP seconds of uncounted load (the JIT settles; counting starts with
 * `callgrind_control --instr=on`), the instructions of every thread of the gateway are counted over
 * INSTR_DURATION seconds of load and divided by the requests wrk completed. User-space only: the
 * kernel's side (syscalls, page faults) and how fast the instructions run (caches) are not in it.
 *
 *   off     → PORTCULLIS_LOG_LEVEL=warn, no OTEL_*
 *   on      → the audit line + OTLP http/protobuf spans, parentbased_traceidratio 0.1 (the prod overlay)
 *   audit   → the audit line only          traces → the spans only, ratio 0.1
 *
 * Then, per variant, the functions whose instructions per request differ most from `off` (the
 * gateway runs with --perf-basic-prof so JIT-compiled JavaScript has names): where the cost is.
 * Two processes of the same variant differ by a few per cent (JIT timing); the per-function
 * differences of a change of a few thousand instructions show clearly.
 *
 * Environment: INSTR_VARIANTS=off,on,audit,traces  INSTR_WARMUP=40  INSTR_DURATION=30  INSTR_TOP=25
 * (each variant takes ~30 s to start under valgrind + warm-up + duration). Needs valgrind
 * (`apt-get install valgrind`) and wrk.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ProcessGroup, waitFor } from './procs.ts'
import { freePorts, httpOk } from './common.ts'
import { runWrk } from './wrk.ts'
import { PROD_SAMPLER, gatewayBaseEnv, otlpEnv, telemetryGatewayYaml } from './features-options.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('./', import.meta.url))
const LOAD_CPU = '0'
const GATEWAY_CPU = '1'

const variants = (process.env.INSTR_VARIANTS ?? 'off,on,audit,traces').split(',').map((v) => v.trim())
const warmupS = Number(process.env.INSTR_WARMUP ?? 40)
const durationS = Number(process.env.INSTR_DURATION ?? 30)
const top = Number(process.env.INSTR_TOP ?? 25)
for (const v of variants) if (!['off', 'on', 'audit', 'traces'].includes(v)) throw new Error(`INSTR_VARIANTS: unknown variant ${v} (off, on, audit, traces)`)
for (const tool of ['valgrind', 'callgrind_control', 'wrk']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
  } catch {
    throw new Error(`${tool} not found: apt-get install valgrind wrk`)
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-instr-'))
const group = new ProcessGroup()
group.installCleanup((signal) => { console.log(`\n${signal}: stopping`) }, () => { rmSync(tmp, { recursive: true, force: true }) })
const [upstreamPort, sinkPort] = await freePorts(2) as [number, number]
const upstream = group.spawn('upstream', process.execPath, [join(HERE, 'upstream.ts'), String(upstreamPort)], { cpu: LOAD_CPU, logFile: join(tmp, 'upstream.log') })
const sink = group.spawn('otlp-sink', process.execPath, [join(HERE, 'otlp-sink.ts'), String(sinkPort)], { cpu: LOAD_CPU, logFile: join(tmp, 'otlp-sink.log') })
await waitFor('the upstream', () => httpOk(`http://127.0.0.1:${upstreamPort}/stats`), 15_000, upstream, group)
await waitFor('the OTLP sink', () => httpOk(`http://127.0.0.1:${sinkPort}/stats`), 15_000, sink, group)

const otlp = { ...otlpEnv(sinkPort), ...PROD_SAMPLER }
const envOf: Record<string, Record<string, string>> = {
  off: { PORTCULLIS_LOG_LEVEL: 'warn' },
  on: { PORTCULLIS_LOG_LEVEL: 'info', ...otlp },
  audit: { PORTCULLIS_LOG_LEVEL: 'info' },
  traces: { PORTCULLIS_LOG_LEVEL: 'warn', ...otlp },
}

console.log(`# instructions per request (callgrind; gateway on CPU ${GATEWAY_CPU}, wrk -c10 + upstream + OTLP sink on CPU ${LOAD_CPU}; ${warmupS} s uncounted warm-up, ${durationS} s counted per variant)`)
const results: Array<{ variant: string; requests: number; perRequest: number; functions: Map<string, number> }> = []
for (const variant of variants) {
  const [port, admin] = await freePorts(2) as [number, number]
  const config = join(tmp, `${variant}.yaml`)
  writeFileSync(config, telemetryGatewayYaml(port, admin, upstreamPort, 'test/bench/instructions.ts'))
  const out = join(tmp, `callgrind-${variant}`)
  const gateway = group.spawn(`gateway-${variant}`, 'valgrind', ['--tool=callgrind', '--smc-check=all-non-file', '--instr-atstart=no', `--callgrind-out-file=${out}.%p`,
    process.execPath, '--perf-basic-prof', join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], { cpu: GATEWAY_CPU, cwd: ROOT, env: { ...gatewayBaseEnv(), ...envOf[variant] }, logFile: join(tmp, `${variant}.log`), logCollectorCpu: LOAD_CPU })
  await waitFor(`the ${variant} gateway under valgrind (/readyz)`, () => httpOk(`http://127.0.0.1:${admin}/readyz`), 180_000, gateway, group)
  const load = (seconds: number): ReturnType<typeof runWrk> => runWrk({ wrk: 'wrk', url: `http://127.0.0.1:${port}/mcp/open`, connections: 10, durationS: seconds, script: join(HERE, 'post.lua'), cpu: LOAD_CPU })
  await load(warmupS)
  const control = (...args: string[]): void => { execFileSync('callgrind_control', [...args, String(gateway.pid)], { stdio: 'ignore' }) }
  control('--instr=on')
  control('--zero')
  const counted = await load(durationS)
  control('--dump')
  await group.stop(gateway, 30_000)
  const dump = readdirSync(tmp).filter((f) => f.startsWith(`callgrind-${variant}.`) && f.endsWith('.1'))[0]
  const totals = dump === undefined ? undefined : /^totals: (\d+)/m.exec(readFileSync(join(tmp, dump), 'utf8'))
  if (totals === null || totals === undefined) throw new Error(`no callgrind dump for ${variant} in ${tmp}`)
  // Under valgrind a request now and then outlasts wrk's 2 s timeout (a GC, a compilation): the
  // gateway did its work but wrk does not count it, which overstates the rest by that fraction.
  if (counted.errors > 0) console.log(`⚠ ${variant}: ${counted.errors} of ${counted.requests + counted.errors} requests not counted by wrk (${counted.socket.timeout} timeouts, ${counted.non2xx} non-2xx, ${counted.errors - counted.socket.timeout - counted.non2xx} other socket errors)`)
  const perRequest = Number(totals[1]) / counted.requests
  results.push({ variant, requests: counted.requests, perRequest, functions: functionCosts(join(tmp, dump!), gateway.pid, counted.requests) })
  rmSync(`/tmp/perf-${gateway.pid}.map`, { force: true })
  console.log(`${variant.padEnd(7)} ${String(counted.requests).padStart(6)} requests counted, ${Math.round(perRequest).toLocaleString('en')} instructions per request`)
}
const off = results.find((r) => r.variant === 'off')
console.log('\n| variant | requests counted | instructions / request | × off | + vs off |\n|---|---|---|---|---|')
for (const r of results) {
  console.log(`| ${r.variant} | ${r.requests} | ${Math.round(r.perRequest).toLocaleString('en')} | ${off === undefined ? '' : (r.perRequest / off.perRequest).toFixed(3)} | ${off === undefined || r === off ? '' : `+${Math.round(r.perRequest - off.perRequest).toLocaleString('en')}`} |`)
}
for (const r of results) {
  if (off === undefined || r === off) continue
  const names = new Set([...off.functions.keys(), ...r.functions.keys()])
  const rows = [...names].map((name) => ({ name, base: off.functions.get(name) ?? 0, cost: r.functions.get(name) ?? 0 }))
    .sort((a, b) => Math.abs(b.cost - b.base) - Math.abs(a.cost - a.base)).slice(0, top)
  console.log(`\n${r.variant} vs off: the ${top} functions whose instructions per request differ most (self cost; JavaScript as --perf-basic-prof names it)\n`)
  console.log('| + vs off | off | ' + r.variant + ' | function |\n|---|---|---|---|')
  for (const row of rows) console.log(`| ${Math.round(row.cost - row.base)} | ${Math.round(row.base)} | ${Math.round(row.cost)} | ${row.name.replaceAll('|', '\\|')} |`)
}
await group.stopAll()
rmSync(tmp, { recursive: true, force: true })

/** Self instructions per request by function, JIT code named from the process's perf map. */
function functionCosts (dump: string, pid: number, requests: number): Map<string, number> {
  let map: Array<readonly [number, number, string]> = []
  try {
    map = readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
      const [start = '0', size = '0', ...name] = l.split(' ')
      return [parseInt(start, 16), parseInt(size, 16), name.join(' ')] as const
    }).sort((a, b) => a[0] - b[0])
  } catch { /* no map: JIT code stays an address */ }
  const named = (address: number): string | undefined => {
    let lo = 0
    let hi = map.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (map[mid]![0] <= address) { found = mid; lo = mid + 1 } else hi = mid - 1
    }
    const entry = found === -1 ? undefined : map[found]
    return entry !== undefined && address < entry[0] + entry[1] ? entry[2].replace(/^(JS|Builtin|Function|LazyCompile):[*~^+]?/, '') : undefined
  }
  const costs = new Map<string, number>()
  const text = execFileSync('callgrind_annotate', ['--threshold=100', dump], { maxBuffer: 1 << 28 }).toString()
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*?)(?:\s+\[[^\]]*\])?$/.exec(line)
    if (m === null || m[2]!.includes('PROGRAM TOTALS')) continue
    const address = /^\?\?\?:0x([0-9a-f]+)/.exec(m[2]!)
    const name = (address === null ? m[2]!.replace(/^\?\?\?:/, '') : named(parseInt(address[1]!, 16)) ?? 'JIT code (unnamed)').slice(0, 140)
    costs.set(name, (costs.get(name) ?? 0) + Number(m[1]!.replaceAll(',', '')) / requests)
  }
  return costs
}
