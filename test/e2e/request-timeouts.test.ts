import t from 'tap'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS } from '../helpers/mcp-http.ts'

// Finding 6: receiving a request is bounded (headers 500 ms, whole request 1 s here); a response
// stream is not. Against the real gateway process.
const HEADERS_TIMEOUT_MS = 500
const REQUEST_TIMEOUT_MS = 1000
/** the bound plus the checking interval (250 ms here) and scheduling slack */
const CLOSED_WITHIN_MS = REQUEST_TIMEOUT_MS + 1000
const SLOW_TOOL_MS = 2500

/** An upstream whose tools/call answers on an SSE stream after SLOW_TOOL_MS; everything else at once. */
async function startSlowUpstream (): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString('utf8') })
    req.on('end', () => {
      const msg = body === '' ? {} : JSON.parse(body) as { id?: unknown, method?: string }
      if (msg.id === undefined) { res.writeHead(202).end(); return }
      if (msg.method !== 'tools/call') {
        const result = msg.method === 'initialize' ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'slow', version: '1' } } : {}
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(': opened\n\n')
      setTimeout(() => {
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'slow answer' }] } })}\n\n`)
      }, SLOW_TOOL_MS)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, close: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) } }
}

interface Drip {
  /** ms from connecting to the server closing the socket */
  readonly closedAfterMs: number
  /** what the server wrote before closing */
  readonly response: string
}

/** Connect, write `head` at once (maybe empty), then one byte of `drip` every `everyMs`, until the server closes. */
async function drip (url: string, head: string, dripBytes: string, everyMs: number): Promise<Drip> {
  const { hostname, port } = new URL(url)
  const socket: Socket = connect(Number(port), hostname)
  const started = performance.now()
  let response = ''
  let i = 0
  const timer = setInterval(() => {
    if (i < dripBytes.length && !socket.destroyed) socket.write(dripBytes[i++] ?? '')
  }, everyMs)
  socket.on('connect', () => { if (head !== '') socket.write(head) })
  socket.on('data', (c: Buffer) => { response += c.toString('latin1') })
  const closedAfterMs = await new Promise<number>((resolve) => {
    const cap = setTimeout(() => { socket.destroy(); resolve(Infinity) }, 20_000)
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(cap); resolve(performance.now() - started) })
  })
  clearInterval(timer)
  return { closedAfterMs, response }
}

let gw: GatewayProcess
let upstream: Awaited<ReturnType<typeof startSlowUpstream>>
t.before(async () => {
  upstream = await startSlowUpstream()
  gw = await startGatewayProcess({
    yaml: `
publicUrl: http://127.0.0.1:9
limits: { headersTimeoutMs: ${HEADERS_TIMEOUT_MS}, requestTimeoutMs: ${REQUEST_TIMEOUT_MS} }
servers:
  slow:
    auth: none
    upstream: { url: ${upstream.url} }
    tools: [{ allow: ["*"] }]
`,
  })
})
t.teardown(async () => {
  await gw.stop()
  await upstream.close()
})

const form = 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x'
const mcpBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })

t.test('slowloris: every slow request is cut within its bound, unauthenticated or not', async (t) => {
  const head = (path: string, type: string, length: number): string =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nAccept: ${POST_HEADERS.accept}\r\nContent-Length: ${length}\r\n\r\n`
  const cases: Array<{ name: string, head: string, drip: string, everyMs: number, within: number }> = [
    { name: '/oauth/token: headers a byte every 100 ms', head: '', drip: head('/oauth/token', 'application/x-www-form-urlencoded', form.length), everyMs: 100, within: HEADERS_TIMEOUT_MS + 1000 },
    { name: '/oauth/token: body a byte a second', head: head('/oauth/token', 'application/x-www-form-urlencoded', form.length), drip: form, everyMs: 1000, within: CLOSED_WITHIN_MS },
    { name: '/oauth/token: body a byte every 200 ms', head: head('/oauth/token', 'application/x-www-form-urlencoded', form.length), drip: form, everyMs: 200, within: CLOSED_WITHIN_MS },
    { name: '/mcp/slow: headers a byte every 100 ms', head: '', drip: head('/mcp/slow', 'application/json', mcpBody.length), everyMs: 100, within: HEADERS_TIMEOUT_MS + 1000 },
    { name: '/mcp/slow: body a byte a second', head: head('/mcp/slow', 'application/json', mcpBody.length), drip: mcpBody, everyMs: 1000, within: CLOSED_WITHIN_MS },
    { name: 'a connection that sends nothing', head: '', drip: '', everyMs: 1000, within: HEADERS_TIMEOUT_MS + 1000 },
  ]
  for (const c of cases) {
    const result = await drip(gw.url, c.head, c.drip, c.everyMs)
    t.ok(result.closedAfterMs <= c.within, `${c.name}: closed after ${Math.round(result.closedAfterMs)} ms (bound ${c.within} ms)`)
    const status = /^HTTP\/1\.1 (\d{3})/.exec(result.response)?.[1]
    t.ok(status === undefined || status === '408', `${c.name}: 408 or a reset, not an answer (${status ?? 'reset'})`)
  }
})

t.test('a response stream outlives requestTimeoutMs', async (t) => {
  const started = performance.now()
  const res = await fetch(`${gw.url}/mcp/slow`, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'anything', arguments: {} } }),
  })
  const text = await res.text()
  const elapsed = performance.now() - started
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/event-stream/)
  t.ok(elapsed >= SLOW_TOOL_MS, `the stream stayed open ${Math.round(elapsed)} ms (> requestTimeoutMs ${REQUEST_TIMEOUT_MS})`)
  t.match(text, /slow answer/, 'and delivered its answer')
})

t.test('a quick request on a fresh connection still works', async (t) => {
  const res = await fetch(`${gw.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
  t.equal(res.status, 401)
  t.match(await res.json(), { error: 'invalid_client' })
})
