// Legacy HTTP+SSE upstreams go through an HTTP agent of their own, built from their config
// (security review finding 8): `tlsVerify` and `headersTimeoutMs` apply to them as to Streamable
// HTTP upstreams. A real legacy SSE server (the SDK's SSEServerTransport) over https with a
// self-signed certificate made with openssl, and a server that accepts TCP and never answers.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { z } from 'zod'
import { startGateway } from '../helpers/gateway.ts'
import { dropClientConnections, initialize, send, toolsCall } from '../helpers/mcp-http.ts'
import { rawInitialize } from '../helpers/raw-mcp.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'

/** A certificate for 127.0.0.1 signed by nobody the gateway trusts, or undefined without openssl. */
function selfSigned (): { key: string, cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sse-tls-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
  } catch {
    return undefined
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const tls = selfSigned()
if (tls === undefined) {
  t.plan(0, 'openssl is not available')
} else {
  // a legacy HTTP+SSE MCP server over https: GET /sse opens a session, POST /messages feeds it
  const transports = new Map<string, SSEServerTransport>()
  const https = createHttpsServer(tls, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1')
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res)
      transports.set(transport.sessionId, transport)
      const server = new McpServer({ name: 'tls-sse', version: '1.0.0' })
      server.registerTool('echo', { inputSchema: { message: z.string() } }, async ({ message }) => ({ content: [{ type: 'text', text: message }] }))
      void server.connect(transport)
      return
    }
    const transport = transports.get(url.searchParams.get('sessionId') ?? '')
    if (req.method === 'POST' && transport !== undefined) {
      void transport.handlePostMessage(req, res)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
  const sseUrl = `https://127.0.0.1:${(https.address() as AddressInfo).port}/sse`

  // accepts the connection, reads the request, never answers
  const sockets = new Set<Socket>()
  const silent = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('data', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/sse`

  const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  verified:
    upstream: { transport: sse, url: "${sseUrl}" }
    auth: none
    tools: [{ allow: ["*"] }]
  unverified:
    upstream: { transport: sse, url: "${sseUrl}", tlsVerify: false }
    auth: none
    tools: [{ allow: ["*"] }]
  silent:
    upstream: { transport: sse, url: "${silentUrl}", connectTimeoutMs: 1000, headersTimeoutMs: 300 }
    auth: none
    tools: [{ allow: ["*"] }]
`)
  t.teardown(async () => {
    await dropClientConnections()
    await gw.close()
    for (const socket of sockets) socket.destroy()
    https.closeAllConnections()
    await new Promise((resolve) => https.close(resolve))
    await new Promise((resolve) => silent.close(resolve))
  })

  const rows = [
    { name: 'tlsVerify: true (the default), a self-signed certificate: refused', server: 'verified', status: 502, message: /could not be reached/, within: 2_000 },
    { name: 'tlsVerify: false: the same upstream serves', server: 'unverified', status: 200, message: undefined, within: 2_000 },
    // before, the global fetch's 300 s headers timeout applied: the start timeout (1.3 s) ended it with a 504
    { name: 'no response headers within headersTimeoutMs (300 ms): 502 at once, not a hang', server: 'silent', status: 502, message: /could not be reached/, within: 1_000 },
  ]
  for (const row of rows) {
    t.test(row.name, async (t) => {
      const result = await send(gw.mcpUrl(row.server), { body: initialize(1) })
      t.equal(result.status, row.status, 'status')
      t.ok(result.ms < row.within, `answered in ${Math.round(result.ms)} ms (< ${row.within})`)
      if (row.message !== undefined) {
        t.match(result.messages[0], { id: 1, error: { code: -32603, message: row.message } }, 'JSON-RPC error')
      }
    })
  }

  t.test('over tlsVerify: false, a whole session works', async (t) => {
    const url = gw.mcpUrl('unverified')
    const session = await rawInitialize(url)
    const result = await send(url, {
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
      body: toolsCall(2, 'echo', { message: 'over tls' }),
    })
    t.equal(result.status, 200)
    t.match(result.messages.find((m) => (m as { id?: unknown }).id === 2), { result: { content: [{ type: 'text', text: 'over tls' }] } })
  })

  t.test('metrics: the failed starts', async (t) => {
    const samples = await scrape(gw.adminUrl)
    t.equal(metricSum(samples, 'portcullis_upstream_errors_total', { server: 'verified', reason: 'start_failed' }), 1)
    t.equal(metricSum(samples, 'portcullis_upstream_errors_total', { server: 'silent', reason: 'start_failed' }), 1)
  })
}
