import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A real, misbehaving "MCP server" on node:http: each path is one fault, so one process serves
 * every row of a failure table and the gateway config points each of its servers at
 * `url(fault)`. Nothing here is a mock of the gateway — the gateway talks real HTTP to it.
 *
 * Every request is recorded (method, path, headers, body), and so is the moment each request's
 * connection closed before its response finished (`closed`), so a test can see an upstream
 * request being aborted by the gateway.
 */
export type Fault =
  /** the socket is destroyed as soon as the request has arrived: no status line */
  | 'reset-before-headers'
  /** 200 text/event-stream, one notifications/progress event, then the socket is destroyed */
  | 'reset-mid-sse'
  /** 200 text/event-stream, one notifications/progress event, then a clean end without the response */
  | 'end-mid-sse'
  /** reads the request, never answers */
  | 'hang'
  /** 500 with an HTML error page (carrying a stack trace and an internal path) */
  | 'status-500-html'
  /** 502 text/plain */
  | 'status-502'
  /** 503 with Retry-After: 7 */
  | 'status-503'
  /** 200 with content-type text/html */
  | 'html-200'
  /** 200 application/json whose body is not JSON */
  | 'bad-json-200'
  /** 401 with WWW-Authenticate: Bearer realm="upstream" */
  | 'status-401'
  /** 400 with a JSON-RPC error body (a 2026-07-28 UnsupportedProtocolVersion), exact bytes in BODY_400 */
  | 'status-400-jsonrpc'
  /** initialize → 200 JSON with Mcp-Session-Id SESSION_404; any later request → 404 with BODY_404 */
  | 'session-404'
  /** every answer is a good JSON result, plus headers the client must never see (and an Mcp-Session-Id) */
  | 'leaky-headers'
  /** 200 text/event-stream, one progress event, then silence until the client goes away */
  | 'slow-sse'
  /** 200 text/event-stream, headers flushed at once, then no event at all (an idle stream) */
  | 'silent-sse'
  /**
   * A well-behaved server whose streams stay open: GET → an idle SSE stream; tools/call `hold` →
   * SSE, one progress event, then silence until the client goes away; any other request → a JSON
   * result (tools/call: the text `ok`); notifications → 202
   */
  | 'streams'

export const BODY_400 = '{"jsonrpc":"2.0", "id":null,\n "error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":"2025-03-26"}}}'
export const BODY_404 = '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found (upstream)"}}'
export const SESSION_404 = 'faulty-session-404'
export const LEAKY_SESSION = 'leaky-session-1'
/** what the 500 page contains: a stack frame and an internal path, which must never reach a client */
export const UPSTREAM_STACK = 'at handle (/srv/upstream/internal/server.js:42:7)'

export interface RecordedFaultRequest {
  readonly fault: string
  readonly method: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
  /** set when the request's connection closed before the response finished */
  closedAt: number | undefined
}

export interface FaultyUpstream {
  readonly origin: string
  /** the upstream URL for one fault */
  url (fault: Fault): string
  readonly requests: RecordedFaultRequest[]
  close (): Promise<void>
}

export async function startFaultyUpstream (): Promise<FaultyUpstream> {
  const requests: RecordedFaultRequest[] = []
  const sockets = new Set<Socket>()

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const fault = (req.url ?? '/').slice(1).split('?')[0] ?? ''
      const record: RecordedFaultRequest = {
        fault,
        method: req.method ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        closedAt: undefined,
      }
      requests.push(record)
      res.on('close', () => { if (!res.writableFinished) record.closedAt = Date.now() })
      answer(fault, req, res, record.body)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    url: (fault) => `${origin}/${fault}`,
    requests,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

interface Incoming {
  readonly id: string | number | null
  readonly method: string | undefined
  readonly progressToken: string | number | undefined
  /** tools/call: the tool's name */
  readonly toolName: string | undefined
}

function incoming (body: string): Incoming {
  try {
    const msg = JSON.parse(body) as { id?: string | number; method?: string; params?: { name?: unknown, _meta?: { progressToken?: string | number } } }
    const toolName = typeof msg.params?.name === 'string' ? msg.params.name : undefined
    return { id: msg.id ?? null, method: msg.method, progressToken: msg.params?._meta?.progressToken, toolName }
  } catch {
    return { id: null, method: undefined, progressToken: undefined, toolName: undefined }
  }
}

function initializeResult (id: string | number | null): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    result: { protocolVersion: '2025-03-26', capabilities: { tools: {} }, serverInfo: { name: 'faulty-upstream', version: '1.0.0' } },
  })
}

function sseEvent (message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`
}

function progressEvent (msg: Incoming): string {
  return sseEvent({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: msg.progressToken ?? 'none', progress: 1, total: 3 } })
}

function answer (fault: string, req: IncomingMessage, res: ServerResponse, body: string): void {
  const msg = incoming(body)
  switch (fault) {
    case 'reset-before-headers':
      req.socket.destroy()
      return
    case 'reset-mid-sse':
    case 'end-mid-sse':
    case 'slow-sse':
      // the handshake works, so that a real SDK client gets as far as the failing call
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end()
        return
      }
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(initializeResult(msg.id))
        return
      }
      if (msg.id === null) {
        res.writeHead(202).end()
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write(progressEvent(msg))
      if (fault === 'slow-sse') return
      setTimeout(() => {
        if (fault === 'reset-mid-sse') req.socket.destroy()
        else res.end()
      }, 100)
      return
    case 'hang':
      return
    case 'streams':
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.flushHeaders()
        return
      }
      if (msg.id === null) {
        res.writeHead(202).end()
        return
      }
      if (msg.method === 'tools/call' && msg.toolName === 'hold') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.write(progressEvent(msg))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(msg.method === 'initialize' ? initializeResult(msg.id) : JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'ok' }] } }))
      return
    case 'silent-sse':
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.flushHeaders()
      return
    case 'status-500-html':
      res.writeHead(500, { 'content-type': 'text/html' })
      res.end(`<html><body><h1>Internal Server Error</h1><pre>TypeError: boom\n    ${UPSTREAM_STACK}</pre></body></html>`)
      return
    case 'status-502':
      res.writeHead(502, { 'content-type': 'text/plain' })
      res.end('upstream-lb: no healthy backend')
      return
    case 'status-503':
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '7' })
      res.end('overloaded')
      return
    case 'html-200':
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html><body>Welcome to nginx!</body></html>')
      return
    case 'bad-json-200':
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":{"content":[`)
      return
    case 'status-401':
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="upstream"' })
      res.end('{"error":"invalid_token"}')
      return
    case 'status-400-jsonrpc':
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(BODY_400)
      return
    case 'session-404':
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': SESSION_404 })
        res.end(initializeResult(msg.id))
      } else {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(BODY_404)
      }
      return
    case 'leaky-headers':
      res.writeHead(200, {
        'content-type': 'application/json',
        'mcp-session-id': LEAKY_SESSION,
        'set-cookie': 'upstream_session=s3cr3t; HttpOnly',
        'www-authenticate': 'Bearer realm="upstream"',
        'x-upstream-internal': 'db=10.0.0.7',
        'x-powered-by': 'Express',
        server: 'upstream/1.0',
        'access-control-allow-origin': '*',
        'strict-transport-security': 'max-age=1',
      })
      res.end(msg.method === 'initialize' ? initializeResult(msg.id) : JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} }))
      return
    default:
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(`faulty-upstream: unknown fault ${fault}`)
  }
}
