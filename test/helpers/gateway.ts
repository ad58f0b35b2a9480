import { Writable } from 'node:stream'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway, type GatewayDeps } from '../../src/gateway.ts'

export interface StartedGateway {
  readonly gateway: Gateway
  readonly url: string
  readonly adminUrl: string
  /** every log line the gateway wrote, parsed */
  readonly logs: Record<string, unknown>[]
  /** every log line, raw, for "no secret anywhere" checks */
  readonly rawLogs: string[]
  mcpUrl (server: string): string
  close (): Promise<void>
}

/**
 * Build and start the real gateway from YAML, on free ports, logging to memory.
 * The YAML's `listen`/`admin` are set to 127.0.0.1 and a free port (or `opts.port`, for tests whose
 * publicUrl must name the real port).
 */
export async function startGateway (yaml: string, env: Record<string, string> = {}, opts: { port?: number, deps?: GatewayDeps } = {}): Promise<StartedGateway> {
  const config = parseConfig(`${yaml}
listen: { host: 127.0.0.1, port: ${opts.port ?? 0} }
admin: { host: 127.0.0.1, port: 0 }
`, { source: '<test>', env })
  const rawLogs: string[] = []
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        rawLogs.push(line)
        try { logs.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not JSON */ }
      }
      cb()
    },
  })
  const gateway = buildGateway(config, { ...opts.deps, logger: { level: 'debug', stream } })
  const { url, adminUrl } = await gateway.listen()
  return {
    gateway,
    url,
    adminUrl,
    logs,
    rawLogs,
    mcpUrl: (server) => `${url}/mcp/${server}`,
    close: () => gateway.close(),
  }
}
