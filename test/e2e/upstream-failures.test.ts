// Upstream failures (design.md §7): every way an upstream can fail — refused, reset before or in
// the middle of a stream, silent, 5xx, wrong content, an auth challenge, a stdio child that dies
// or never starts — must become the right HTTP status or a well-formed JSON-RPC error carrying
// the request's id, quickly (never a hang), without leaking the upstream's internals, and with a
// log line. One table row per fault; each fault is a real misbehaving upstream
// (test/helpers/faulty-upstream.ts, test/fixtures/crash-on-call.mjs) behind the real gateway.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { startGateway, type StartedGateway } from '../helpers/gateway.ts'
import { CLOSED_PORT } from '../helpers/ports.ts'
import {
  BODY_400, BODY_404, SESSION_404, UPSTREAM_STACK, startFaultyUpstream, type Fault,
} from '../helpers/faulty-upstream.ts'
import {
  LEAK, POST_HEADERS, dropClientConnections, initialize, rpcError, send, toolsCall, type HttpResult,
} from '../helpers/mcp-http.ts'

const BOUND_MS = 5_000
const crashScript = fileURLToPath(new URL('../fixtures/crash-on-call.mjs', import.meta.url))

/** a stdio child that answers every line with a line that is not JSON, and never with a response */
const GARBAGE_SCRIPT = "require('node:readline').createInterface({ input: process.stdin }).on('line', () => process.stdout.write('this is not json\\n'))"

const faulty = await startFaultyUpstream()
const deadPort = CLOSED_PORT // nothing listens here

const httpFaults: Fault[] = [
  'reset-before-headers', 'reset-mid-sse', 'end-mid-sse', 'hang', 'status-500-html', 'status-502', 'status-503',
  'html-200', 'bad-json-200', 'status-401', 'status-400-jsonrpc', 'session-404',
]
const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  refused:
    upstream: { url: "http://127.0.0.1:${deadPort}/mcp", connectTimeoutMs: 2000 }
    auth: none
    tools: [{ allow: ["*"] }]
${httpFaults.map((fault) => `
  ${fault}:
    upstream: { url: "${faulty.url(fault)}", headersTimeoutMs: 500 }
    auth: none
    tools: [{ allow: ["*"] }]`).join('')}
  stdio-crash:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(crashScript)}], requestTimeoutMs: 10000 }
    auth: none
    tools: [{ allow: ["*"] }]
  stdio-missing:
    upstream: { command: /nonexistent/portcullis-test/no-such-mcp-server, args: [--stdio] }
    auth: none
    tools: [{ allow: ["*"] }]
  stdio-exits-at-start:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: ["-e", "process.exit(1)"] }
    auth: none
    tools: [{ allow: ["*"] }]
  stdio-garbage:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: ["-e", ${JSON.stringify(GARBAGE_SCRIPT)}], requestTimeoutMs: 1000 }
    auth: none
    tools: [{ allow: ["*"] }]
  sse-refused:
    upstream: { transport: sse, url: "http://127.0.0.1:${deadPort}/sse", connectTimeoutMs: 2000 }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(async () => {
  await dropClientConnections() // a pooled keep-alive connection would hold gw.close() for the drain timeout
  await gw.close()
  await faulty.close()
})

// ---------------------------------------------------------------------------------------------
// what "the gateway logged the failure" means

type LogLine = Record<string, unknown>

/** the log lines about requests to /mcp/{server}, or from that server's upstream, written since `from` */
function linesFor (gateway: StartedGateway, server: string, from: number): LogLine[] {
  const lines = gateway.logs.slice(from)
  const reqIds = new Set(lines
    .filter((l) => (l.req as { url?: string } | undefined)?.url === `/mcp/${server}`)
    .map((l) => l.reqId))
  return lines.filter((l) => l.server === server || l['portcullis.server'] === server || reqIds.has(l.reqId))
}

