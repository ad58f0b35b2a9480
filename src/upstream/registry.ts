import type { FastifyBaseLogger } from 'fastify'
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import type { Config, ServerConfig, SseUpstream, StdioUpstream } from '../config/types.ts'
import type { Principal } from '../authn/principal.ts'
import { BridgeUpstream } from './bridge/bridge-upstream.ts'
import { buildUpstreamRequestHeaders } from './headers.ts'
import { SessionTable } from './session-table.ts'
import { StreamableHttpUpstream } from './streamable-http.ts'
import type { Upstream } from './upstream.ts'

/** Defaults for bridged legacy HTTP+SSE upstreams (the config gives them connect/headers timeouts only). */
const SSE_BRIDGE = { maxSessions: 256, idleTimeoutMs: 600_000, requestTimeoutMs: 120_000 }

/** One Upstream per configured server, sharing one session table. */
export class UpstreamRegistry {
  readonly sessions = new SessionTable()
  readonly #upstreams = new Map<string, Upstream>()

  constructor (config: Config, log: FastifyBaseLogger) {
    for (const server of Object.values(config.servers)) {
      this.#upstreams.set(server.name, this.#create(server, log.child({ server: server.name })))
    }
  }

  get (server: string): Upstream | undefined {
    return this.#upstreams.get(server)
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.#upstreams.values()].map((u) => u.close()))
  }

  #create (server: ServerConfig, log: FastifyBaseLogger): Upstream {
    const upstream = server.upstream
    switch (upstream.transport) {
      case 'streamable-http':
        return new StreamableHttpUpstream(server, upstream, this.sessions, log)
      case 'stdio':
        return new BridgeUpstream(server, {
          transport: 'stdio',
          maxSessions: upstream.maxSessions,
          idleTimeoutMs: upstream.idleTimeoutMs,
          requestTimeoutMs: upstream.requestTimeoutMs,
          startTimeoutMs: 10_000,
          connect: () => spawnStdio(upstream, log),
        }, this.sessions, log)
      case 'sse':
        return new BridgeUpstream(server, {
          transport: 'sse',
          ...SSE_BRIDGE,
          startTimeoutMs: upstream.connectTimeoutMs + upstream.headersTimeoutMs,
          connect: (principal) => connectSse(upstream, principal),
        }, this.sessions, log)
    }
  }
}

/** A child process per client session; its stderr goes to the log, line by line. */
function spawnStdio (config: StdioUpstream, log: FastifyBaseLogger): StdioClientTransport {
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

/** A legacy HTTP+SSE connection per client session, with the configured upstream credentials. */
function connectSse (config: SseUpstream, principal: Principal | null): SSEClientTransport {
  const headers = buildUpstreamRequestHeaders({}, config.headers, principal)
  return new SSEClientTransport(new URL(config.url), { requestInit: { headers } })
}
