import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { parseConfig } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import type { CliIo } from './io.ts'

const require = createRequire(import.meta.url)

/**
 * `portcullis demo` (`npm start`): a real MCP server (server-everything, Streamable HTTP) and
 * the gateway in front of it, on 127.0.0.1, then one command to paste that calls a tool
 * through the gateway.
 * TODO(ema): add the dev IdP and make the demo server `auth: required`.
 */
export async function runDemo (_argv: string[], io: CliIo): Promise<number> {
  const gatewayPort = Number(io.env.PORTCULLIS_DEMO_PORT ?? 8080)
  const adminPort = Number(io.env.PORTCULLIS_DEMO_ADMIN_PORT ?? 9464)
  const upstreamPort = Number(io.env.PORTCULLIS_DEMO_UPSTREAM_PORT ?? 8082)
  const upstream = await startEverything(upstreamPort)
  const config = parseConfig(`
publicUrl: http://127.0.0.1:${gatewayPort}
listen: { host: 127.0.0.1, port: ${gatewayPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
servers:
  everything:
    upstream: { url: http://127.0.0.1:${upstreamPort}/mcp }
    auth: none
    tools:
      - allow: ["*"]
`, { source: '<demo>', env: {} })
  const gateway = buildGateway(config, { logger: { level: io.env.PORTCULLIS_LOG_LEVEL ?? 'warn' } })
  const { url, adminUrl } = await gateway.listen()
  const mcpUrl = `${url}/mcp/everything`
  io.stdout.write([
    '',
    `  upstream MCP server   http://127.0.0.1:${upstreamPort}/mcp   (server-everything, Streamable HTTP)`,
    `  gateway               ${mcpUrl}`,
    `  admin                 ${adminUrl}/metrics  /healthz  /readyz`,
    '',
    `Try: node bin/portcullis.js call ${mcpUrl} echo '{"message":"hello through the gateway"}'`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'))
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  await gateway.close()
  upstream.kill('SIGTERM')
  return 0
}

async function startEverything (port: number): Promise<ChildProcess> {
  const entry = require.resolve('@modelcontextprotocol/server-everything/dist/index.js')
  const child = spawn(process.execPath, [entry, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const ready = new Promise<void>((resolve, reject) => {
    const check = setInterval(() => { if (stderr.includes('listening on port')) { clearInterval(check); resolve() } }, 50)
    child.once('exit', (code) => { clearInterval(check); reject(new Error(`server-everything exited (${code}): ${stderr.slice(-500)}`)) })
  })
  await Promise.race([ready, once(child, 'error').then(([err]) => { throw err })])
  return child
}