/** a warn/error line about this server's request; for a passed-through status, its completion line */
async function waitForLog (gateway: StartedGateway, server: string, from: number, expect: 'warn' | number): Promise<LogLine | undefined> {
  const deadline = Date.now() + 1_000
  for (;;) {
    const found = linesFor(gateway, server, from).find((l) => expect === 'warn'
      ? typeof l.level === 'number' && l.level >= 40
      : ((l.res as { statusCode?: number } | undefined)?.statusCode ?? l['http.response.status_code']) === expect)
    if (found !== undefined || Date.now() > deadline) return found
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// ---------------------------------------------------------------------------------------------
// the table

interface Row {
  readonly name: string
  readonly server: string
  /** the request whose failure is judged (after `before`, if any); default: tools/call id 7 */
  readonly run?: (t: Test) => Promise<{ result: HttpResult; id: string | number; after?: () => Promise<void> }>
  readonly status: number
  /** the JSON-RPC error the client gets, and the id it must carry (default: the request's) */
  readonly code: number
  readonly id?: string | number | null
  /** what the error message says (src/errors.ts) */
  readonly message?: RegExp
  /** the error arrives as an SSE event on a 200 stream (after what the upstream sent first) */
  readonly sse?: boolean
  /** response headers that must (string) or must not (null) be there */
  readonly headers?: Readonly<Record<string, string | null>>
  /** the body must be exactly these bytes (passed through) */
  readonly exactBody?: string
  /** a warn/error log line, or the access-log line with this passed-through status */
  readonly log: 'warn' | number
  /** assertions known to fail because of a gateway bug: shown as TODO, the rest of the row still enforced */
}

/** a subtest (the last overload of t.test takes just the callback) */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const callOnce = (server: string) => async (): Promise<{ result: HttpResult; id: number; after?: () => Promise<void> }> => {
  const result = await send(gw.mcpUrl(server), { body: toolsCall(7, 'echo', { message: 'hi' }, 'progress-7') })
  return { result, id: 7 }
}

const rows: Row[] = [
  { name: 'connection refused (nothing listens)', server: 'refused', status: 502, code: -32603, message: /could not be reached/, log: 'warn' },
  { name: 'connection reset before the response headers', server: 'reset-before-headers', status: 502, code: -32603, message: /could not be reached/, log: 'warn' },
  {
    name: 'connection reset mid-SSE, after one progress event',
    server: 'reset-mid-sse',
    status: 200,
    sse: true,
    code: -32603,
    message: /closed the stream before answering/,
    headers: { 'content-type': 'text/event-stream' },
    log: 'warn',
  },
  {
    name: 'SSE stream ends cleanly after one progress event, without the response',
    server: 'end-mid-sse',
    status: 200,
    sse: true,
    code: -32603,
    log: 'warn',
  },
  { name: 'response headers never sent (headersTimeoutMs: 500)', server: 'hang', status: 504, code: -32603, message: /did not answer in time/, log: 'warn' },
  {
    name: '500 with an HTML body (and a stack trace in it)',
    server: 'status-500-html',
    status: 502,
    code: -32603,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    log: 'warn',
  },
  { name: '502', server: 'status-502', status: 502, code: -32603, message: /^Bad Gateway/, log: 'warn' },
  { name: '503 with Retry-After: 7', server: 'status-503', status: 503, code: -32603, message: /^Service Unavailable/, headers: { 'retry-after': '7' }, log: 'warn' },
  { name: '200 with content-type text/html', server: 'html-200', status: 502, code: -32603, message: /invalid response/, log: 'warn' },
  {
    name: '200 application/json with a body that is not JSON',
    server: 'bad-json-200',
    status: 502,
    code: -32603,
    log: 'warn',
  },
  {
    name: '401 with WWW-Authenticate: Bearer realm="upstream"',
    server: 'status-401',
    status: 502,
    code: -32603,
    headers: { 'www-authenticate': null },
    log: 'warn',
  },
  {
    name: '400 with a JSON-RPC error body: passed through byte for byte (era detection)',
    server: 'status-400-jsonrpc',
    status: 400,
    code: -32022,
    id: null,
    exactBody: BODY_400,
    headers: { 'content-type': 'application/json' },
    log: 400,
  },
  {
    name: '404 for a live session: passed through, and the session is forgotten',
    server: 'session-404',
    run: async (t) => {
      const init = await send(gw.mcpUrl('session-404'), { body: initialize(1) })
      t.equal(init.status, 200, 'initialize works')
      const sealed = init.headers['mcp-session-id']
      t.ok(typeof sealed === 'string' && sealed !== SESSION_404, 'the upstream session id reaches the client sealed')
      const headers = { ...POST_HEADERS, 'mcp-session-id': String(sealed), 'mcp-protocol-version': '2025-03-26' }
      const result = await send(gw.mcpUrl('session-404'), { headers, body: toolsCall(8, 'echo', { message: 'hi' }) })
      const after = async (): Promise<void> => {
        const seen = faulty.requests.length
        const again = await send(gw.mcpUrl('session-404'), { headers, body: toolsCall(9, 'echo', { message: 'hi' }) })
        t.equal(again.status, 404, 'the same session again: 404 from the gateway')
        t.equal(rpcError(again)?.error.code, -32001)
        t.equal(faulty.requests.length, seen, 'a session the upstream ended is not asked about again')
      }
      return { result, id: 8, after }
    },
    status: 404,
    code: -32001,
    id: null,
    exactBody: BODY_404,
    log: 404,
  },
  {
    name: 'stdio child that exits in the middle of tools/call',
    server: 'stdio-crash',
    run: async (t) => {
      const init = await send(gw.mcpUrl('stdio-crash'), { body: initialize(1) })
      t.equal(init.status, 200, 'initialize works')
      const sessionId = String(init.headers['mcp-session-id'])
      const firstPid = pidOf(init)
      t.type(firstPid, 'number', 'the child answered initialize')
      const headers = { ...POST_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26' }
      const result = await send(gw.mcpUrl('stdio-crash'), { headers, body: toolsCall(2, 'crash') })
      const after = async (): Promise<void> => {
        const dead = await send(gw.mcpUrl('stdio-crash'), { headers, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }) })
        t.equal(dead.status, 404, 'the dead child\'s session is gone: 404')
        t.equal(rpcError(dead)?.error.code, -32001)
        const again = await send(gw.mcpUrl('stdio-crash'), { body: initialize(4) })
        t.equal(again.status, 200, 'the next initialize works')
        const secondPid = pidOf(again)
        t.type(secondPid, 'number')
        t.not(secondPid, firstPid, 'in a fresh process')
        const next = { ...POST_HEADERS, 'mcp-session-id': String(again.headers['mcp-session-id']), 'mcp-protocol-version': '2025-03-26' }
        const list = await send(gw.mcpUrl('stdio-crash'), { headers: next, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }) })
        t.match(list.messages, [{ id: 5, result: { tools: [{ name: 'crash' }] } }], 'which answers')
        await send(gw.mcpUrl('stdio-crash'), { method: 'DELETE', headers: { 'mcp-session-id': String(again.headers['mcp-session-id']) } })
      }
      return { result, id: 2, after }
    },
    status: 200,
    sse: true,
    code: -32603,
    message: /process exited/,
    log: 'warn',
  },
  {
    name: 'stdio command that does not exist',
    server: 'stdio-missing',
    run: async () => ({ result: await send(gw.mcpUrl('stdio-missing'), { body: initialize(1) }), id: 1 }),
    status: 502,
    code: -32603,
    message: /could not be reached/,
    log: 'warn',
  },
  {
    name: 'stdio child that exits before answering initialize',
    server: 'stdio-exits-at-start',
    run: async () => ({ result: await send(gw.mcpUrl('stdio-exits-at-start'), { body: initialize(1) }), id: 1 }),
    status: 200,
    sse: true,
    code: -32603,
    message: /process exited/,
    log: 'warn',
  },
  {
    name: 'stdio child that writes non-JSON and never answers (requestTimeoutMs: 1000)',
    server: 'stdio-garbage',
    run: async () => ({ result: await send(gw.mcpUrl('stdio-garbage'), { body: initialize(1) }), id: 1 }),
    status: 200,
    sse: true,
    code: -32603,
    message: /did not answer in time/,
    log: 'warn',
  },
  {
    name: 'legacy HTTP+SSE upstream refused',
    server: 'sse-refused',
    run: async () => ({ result: await send(gw.mcpUrl('sse-refused'), { body: initialize(1) }), id: 1 }),
    status: 502,
    code: -32603,
    log: 'warn',
  },
]

