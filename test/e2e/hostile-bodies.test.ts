// Hostile requests (design.md §5 "Exact answers", protocol.md §5.6 and §7.4 PO-5/PO-6): each is
// sent with raw HTTP to the real gateway in front of a recording upstream, and must get the exact
// HTTP status and JSON-RPC error code of src/errors.ts — and must never reach the upstream: the
// recorder sees nothing. Positive controls show that what does pass is forwarded as the
// re-serialisation of the parsed message, never the bytes that came in.
import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import {
  ACCEPT_BOTH, LEAK, POST_HEADERS, dropClientConnections, initialize, rawHttp, rawRequest, rpcError, send, toolsCall, type HttpResult,
} from '../helpers/mcp-http.ts'

const ORIGIN = 'https://app.example.test' // publicUrl's origin: the one browser origin allowed
const MAX_BODY = 16_384

const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
const gw = await startGateway(`
publicUrl: ${ORIGIN}
limits: { maxBodyBytes: ${MAX_BODY} }
servers:
  echo:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(async () => {
  await dropClientConnections() // a pooled keep-alive connection would hold gw.close() for the drain timeout
  await gw.close()
  await upstream.close()
})
const url = gw.mcpUrl('echo')

/** a 2026-07-28 request body: the revision is named in _meta, and must agree with the headers */
function modernCall (name: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name,
      arguments: { message: 'hi' },
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
    },
  })
}

const call = (params: string, id = '1'): string => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":${params}}`
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`
const batchOf = (n: number): string => JSON.stringify(Array.from({ length: n }, (_, i) => JSON.parse(toolsCall(i + 1, 'echo', { message: 'x' }))))

/** POST these bytes with the usual headers (plus/over `extra`) */
const post = (body: string | Buffer, extra: Record<string, string> = {}) => async (): Promise<HttpResult> =>
  await send(url, { headers: { ...POST_HEADERS, ...extra }, body })

/** the same over a raw socket, for header combinations undici refuses or normalises */
const raw = (method: string, target: string, headers: [string, string][], body: string | Buffer = '') => async (): Promise<HttpResult> => {
  const started = performance.now()
  const res = await rawHttp(target, rawRequest(method, target, [...headers, ['Connection', 'close']], body))
  let messages: unknown[] = []
  try { messages = [JSON.parse(res.body)] } catch { /* no JSON body */ }
  return { status: res.status, headers: res.headers, text: res.body, ms: performance.now() - started, messages }
}

interface Row {
  readonly name: string
  readonly send: () => Promise<HttpResult>
  readonly status: number
  /** the JSON-RPC error code of the body; null: no JSON-RPC body expected */
  readonly code: number | null
  /** the id the error must carry (default null: the request's id could not be known) */
  readonly id?: string | number | null
  /** response headers that must match */
  readonly headers?: Readonly<Record<string, string | RegExp>>
}

const rows: Row[] = [
  // --- not JSON: -32700
  { name: 'invalid JSON', send: post('{"jsonrpc":"2.0","id":1,method:"tools/call"}'), status: 400, code: -32700 },
  { name: 'truncated JSON', send: post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ec'), status: 400, code: -32700 },
  {
    name: 'invalid UTF-8 bytes in a string',
    send: post(Buffer.concat([Buffer.from(call('{"name":"echo","arguments":{"message":"')), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}}')])),
    status: 400,
    code: -32700,
  },
  { name: 'a byte order mark before the JSON', send: post(`\uFEFF${toolsCall(1, 'echo', { message: 'x' })}`), status: 400, code: -32700 },
  { name: 'trailing bytes after the JSON value', send: post(`${toolsCall(1, 'echo', { message: 'x' })} {}`), status: 400, code: -32700 },
  { name: 'a raw control character inside a string', send: post(call('{"name":"echo","arguments":{"message":"a\u0001b"}}')), status: 400, code: -32700 },
  { name: 'empty body', send: post(''), status: 400, code: -32700 },

  // --- JSON, but refused: -32600
  { name: 'lone surrogate escape', send: post(call('{"name":"echo","arguments":{"message":"\\ud800"}}')), status: 400, code: -32600 },
  { name: 'a number that overflows to Infinity', send: post(call('{"name":"add","arguments":{"a":1e400,"b":1}}')), status: 400, code: -32600 },
  { name: 'jsonrpc: "1.0"', send: post('{"jsonrpc":"1.0","id":1,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'missing jsonrpc', send: post('{"id":1,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'object id', send: post('{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'boolean id', send: post('{"jsonrpc":"2.0","id":true,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'null id on a request', send: post('{"jsonrpc":"2.0","id":null,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'float id', send: post('{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'id beyond 2^53', send: post('{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list"}'), status: 400, code: -32600 },
  { name: 'non-string method', send: post('{"jsonrpc":"2.0","id":1,"method":42}'), status: 400, code: -32600 },
  { name: 'empty method', send: post('{"jsonrpc":"2.0","id":1,"method":""}'), status: 400, code: -32600 },
  { name: 'params as an array', send: post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["echo",{"message":"x"}]}'), status: 400, code: -32600 },
  { name: 'result and error together', send: post('{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}'), status: 400, code: -32600 },
  { name: 'a response carrying method', send: post('{"jsonrpc":"2.0","id":1,"method":"tools/call","result":{"content":[]}}'), status: 400, code: -32600 },
  { name: 'a result with a null id', send: post('{"jsonrpc":"2.0","id":null,"result":{}}'), status: 400, code: -32600 },
  { name: 'a JSON string, not an object', send: post('"tools/call"'), status: 400, code: -32600 },
  { name: 'duplicate key at the top level (method)', send: post('{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"secret"}}'), status: 400, code: -32600 },
  { name: 'duplicate key in params (name)', send: post(call('{"name":"echo","name":"secret","arguments":{}}')), status: 400, code: -32600 },
  { name: 'duplicate key inside arguments', send: post(call('{"name":"echo","arguments":{"message":"a","message":"b"}}')), status: 400, code: -32600 },
  { name: 'duplicate key via a unicode escape ("\\u006eame")', send: post(call('{"name":"echo","\\u006eame":"secret","arguments":{}}')), status: 400, code: -32600 },
  { name: 'duplicate key differing only in case ("Name")', send: post(call('{"name":"echo","Name":"secret","arguments":{}}')), status: 400, code: -32600 },
  { name: '__proto__ key', send: post(call('{"name":"echo","arguments":{"__proto__":{"isAdmin":true},"message":"x"}}')), status: 400, code: -32600 },
  { name: 'nesting deeper than the limit (64)', send: post(call(`{"name":"echo","arguments":{"message":"x","deep":${nested(70)}}}`)), status: 400, code: -32600 },

  // --- batches
  {
    name: 'a batch when MCP-Protocol-Version is 2025-06-18',
    send: post(batchOf(2), { 'mcp-protocol-version': '2025-06-18' }),
    status: 400,
    code: -32600,
  },
  { name: 'an empty batch', send: post('[]'), status: 400, code: -32600 },
  { name: 'a batch containing initialize', send: post(`[${initialize(1)},${toolsCall(2, 'echo', { message: 'x' })}]`), status: 400, code: -32600 },
  { name: 'a batch of 101', send: post(batchOf(101)), status: 400, code: -32600 },
  { name: 'a batch with one malformed element', send: post(`[${toolsCall(1, 'echo', { message: 'x' })},{"jsonrpc":"2.0","id":true,"method":"x"}]`), status: 400, code: -32600 },

  // --- well-formed but invalid params: -32602, and the request's id is known
  {
    name: 'tools/call without a name',
    send: post('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"message":"x"}}}'),
    status: 400,
    code: -32602,
    id: 7,
  },
  { name: 'tools/call with a non-string name', send: post(call('{"name":["echo"],"arguments":{}}', '8')), status: 400, code: -32602, id: 8 },
  { name: 'a tools/call notification without a name', send: post('{"jsonrpc":"2.0","method":"tools/call","params":{}}'), status: 400, code: -32602 },

  // --- framing and headers
  { name: `body over limits.maxBodyBytes (${MAX_BODY})`, send: post(toolsCall(1, 'echo', { message: 'x'.repeat(MAX_BODY) })), status: 413, code: -32600 },
  { name: 'content-type: text/plain', send: post(toolsCall(1, 'echo', { message: 'x' }), { 'content-type': 'text/plain' }), status: 415, code: -32600 },
  { name: 'content-type: application/x-www-form-urlencoded', send: post('a=1', { 'content-type': 'application/x-www-form-urlencoded' }), status: 415, code: -32600 },
  { name: 'content-encoding: gzip', send: post(toolsCall(1, 'echo', { message: 'x' }), { 'content-encoding': 'gzip' }), status: 415, code: -32600 },
  {
    name: 'no content-type',
    send: raw('POST', url, [['Accept', ACCEPT_BOTH]], toolsCall(1, 'echo', { message: 'x' })),
    status: 415,
    code: -32600,
  },
  { name: 'Accept: application/json only, on POST', send: post(toolsCall(1, 'echo', { message: 'x' }), { accept: 'application/json' }), status: 406, code: -32600 },
  { name: 'no Accept on POST', send: raw('POST', url, [['Content-Type', 'application/json']], toolsCall(1, 'echo', { message: 'x' })), status: 406, code: -32600 },
  { name: 'GET without Accept: text/event-stream', send: async () => await send(url, { method: 'GET', headers: { accept: 'application/json' } }), status: 406, code: -32600 },
  { name: 'unknown server path', send: async () => await send(gw.mcpUrl('nope'), { body: toolsCall(1, 'echo', { message: 'x' }) }), status: 404, code: -32600 },
  { name: 'a server name of Object.prototype ("constructor")', send: async () => await send(gw.mcpUrl('constructor'), { body: toolsCall(1, 'echo', { message: 'x' }) }), status: 404, code: -32600 },
  {
    name: 'PUT',
    send: async () => await send(url, { method: 'PUT', body: toolsCall(1, 'echo', { message: 'x' }) }),
    status: 405,
    code: -32600,
    headers: { allow: 'GET, POST, DELETE' },
  },
  { name: 'unknown MCP-Protocol-Version header', send: post(toolsCall(1, 'echo', { message: 'x' }), { 'mcp-protocol-version': '2099-01-01' }), status: 400, code: -32600 },
  {
    name: 'a repeated Mcp-Session-Id header',
    send: async () => await send(url, {
      headers: ['content-type', 'application/json', 'accept', ACCEPT_BOTH, 'mcp-session-id', 'aaaa', 'mcp-session-id', 'bbbb'],
      body: toolsCall(1, 'echo', { message: 'x' }),
    }),
    status: 400,
    code: -32600,
  },
  { name: 'an unknown session id', send: post(toolsCall(1, 'echo', { message: 'x' }), { 'mcp-session-id': 'no-such-session' }), status: 404, code: -32001 },
  { name: 'a session id with a space (not visible ASCII)', send: post(toolsCall(1, 'echo', { message: 'x' }), { 'mcp-session-id': 'a b' }), status: 404, code: -32001 },
  {
    name: '2026-07-28: Mcp-Name header naming another tool than the body',
    send: post(modernCall('echo'), { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'secret' }),
    status: 400,
    code: -32020,
    id: 1,
  },
  {
    name: '2026-07-28: body revision without the header',
    send: post(modernCall('echo'), { 'mcp-method': 'tools/call', 'mcp-name': 'echo' }),
    status: 400,
    code: -32020,
    id: 1,
  },
  { name: 'Origin: https://evil.example', send: post(toolsCall(1, 'echo', { message: 'x' }), { origin: 'https://evil.example' }), status: 403, code: -32600 },
  { name: 'Origin: the allowed origin with a trailing slash', send: post(toolsCall(1, 'echo', { message: 'x' }), { origin: `${ORIGIN}/` }), status: 403, code: -32600 },
  { name: 'Origin: null (sandboxed frame)', send: post(toolsCall(1, 'echo', { message: 'x' }), { origin: 'null' }), status: 403, code: -32600 },
  {
    name: 'OPTIONS preflight from the allowed origin',
    send: async () => await send(url, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-session-id' },
    }),
    status: 204,
    code: null,
    headers: {
      'access-control-allow-origin': ORIGIN,
      'access-control-allow-methods': /\bPOST\b/,
      'access-control-allow-headers': /(?=.*\bAuthorization\b)(?=.*\bMcp-Session-Id\b)(?=.*\bMCP-Protocol-Version\b)(?=.*\bContent-Type\b)/,
      'access-control-expose-headers': /\bMcp-Session-Id\b/,
    },
  },
  {
    name: 'OPTIONS preflight from a bad origin',
    send: async () => await send(url, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } }),
    status: 403,
    code: -32600,
  },
]

t.ok(rows.length >= 30, `${rows.length} hostile requests`)

for (const row of rows) {
  t.test(row.name, async (t) => {
    const before = upstream.requests.length
    const result = await row.send()
    t.equal(result.status, row.status, `HTTP ${row.status}`)
    if (row.code === null) {
      t.equal(result.text, '', 'no body')
    } else {
      const error = rpcError(result)
      t.equal(error?.jsonrpc, '2.0', 'a JSON-RPC error body')
      t.equal(error?.error.code, row.code, `JSON-RPC code ${row.code}`)
      t.equal(error?.id, row.id ?? null, `id ${JSON.stringify(row.id ?? null)}`)
      t.match(result.headers['content-type'], /^application\/json/)
    }
    for (const [name, value] of Object.entries(row.headers ?? {})) {
      if (typeof value === 'string') t.equal(result.headers[name], value, `${name}: ${value}`)
      else t.match(result.headers[name], value, `${name} ~ ${value}`)
    }
    t.notMatch(result.text, LEAK, 'no stack trace or internal path')
    t.equal(upstream.requests.length, before, 'the upstream received nothing')
  })
}

// ---------------------------------------------------------------------------------------------
// positive controls: what passes is forwarded as JSON.stringify(parsed), not the bytes received

t.test('a 2025-03-26 batch of two tools/call: forwarded, both elements re-serialised', async (t) => {
  const sent = `[
    { "jsonrpc" : "2.0", "id" : 1, "method" : "tools/call", "params" : { "name" : "echo", "arguments" : { "message" : "one" } } } ,
    {"params":{"arguments":{"b":2,"a":1},"name":"add"},"method":"tools/call","id":"two","jsonrpc":"2.0"}
  ]`
  const before = upstream.requests.length
  const result = await send(url, { headers: POST_HEADERS, body: sent })
  t.equal(result.status, 200)
  t.equal(upstream.requests.length, before + 1, 'one upstream request')
  const forwarded = upstream.requests.at(-1)?.body
  t.equal(forwarded, JSON.stringify(JSON.parse(sent)), 'the upstream got the compact re-serialisation')
  t.not(forwarded, sent, 'not the original bytes')
  t.match(result.messages, [{ id: 1, result: { content: [{ text: 'one' }] } }, { id: 'two', result: { content: [{ text: '3' }] } }],
    'both answered')
})

t.test('a message with extra whitespace and unusual key order: forwarded compactly, key order kept', async (t) => {
  const sent = '\n  {\t"params": {"arguments": {"message": "spaced  out"}, "name": "echo"},\r\n "id": 3, "method": "tools/call", "jsonrpc": "2.0"}  \n'
  const before = upstream.requests.length
  const result = await send(url, { headers: POST_HEADERS, body: sent })
  t.equal(result.status, 200)
  t.equal(upstream.requests.length, before + 1)
  t.equal(upstream.requests.at(-1)?.body, '{"params":{"arguments":{"message":"spaced  out"},"name":"echo"},"id":3,"method":"tools/call","jsonrpc":"2.0"}')
  t.match(result.messages, [{ id: 3, result: { content: [{ text: 'spaced  out' }] } }])
})

t.test('escapes are forwarded decoded and re-encoded: \\u0065cho is "echo"', async (t) => {
  const sent = call('{"n\\u0061me":"\\u0065cho","arguments":{"message":"caf\\u00e9 \\ud83d\\ude00"}}', '4')
  const before = upstream.requests.length
  const result = await send(url, { headers: POST_HEADERS, body: sent })
  t.equal(result.status, 200)
  t.equal(upstream.requests.length, before + 1)
  t.equal(upstream.requests.at(-1)?.body, JSON.stringify(JSON.parse(sent)))
  t.match(upstream.requests.at(-1)?.body, /"name":"echo".*"café 😀"/)
})

t.test('an allowed Origin passes, with CORS headers', async (t) => {
  const before = upstream.requests.length
  const result = await send(url, { headers: { ...POST_HEADERS, origin: ORIGIN }, body: toolsCall(5, 'echo', { message: 'from a browser' }) })
  t.equal(result.status, 200)
  t.equal(upstream.requests.length, before + 1, 'forwarded')
  t.equal(result.headers['access-control-allow-origin'], ORIGIN)
  t.match(result.headers['access-control-expose-headers'], /\bMcp-Session-Id\b/)
  t.match(result.headers.vary, /\bOrigin\b/)
  t.match(result.messages, [{ id: 5, result: { content: [{ text: 'from a browser' }] } }])
})

t.test('a notification passes: 202, forwarded', async (t) => {
  const before = upstream.requests.length
  const result = await send(url, { headers: POST_HEADERS, body: '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}' })
  t.equal(result.status, 202)
  t.equal(upstream.requests.length, before + 1)
})
