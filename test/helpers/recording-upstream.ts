import { createServer, type IncomingMessage, type Server } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { ErrorCode, ListToolsRequestSchema, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

export interface RecordingUpstream {
  readonly url: string
  readonly requests: RecordedRequest[]
  /** the tools/call names the upstream actually executed */
  readonly calls: string[]
  /** with `promptsAndResources`: the prompts got (`prompt:NAME`) and resources read (`resource:URI`) */
  readonly reads: string[]
  close (): Promise<void>
}

export interface RecordingUpstreamOptions {
  /** stateful: sessions with Mcp-Session-Id (default); stateless: a fresh server per request */
  readonly mode?: 'stateful' | 'stateless'
  /** answer with application/json instead of SSE */
  readonly json?: boolean
  /** keep an event log so clients can resume with Last-Event-ID */
  readonly resumable?: boolean
  /**
   * Answer tools/list from the low-level SDK `Server` in pages of this many tools: each page but
   * the last carries `nextCursor: "page:N"` (N = offset of the next page); any cursor of that
   * form is accepted, anything else is -32602 "Invalid cursor". Listed tools carry
   * `inputSchema: { type: "object" }`.
   */
  readonly pageSize?: number
  /**
   * More tool names advertised by tools/list after the five built-in ones (listed only, not
   * registered: calling one gets the SDK's "not found" tool error). Implies the paged handler.
   */
  readonly extraTools?: readonly string[]
  /**
   * Also offer prompts `greet` (argument `name`) and `internal-prompt`, and resources
   * `file:///public/readme.txt` and `file:///secret/keys.txt`; each get/read is recorded in `reads`.
   */
  readonly promptsAndResources?: boolean
}

/** The tools every recording upstream registers, in tools/list order. */
export const RECORDING_TOOLS = ['echo', 'add', 'slow', 'fail', 'secret'] as const

/** A correct, unbounded event log (test use only). */
class TestEventStore implements EventStore {
  readonly #events: Array<{ id: string, streamId: string, message: JSONRPCMessage }> = []
  async storeEvent (streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}.${this.#events.length}`
    this.#events.push({ id, streamId, message })
    return id
  }

  async replayEventsAfter (lastEventId: string, { send }: { send: (id: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const start = this.#events.findIndex((e) => e.id === lastEventId)
    const streamId = this.#events[start]?.streamId ?? ''
    for (const e of this.#events.slice(start + 1)) if (e.streamId === streamId) await send(e.id, e.message)
    return streamId
  }
}

/**
 * A real MCP server (official SDK 1.x, Streamable HTTP) that records every request it receives —
 * headers and body — so tests can assert what crossed the gateway and what never did.
 */
export async function startRecordingUpstream (opts: RecordingUpstreamOptions = {}): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = []
  const calls: string[] = []
  const reads: string[] = []
  const sessions = new Map<string, StreamableHTTPServerTransport>()

  const build = (): McpServer => {
    const server = new McpServer({ name: 'recording-upstream', version: '1.0.0' }, { capabilities: { logging: {} } })
    server.registerTool('echo', { description: 'echo', inputSchema: { message: z.string() } }, async ({ message }) => {
      calls.push('echo')
      return { content: [{ type: 'text', text: message }] }
    })
    server.registerTool('add', { description: 'add', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
      calls.push('add')
      return { content: [{ type: 'text', text: String(a + b) }] }
    })
    server.registerTool('slow', { description: 'progress then result', inputSchema: { steps: z.number(), ms: z.number() } },
      async ({ steps, ms }, extra) => {
        calls.push('slow')
        for (let i = 1; i <= steps; i++) {
          await new Promise((resolve) => setTimeout(resolve, ms))
          const progressToken = extra._meta?.progressToken
          if (progressToken !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } })
          }
        }
        return { content: [{ type: 'text', text: `done after ${steps} steps` }] }
      })
    server.registerTool('fail', { description: 'a tool error' }, async () => {
      calls.push('fail')
      return { isError: true, content: [{ type: 'text', text: 'it failed' }] }
    })
    server.registerTool('secret', { description: 'should be hidden by policy' }, async () => {
      calls.push('secret')
      return { content: [{ type: 'text', text: 'the secret' }] }
    })
    if (opts.promptsAndResources === true) {
      server.registerPrompt('greet', { description: 'a greeting', argsSchema: { name: z.string() } }, ({ name }) => {
        reads.push('prompt:greet')
        return { messages: [{ role: 'user', content: { type: 'text', text: `Hello ${name}` } }] }
      })
      server.registerPrompt('internal-prompt', { description: 'should be hidden by policy' }, () => {
        reads.push('prompt:internal-prompt')
        return { messages: [{ role: 'user', content: { type: 'text', text: 'internal instructions' } }] }
      })
      for (const [name, uri, text] of [['readme', 'file:///public/readme.txt', 'public'], ['keys', 'file:///secret/keys.txt', 'the keys']] as const) {
        server.registerResource(name, uri, { mimeType: 'text/plain' }, async (url) => {
          reads.push(`resource:${url.href}`)
          return { contents: [{ uri: url.href, mimeType: 'text/plain', text }] }
        })
      }
    }
    if (opts.pageSize !== undefined || opts.extraTools !== undefined) {
      const listed = [...RECORDING_TOOLS, ...(opts.extraTools ?? [])]
        .map((name) => ({ name, description: name, inputSchema: { type: 'object' as const } }))
      const size = opts.pageSize ?? listed.length
      server.server.setRequestHandler(ListToolsRequestSchema, async (request) => {
        const cursor = request.params?.cursor
        const match = cursor === undefined ? ['', '0'] : /^page:(\d+)$/.exec(cursor)
        if (match === null) throw new McpError(ErrorCode.InvalidParams, 'Invalid cursor')
        const start = Number(match[1])
        const next = start + size
        return { tools: listed.slice(start, next), ...(next < listed.length ? { nextCursor: `page:${next}` } : {}) }
      })
    }
    return server
  }

  const http: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      const parsed: unknown = body === '' ? undefined : JSON.parse(body)
      void (async () => {
        if (opts.mode === 'stateless') {
          const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: opts.json ?? false })
          const server = build()
          res.on('close', () => { void transport.close(); void server.close() })
          await server.connect(transport)
          await transport.handleRequest(req, res, parsed)
          return
        }
        const sessionId = req.headers['mcp-session-id']
        let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined
        if (transport === undefined) {
          if (typeof sessionId === 'string') {
            res.writeHead(404, { 'content-type': 'application/json' })
            res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }))
            return
          }
          const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            enableJsonResponse: opts.json ?? false,
            ...(opts.resumable === true ? { eventStore: new TestEventStore() } : {}),
            onsessioninitialized: (id) => { sessions.set(id, created) },
          })
          created.onclose = () => { if (created.sessionId !== undefined) sessions.delete(created.sessionId) }
          await build().connect(created)
          transport = created
        }
        await transport.handleRequest(req, res, parsed)
      })().catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err))
      })
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    calls,
    reads,
    async close () {
      for (const t of sessions.values()) await t.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
