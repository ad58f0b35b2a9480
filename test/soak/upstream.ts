import { randomUUID } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** What tools/list offers: `echo` (allowed by the soak's rules) and two the rules deny. */
export const SOAK_TOOLS = ['echo', 'secret_keys', 'secret_admin'] as const

export interface SoakUpstream {
  readonly url: string
  /** tools/call requests answered, by tool name (a `secret_*` here means the policy let one through) */
  readonly calls: Map<string, number>
  /** requests refused or cut while down */
  readonly refusedWhileDown: number
  /** GET streams open now */
  readonly openStreams: number
  /** down: every request is answered 503 or has its connection closed, and every open connection is closed now */
  setDown (down: boolean): void
  close (): Promise<void>
}

interface Incoming {
  readonly id?: string | number
  readonly method?: string
  readonly params?: { name?: unknown, arguments?: { message?: unknown }, protocolVersion?: unknown }
}

const TOOL_LIST = SOAK_TOOLS.map((name) => ({ name, description: name, inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }))
/** pushed to every GET stream every PUSH_MS: enough bytes that a reader who never reads fills its buffers */
const PUSH_MS = 200
const PUSH_PAD = 'x'.repeat(1024)

/**
 * A small Streamable HTTP MCP server on node:http that the soak controls: initialize (with a
 * session id it never checks, so any replica's request is fine), tools/list, tools/call `echo`
 * (an SSE answer after 2–6 ms, as SDK servers answer), GET streams fed a ~1 KiB
 * notifications/message every 200 ms (a stream whose socket is full is skipped until it drains),
 * and a switch for an outage.
 */
export async function startSoakUpstream (): Promise<SoakUpstream> {
  const calls = new Map<string, number>()
  const streams = new Set<ServerResponse>()
  const sockets = new Set<Socket>()
  let down = false
  let refused = 0
  let turn = 0

  const server = createServer((req, res) => {
    if (down) {
      refused++
      // half of them an answer, half a connection closed without one
      if (turn++ % 2 === 0) res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('down for maintenance')
      else req.socket.destroy()
      return
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.flushHeaders()
      streams.add(res)
      res.once('close', () => streams.delete(res))
      return
    }
    if (req.method === 'DELETE') {
      res.writeHead(200).end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let msg: Incoming
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Incoming
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')
        return
      }
      if (msg.id === undefined) {
        res.writeHead(202).end()
        return
      }
      const json = (result: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }))
      }
      switch (msg.method) {
        case 'initialize':
          json({
            protocolVersion: typeof msg.params?.protocolVersion === 'string' ? msg.params.protocolVersion : '2025-11-25',
            capabilities: { tools: {}, logging: {} },
            serverInfo: { name: 'soak-upstream', version: '1.0.0' },
          }, { 'mcp-session-id': randomUUID() })
          return
        case 'ping':
          json({})
          return
        case 'tools/list':
          json({ tools: TOOL_LIST })
          return
        case 'tools/call': {
          const name = String(msg.params?.name)
          calls.set(name, (calls.get(name) ?? 0) + 1)
          const text = String(msg.params?.arguments?.message ?? '')
          setTimeout(() => {
            if (res.destroyed) return
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
            res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text }] } })}\n\n`)
          }, 2 + Math.floor(Math.random() * 5))
          return
        }
        default:
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }))
      }
    })
  })
  server.keepAliveTimeout = 30_000
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })

  let seq = 0
  const pusher = setInterval(() => {
    const data = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { seq: ++seq, pad: PUSH_PAD } } })
    for (const res of streams) {
      // a full socket (a reader who does not read) is skipped: nothing piles up here
      if (res.writableNeedDrain) continue
      res.write(`event: message\ndata: ${data}\n\n`)
    }
  }, PUSH_MS)

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    get refusedWhileDown () { return refused },
    get openStreams () { return streams.size },
    setDown (value) {
      down = value
      if (value) for (const socket of sockets) socket.destroy()
    },
    async close () {
      clearInterval(pusher)
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}
