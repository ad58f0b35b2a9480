import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway, type GatewayDeps } from '../../src/gateway.ts'
import { captureLogs } from './log-capture.ts'

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
 * publicUrl must name the real port: wrap the start in withFreePorts, ports.ts).
 */
export async function startGateway (yaml: string, env: Record<string, string> = {}, opts: { port?: number, deps?: GatewayDeps } = {}): Promise<StartedGateway> {
  const config = parseConfig(`${yaml}
listen: { host: 127.0.0.1, port: ${opts.port ?? 0} }
admin: { host: 127.0.0.1, port: 0 }
`, { source: '<test>', env })
  const { stream, logs, rawLogs } = captureLogs()
  const gateway = buildGateway(config, { ...opts.deps, logger: { level: 'debug', stream } })
  const { url, adminUrl } = await gateway.listen().catch(async (err: unknown) => {
    // e.g. opts.port taken meanwhile: release what did start, so the caller can retry (ports.ts)
    await gateway.close().catch(() => {})
    throw err
  })
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