function pidOf (result: HttpResult): number | undefined {
  const init = result.messages.find((m) => typeof m === 'object' && m !== null && 'result' in m) as
    { result?: { serverInfo?: { pid?: number } } } | undefined
  return init?.result?.serverInfo?.pid
}

for (const row of rows) {
  t.test(row.name, async (t) => {
    const from = gw.logs.length
    const { result, id, after } = await (row.run ?? callOnce(row.server))(t)
    const expectedId = row.id === undefined ? id : row.id

    t.equal(result.status, row.status, `HTTP ${row.status}`)
    t.ok(result.ms < BOUND_MS, `answered in ${Math.round(result.ms)} ms (< ${BOUND_MS}): never a hang`)

    const error = rpcError(result)
    t.equal(error?.jsonrpc, '2.0', 'a well-formed JSON-RPC error')
    t.equal(error?.error.code, row.code, `JSON-RPC code ${row.code}`)
    t.equal(typeof error?.error.message, 'string', 'with a message')
    t.equal(error?.id, expectedId, `carrying id ${JSON.stringify(expectedId)}`)
    if (row.message !== undefined) t.match(error?.error.message, row.message, `saying ${row.message}`)

    if (row.sse === true) {
      t.match(result.headers['content-type'], /^text\/event-stream/, 'the error arrives on the SSE stream')
      const last = result.messages.at(-1) as { id?: unknown; error?: unknown } | undefined
      t.ok(last !== undefined && last.id === id && last.error !== undefined, 'the stream ends with the error for the request')
    }
    if (row.exactBody !== undefined) t.equal(result.text, row.exactBody, 'the body is passed through byte for byte')
    for (const [name, value] of Object.entries(row.headers ?? {})) {
      if (value === null) t.equal(result.headers[name], undefined, `no ${name} header`)
      else t.equal(result.headers[name], value, `${name}: ${value}`)
    }

    t.notMatch(result.text, LEAK, 'no stack trace, internal path or system error in the body')
    t.notOk(result.text.includes(UPSTREAM_STACK) || result.text.includes('<html'), 'nothing of the upstream\'s error page')
    t.notOk(result.text.includes(`:${deadPort}`) || result.text.includes(faulty.origin), 'no upstream address')
    if (row.status >= 500) t.equal(result.headers['www-authenticate'], undefined, 'never an upstream challenge')

    const logged = await waitForLog(gw, row.server, from, row.log)
    t.ok(logged, row.log === 'warn' ? 'the failure is logged (warn or error)' : `the ${row.log} is logged`)
    await after?.()
  })
}

