/**
 * Options of the features section of `npm run bench` (features.ts), kept apart so run.ts can read
 * them and estimate the time without loading features.ts (which imports src/).
 */
import { join } from 'node:path'
import { gatewayImageEnv, intEnv } from './common.ts'

/** lifetime of the bench's access tokens (the auth and store gateways' accessTokenTtlSeconds) */
export const TOKEN_TTL_S = 3600

/** The trace sampler deploy/kubernetes/overlays/prod ships (test/deploy/manifests.test.ts checks they agree). */
export const PROD_SAMPLER = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' } as const

/** The OTLP settings of every traced gateway of the telemetry benchmarks (features.ts, instructions.ts); the sampler is added per variant. */
export function otlpEnv (sinkPort: number): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'portcullis-bench' }
}

/** The environment a benchmarked gateway starts from: this process's, without telemetry settings (each variant adds its own). */
export function gatewayBaseEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_') && k !== 'PORTCULLIS_LOG_LEVEL') env[k] = v
  return { ...env, ...gatewayImageEnv(join(import.meta.dirname, '../..')) }
}

/** The telemetry benchmarks' gateway: one server `open` on the mock upstream, `auth: none`, every tool allowed. */
export function telemetryGatewayYaml (port: number, admin: number, upstreamPort: number, writer: string): string {
  return `# written by ${writer}
publicUrl: http://127.0.0.1:${port}
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${admin} }
servers:
  open:
    upstream: { url: http://127.0.0.1:${upstreamPort}/mcp }
    auth: none
    tools:
      - allow: ["*"]
`
}

/**
 * The gateway of the auth and store benchmarks: `open` (auth: none) and `secured` (auth required,
 * scope tools.read) on the mock upstream, our own authorization server trusting the bench's dev
 * IdP, and with `storeUrl` the shared store (design §7).
 */
export function authGatewayYaml (o: {
  readonly publicUrl: string
  readonly port: number
  readonly admin: number
  readonly upstreamPort: number
  readonly keysFile: string
  readonly idpIssuer: string
  readonly clientId: string
  readonly tokenTtlS: number
  readonly writer: string
  readonly storeUrl?: string | undefined
}): string {
  const upstream = `http://127.0.0.1:${o.upstreamPort}/mcp`
  return `# written by ${o.writer}
publicUrl: ${o.publicUrl}
listen: { host: 127.0.0.1, port: ${o.port} }
admin: { host: 127.0.0.1, port: ${o.admin} }
${o.storeUrl === undefined ? '' : `store: { url: ${o.storeUrl} }\n`}authorization:
  signingKeys: ${o.keysFile}
  accessTokenTtlSeconds: ${o.tokenTtlS}
  clients:
    - { clientId: ${o.clientId}, auth: client_secret_basic, secret: "\${BENCH_CLIENT_SECRET}" }
  identityProviders:
    - issuer: ${o.idpIssuer}
      algorithms: [ES256]
      claims: { groups: groups, email: email }
servers:
  open:
    upstream: { url: ${upstream} }
    auth: none
    tools:
      - allow: ["*"]
  secured:
    upstream: { url: ${upstream} }
    scopes: [tools.read]
    tools:
      - allow: ["*"]
`
}

export interface FeaturesOptions {
  readonly rounds: number
  readonly duration: number
  readonly warmup: number
  readonly prewarm: number
  readonly connections: number
  readonly sections: ReadonlySet<string>
  /** BENCH_FEATURES_PROFILE=1: the gateways run with --cpu-prof; each variant's first measured run is summarised */
  readonly profile: boolean
  /** BENCH_FEATURES_TELEMETRY_SPLIT=1: also "audit line only", "spans only at the shipped ratio" and "spans only, always_on" gateways */
  readonly telemetrySplit: boolean
  /**
   * BENCH_FEATURES_TELEMETRY_PROCESSES (3): gateway processes per telemetry variant, one of each
   * measured per round in turn. Two processes of the same build and config differ by up to ~15 %
   * in throughput on this VM for their whole life, more than the effect measured: with one process
   * per variant, the ratio is as much the draw of processes as the telemetry.
   */
  readonly telemetryProcesses: number
  /** rounds of the telemetry part: BENCH_FEATURES_TELEMETRY_ROUNDS, default max(rounds, 2 × processes) */
  readonly telemetryRounds: number
  /** BENCH_FEATURES_STORE_PROCESSES (3): gateway processes per store variant (memory, redis), taking turns as the telemetry ones */
  readonly storeProcesses: number
  /** rounds of the store part: BENCH_FEATURES_STORE_ROUNDS, default max(rounds, 2 × processes) */
  readonly storeRounds: number
}

/** The parts of the features section, in the order they run (the default: all). */
export const SECTIONS: readonly string[] = ['auth', 'tokens', 'telemetry', 'store']

export function featuresOptions (env: NodeJS.ProcessEnv, fallback: { rounds: number }): FeaturesOptions {
  const sections = new Set((env.BENCH_FEATURES_SECTIONS ?? SECTIONS.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== ''))
  for (const s of sections) if (!SECTIONS.includes(s)) throw new Error(`BENCH_FEATURES_SECTIONS: unknown section ${s} (${SECTIONS.join(', ')})`)
  const rounds = intEnv(env, 'BENCH_FEATURES_ROUNDS', fallback.rounds, 1)
  const telemetryProcesses = intEnv(env, 'BENCH_FEATURES_TELEMETRY_PROCESSES', 3, 1)
  const storeProcesses = intEnv(env, 'BENCH_FEATURES_STORE_PROCESSES', 3, 1)
  return {
    rounds,
    duration: intEnv(env, 'BENCH_FEATURES_DURATION', 6, 1),
    warmup: intEnv(env, 'BENCH_FEATURES_WARMUP', 2, 0),
    prewarm: intEnv(env, 'BENCH_FEATURES_PREWARM', 5, 0),
    connections: intEnv(env, 'BENCH_FEATURES_CONNECTIONS', 10, 1),
    sections,
    profile: env.BENCH_FEATURES_PROFILE === '1',
    telemetrySplit: env.BENCH_FEATURES_TELEMETRY_SPLIT === '1',
    telemetryProcesses,
    telemetryRounds: intEnv(env, 'BENCH_FEATURES_TELEMETRY_ROUNDS', Math.max(rounds, 2 * telemetryProcesses), 1),
    storeProcesses,
    storeRounds: intEnv(env, 'BENCH_FEATURES_STORE_ROUNDS', Math.max(rounds, 2 * storeProcesses), 1),
  }
}

/** Seconds the section should take (for run.ts's estimate and watchdog). */
export function featuresEstimateS (o: FeaturesOptions): number {
  const run = o.warmup + o.duration + 1
  let s = 0
  if (o.sections.has('auth')) s += 15 + o.prewarm + 3 + 10 + o.rounds * 3 * run
  if (o.sections.has('tokens')) s += 8 + o.prewarm + o.rounds * (run + 2)
  const tv = o.telemetrySplit ? 6 : 3
  if (o.sections.has('telemetry')) s += 16 + tv * o.telemetryProcesses * (o.prewarm + 3) + o.telemetryRounds * tv * run
  // redis-server, keys, 2 × P gateways, the MCP rounds, then per variant a grant probe and its grant rounds
  if (o.sections.has('store')) s += 20 + 2 * o.storeProcesses * (o.prewarm + 3) + o.storeRounds * 2 * run + 2 * (Math.max(2, o.prewarm) + 5) + o.rounds * 2 * (run + 4)
  return s
}
