import type { FastifyBaseLogger } from 'fastify'
import { Agent, fetch as undiciFetch } from 'undici'
import type { Sessions } from '../session/sessions.ts'
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import type { Sdk } from './bridge/sdk.ts'
import type { Config, ServerConfig, SseUpstream, StdioUpstream } from '../config/types.ts'
import type { Principal } from '../authn/principal.ts'
import { BridgeUpstream } from './bridge/bridge-upstream.ts'
import { buildUpstreamRequestHeaders } from './headers.ts'
import { SessionTable } from './session-table.ts'
import { StreamableHttpUpstream } from './streamable-http.ts'
import type { Upstream } from './upstream.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { UpstreamLimits } from './upstream-limits.ts'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'

/** Defaults for bridged legacy HTTP+SSE upstreams (the config gives them connect/headers timeouts only). */
const SSE_BRIDGE = { maxSessions: 256, maxSessionsPerPrincipal: 8, idleTimeoutMs: 600_000, requestTimeoutMs: 120_000 }

/** Connections of the agent towards each other replica: each forwarded stream holds one. */
const PEER_CONNECTIONS = 1_024

interface Entry {
  readonly upstream: Upstream
  /** the upstream config it was built from, to tell on reload whether it can be kept */
  readonly key: string
}

/**
 * One Upstream per configured server, sharing this replica's session bookkeeping and one HTTP
 * agent towards the other replicas. Built again on every config reload from the previous
 * registry: an upstream whose config did not change is kept as it is (its pool, open streams and
 * bridged sessions live on); the others are retired gracefully.
 */
export class UpstreamRegistry {
  /** sessions opened through this replica, for the portcullis_sessions gauge */
  readonly localSessions: SessionTable
  readonly sessions: Sessions
  /** config `limits`, shared by every upstream and kept across reloads */
  readonly limits: UpstreamLimits
  readonly #entries = new Map<string, Entry>()
  /** towards the replicas that own bridged sessions (one pool per replica) */
  readonly #peerAgent: Agent
  readonly #metrics: Metrics

  constructor (config: Config, log: FastifyBaseLogger, metrics: Metrics, sessions: Sessions, previous?: UpstreamRegistry) {
    this.#metrics = metrics
    this.sessions = sessions
    this.localSessions = previous?.localSessions ?? new SessionTable()
    this.limits = previous?.limits ?? new UpstreamLimits(config.limits, PEER_CONNECTIONS)
    this.limits.update(config.limits)
    // Each forwarded stream holds a connection; a replica that does not answer is gone.
    this.#peerAgent = previous === undefined ? new Agent({ connections: PEER_CONNECTIONS, pipelining: 1, connect: { timeout: 2_000 }, headersTimeout: 30_000, bodyTimeout: 0, keepAliveTimeout: 4_000 }) : previous.#peerAgent
    for (const server of Object.values(config.servers)) {
      const key = JSON.stringify(server.upstream)
      const kept = previous === undefined ? undefined : previous.#entries.get(server.name)
      const upstream = kept !== undefined && kept.key === key ? kept.upstream : this.#create(server, log.child({ server: server.name }))
      this.#entries.set(server.name, { upstream, key })
    }
  }

  get (server: string): Upstream | undefined {
    return this.#entries.get(server)?.upstream
  }

  /** Upstreams of `previous` that this registry did not keep. */
  retiredFrom (previous: UpstreamRegistry): Upstream[] {
    const kept = new Set([...this.#entries.values()].map((e) => e.upstream))
    return [...previous.#entries.values()].map((e) => e.upstream).filter((u) => !kept.has(u))
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.#entries.values()].map((e) => e.upstream.close()))
    await this.#peerAgent.destroy()
  }

  #create (server: ServerConfig, log: FastifyBaseLogger): Upstream {
    const upstream = server.upstream
    switch (upstream.transport) {
      case 'streamable-http':
        return new StreamableHttpUpstream(server, upstream, this.localSessions, this.sessions, this.limits, log, this.#metrics)
      case 'stdio':
        return new BridgeUpstream(server, {
          transport: 'stdio',
          maxSessions: upstream.maxSessions,
          maxSessionsPerPrincipal: upstream.maxSessionsPerPrincipal,
          idleTimeoutMs: upstream.idleTimeoutMs,
          requestTimeoutMs: upstream.requestTimeoutMs,
          startTimeoutMs: 10_000,
          connect: (sdk) => spawnStdio(sdk, upstream, log),
        }, this.sessions, this.#peerAgent, this.limits, log, this.#metrics)
      case 'sse': {
        const agent = sseAgent(upstream)
        return new BridgeUpstream(server, {
          transport: 'sse',
          ...SSE_BRIDGE,
          startTimeoutMs: upstream.connectTimeoutMs + upstream.headersTimeoutMs,
          connect: (sdk, principal) => connectSse(sdk, upstream, principal, agent),
          dispose: () => agent.destroy(),
        }, this.sessions, this.#peerAgent, this.limits, log, this.#metrics)
      }
    }
  }
}

/** A child process per client session; its stderr goes to the log, line by line. */
function spawnStdio ({ StdioClientTransport, getDefaultEnvironment }: Sdk, config: StdioUpstream, log: FastifyBaseLogger): StdioClientTransport {
  const transport = new StdioClientTransport({
    command: config.command,
    args: [...config.args],
    env: { ...getDefaultEnvironment(), ...config.env },
    ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    stderr: 'pipe',
  })
  let pending = ''
  transport.stderr?.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (line.trim() !== '') log.warn({ pid: transport.pid, stderr: line.slice(0, 2000) }, 'upstream stderr')
  })
  return transport
}

/**
 * The HTTP agent of a legacy HTTP+SSE upstream, one per upstream: the configured TLS check and
 * timeouts, as for Streamable HTTP upstreams (not the global fetch's defaults). No body timeout:
 * the event stream is quiet for as long as the upstream has nothing to say.
 */
function sseAgent (config: SseUpstream): Agent {
  return new Agent({
    connect: { timeout: config.connectTimeoutMs, rejectUnauthorized: config.tlsVerify },
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
  })
}

/** A legacy HTTP+SSE connection per client session, with the configured upstream credentials, over the upstream's agent. */
function connectSse ({ SSEClientTransport }: Sdk, config: SseUpstream, principal: Principal | null, agent: Agent): SSEClientTransport {
  const headers = buildUpstreamRequestHeaders({}, config.headers, principal)
  const fetch = ((url, init) => undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: agent })) as FetchLike
  return new SSEClientTransport(new URL(config.url), { requestInit: { headers }, fetch })
}