// ---------------------------------------------------------------------------------------------
// the same faults through the official SDK 1.x client: an error, never a hang

t.test('SDK client: a reset mid-stream rejects the call with -32603 after the progress it got', async (t) => {
  const client = new Client({ name: 'failures', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('reset-mid-sse'))))
  t.teardown(() => client.close())
  const progress: number[] = []
  const started = Date.now()
  const err = await client.callTool({ name: 'echo', arguments: { message: 'hi' } }, undefined,
    { onprogress: (p) => { progress.push(p.progress) }, timeout: 8_000 }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof McpError, 'the call fails with a JSON-RPC error')
  t.equal((err as McpError).code, -32603)
  t.same(progress, [1], 'after the progress that did arrive')
  t.ok(Date.now() - started < BOUND_MS, `in ${Date.now() - started} ms`)
})

t.test('SDK client: a stream that ends without the response rejects the call with -32603', async (t) => {
  const client = new Client({ name: 'failures', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('end-mid-sse'))))
  t.teardown(() => client.close())
  const started = Date.now()
  // the client's own timeout (3 s) stands in for "forever"
  const err = await client.callTool({ name: 'echo', arguments: { message: 'hi' } }, undefined, { timeout: 3_000 })
    .then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof McpError, 'the call fails')
  t.equal((err as McpError).code, -32603, 'with the gateway\'s error, not the client\'s own timeout (-32001)')
  t.ok(Date.now() - started < 3_000, `before the client gives up (${Date.now() - started} ms)`)
})

t.test('SDK client: the stdio child dies mid-call; reconnecting gets a fresh process', async (t) => {
  const first = new Client({ name: 'failures', version: '1.0.0' })
  await first.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('stdio-crash'))))
  const err = await first.callTool({ name: 'crash', arguments: {} }, undefined, { timeout: 8_000 }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof McpError, 'the call fails with a JSON-RPC error')
  t.equal((err as McpError).code, -32603)
  await first.close()
  const second = new Client({ name: 'failures', version: '1.0.0' })
  await second.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('stdio-crash'))))
  t.teardown(() => second.close())
  t.same((await second.listTools()).tools.map((tool) => tool.name), ['crash'], 'a new session works')
})
