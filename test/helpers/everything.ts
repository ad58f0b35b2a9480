import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { startGateway, type StartedGateway } from './gateway.ts'
import { boundPort, REPORT_BOUND_PORT } from './ports.ts'

const require = createRequire(import.meta.url)
export const everythingEntry: string = require.resolve('@modelcontextprotocol/server-everything/dist/index.js')

export interface RunningEverything {
  readonly url: string
  readonly child: ChildProcess
  close (): Promise<void>
}

/**
 * The official server-everything in `sse` or `streamableHttp` mode, on a port the OS picks: it
 * reads PORT (0) and prints only that, so REPORT_BOUND_PORT tells the bound one.
 */
export async function startEverything (mode: 'sse' | 'streamableHttp'): Promise<RunningEverything> {
  const child = spawn(process.execPath, ['--import', REPORT_BOUND_PORT, everythingEntry, mode], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const port = boundPort(stderr)
      if (port !== undefined) { clearInterval(timer); resolve(port) }
    }, 25)
    child.once('close', (code) => { clearInterval(timer); reject(new Error(`server-everything ${mode} exited ${code}: ${stderr}`)) })
  })
  return {
    url: mode === 'sse' ? `http://127.0.0.1:${port}/sse` : `http://127.0.0.1:${port}/mcp`,
    child,
    async close () {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    },
  }
}

/**
 * The gateway in front of server-everything in all three transports — servers `stdio`, `sse` and
 * `http`, open to anyone (`auth: none`, every tool allowed) — for the transport tests.
 */
export async function startEverythingGateway (): Promise<{ gw: StartedGateway; close (): Promise<void> }> {
  const sse = await startEverything('sse')
  const http = await startEverything('streamableHttp')
  const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(everythingEntry)}, stdio] }
    auth: none
    tools: [{ allow: ["*"] }]
  sse:
    upstream: { transport: sse, url: ${sse.url} }
    auth: none
    tools: [{ allow: ["*"] }]
  http:
    upstream: { url: ${http.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`)
  return {
    gw,
    async close () {
      await gw.close()
      await sse.close()
      await http.close()
    },
  }
}
