// buildUpstreamRequestHeaders is where the client's token is stripped: each row a client header
// and whether it reaches the upstream; then the identity header a configured template sets, which
// no spelling of the client's may shadow (CGI/WSGI fold case and `-`/`_` into one variable).
import t from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { buildUpstreamRequestHeaders } from '../../src/upstream/headers.ts'
import type { Principal } from '../../src/authn/principal.ts'

const alice: Principal = { key: 'k', subject: 'alice-sub', issuer: 'https://idp.example.com', clientId: 'c', scopes: [], claims: { email: 'alice@example.com' }, anonymous: false, assertionJti: undefined }
const CONFIGURED = { 'X-Forwarded-User': '{{email}}', Authorization: 'Bearer upstream-secret' }
const build = (incoming: IncomingHttpHeaders, configured: Record<string, string> = CONFIGURED, trace?: Record<string, string>): Record<string, string> =>
  buildUpstreamRequestHeaders(incoming, configured, alice, trace)

t.test('what a client header becomes upstream', t => {
  // [name, value, forwarded?] — Node hands header names lowercased; some are sent as the client spelled them
  const rows: Array<[string, string, boolean]> = [
    ['authorization', 'Bearer client-token', false],
    ['cookie', 'sid=1', false],
    ['proxy-authorization', 'Basic eA==', false],
    ['dpop', 'eyJ…', false],
    ['host', 'gateway.example.com', false],
    ['mcp-session-id', 'sealed', false],
    ['connection', 'keep-alive', false],
    ['keep-alive', 'timeout=5', false],
    ['proxy-connection', 'keep-alive', false],
    ['te', 'trailers', false],
    ['trailer', 'x', false],
    ['transfer-encoding', 'chunked', false],
    ['upgrade', 'h2c', false],
    ['content-length', '10', false],
    ['content-encoding', 'gzip', false],
    ['expect', '100-continue', false],
    ['http2-settings', 'AAA', false],
    ['origin', 'https://evil.example', false],
    ['referer', 'https://evil.example/', false],
    ['accept-encoding', 'gzip', false],
    ['forwarded', 'for=1.2.3.4', false],
    ['x-forwarded-for', '1.2.3.4', false],
    ['x-forwarded-host', 'evil', false],
    ['x-forwarded-proto', 'http', false],
    ['x-real-ip', '1.2.3.4', false],
    // underscores: dropped, whatever they fold onto
    ['x_forwarded_user', 'mallory', false],
    ['x-forwarded_user', 'mallory', false],
    ['x_forwarded-user', 'mallory', false],
    ['x__forwarded-user', 'mallory', false],
    ['mcp_session_id', 'forged', false],
    ['http_authorization', 'Bearer x', false],
    ['x_custom', 'v', false],
    // forwarded
    ['accept', 'application/json, text/event-stream', true],
    ['content-type', 'application/json', true],
    ['mcp-protocol-version', '2025-06-18', true],
    ['last-event-id', '7', true],
    ['mcp-method', 'tools/call', true],
    ['mcp-name', 'echo', true],
    ['mcp-param-region', 'eu', true],
    ['mcp-param-user_id', '7', true], // 2026-07-28: an intermediary MUST forward Mcp-Param-*
    ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', true],
    ['user-agent', 'client/1.0', true],
    ['x-custom', 'v', true],
  ]
  for (const [name, value, forwarded] of rows) {
    const out = build({ [name]: value })
    if (forwarded) t.equal(out[name], value, `${name}: forwarded`)
    else t.notOk(Object.values(out).includes(value), `${name}: not forwarded`)
  }
  t.end()
})

t.test('Connection-listed headers are dropped, also under a folded spelling', t => {
  const out = build({ connection: 'close, X-Custom, mcp_param_a, Mcp-Param-C', 'x-custom': 'v', 'mcp-param-a': 'x', 'mcp-param-b': 'y', mcp_param_c: 'z' })
  t.same(Object.keys(out).sort(), ['authorization', 'mcp-param-b', 'x-forwarded-user'])
  t.same(Object.keys(build({ connection: 'Authorization, X-Forwarded-User' })).sort(), ['authorization', 'x-forwarded-user'], 'the gateway\'s own headers stay')
  t.end()
})

t.test('exactly one identity header, the gateway\'s, whatever the client spelled', t => {
  const spellings: IncomingHttpHeaders[] = [
    { 'x-forwarded-user': 'mallory' }, // X-FORWARDED-USER arrives lowercased
    { x_forwarded_user: 'mallory' },
    { 'x-forwarded_user': 'mallory' },
    { x_forwarded_user: 'mallory', 'x-forwarded-user': 'eve' },
    { 'x__forwarded-user': 'mallory' },
    { authorization: 'Bearer client-token', x_authorization: 'Bearer forged' },
  ]
  for (const incoming of spellings) {
    const out = build(incoming)
    const identity = Object.entries(out).filter(([name]) => name.toLowerCase().replaceAll('_', '-').replace(/-+/g, '-') === 'x-forwarded-user')
    t.same(identity, [['x-forwarded-user', 'alice@example.com']], JSON.stringify(incoming))
    t.equal(out.authorization, 'Bearer upstream-secret', 'the configured credential, not the client\'s')
    t.notOk(Object.values(out).some((v) => /mallory|eve|client-token|forged/.test(v)), 'no client value survives')
  }
  t.end()
})

t.test('a configured name with `_` also claims its `-` spelling', t => {
  const out = build({ 'x-user': 'mallory', x_user: 'eve', 'x-other': 'ok' }, { X_User: '{{sub}}' })
  t.same(out, { x_user: 'alice-sub', 'x-other': 'ok' })
  t.end()
})

t.test('the gateway\'s trace context replaces the client\'s', t => {
  const out = build({ traceparent: 'client', tracestate: 'client', trace_parent: 'x' }, {}, { traceparent: 'gw', tracestate: 'gw' })
  t.same(out, { traceparent: 'gw', tracestate: 'gw' })
  t.end()
})

t.test('a claim the principal lacks refuses the request', t => {
  t.throws(() => build({}, { 'X-Tenant': '{{tenant}}' }), { code: 'PORTCULLIS_ERR_UNAUTHENTICATED' })
  t.end()
})

// ---------------------------------------------------------------------------------------------
// Hostile header sets, as a client puts them on the wire: each is parsed by Node's own HTTP
// server (so case, duplicates and framing are what the gateway really receives in
// request.headers), then built into the upstream request. Every row asserts the complete set of
// headers the upstream is sent — the client headers that must pass, the configured credential,
// the gateway's trace context — so a header that slips through fails the row. Each row carries
// at least one header that only the stripping keeps out, and runs under two configurations: the
// upstream credential in Authorization (where an override alone would hide a leak of the
// client's token) and in another header (where nothing but the stripping stops it).

interface WireRow {
  readonly name: string
  /** header lines after the request line; Host and Content-Length are added unless given */
  readonly send: ReadonlyArray<readonly [string, string]>
  /** a chunked body, for rows that send Transfer-Encoding themselves */
  readonly chunked?: boolean
  /** exactly the client headers that reach the upstream, as Node hands them over */
  readonly passes: Readonly<Record<string, string>>
  /** the configurations to run under (default both) */
  readonly configs?: ReadonlyArray<keyof typeof CONFIGS>
  /** the gateway's trace context: on (default) or off (tracing disabled: the client's passes as it is) */
  readonly trace?: 'on' | 'off'
}

const UPSTREAM_TOKEN = 'Bearer upstream-secret-7f3a'
/** each configuration: the upstream's `headers` config, and what it puts on the upstream request for alice */
const CONFIGS = {
  bearer: { config: { Authorization: UPSTREAM_TOKEN, 'X-Forwarded-User': '{{email}}' }, sent: { authorization: UPSTREAM_TOKEN, 'x-forwarded-user': 'alice@example.com' } },
  apiKey: { config: { 'X-Api-Key': 'upstream-key-7f3a' }, sent: { 'x-api-key': 'upstream-key-7f3a' } },
  /** a gateway-set Mcp-Param-*: the one client header name with `_` that may pass, unless the gateway sets it */
  tenantParam: { config: { Authorization: UPSTREAM_TOKEN, 'Mcp-Param-Tenant': 'acme' }, sent: { authorization: UPSTREAM_TOKEN, 'mcp-param-tenant': 'acme' } },
} as const
const GW_TRACE = { traceparent: '00-11111111111111111111111111111111-2222222222222222-01', tracestate: 'portcullis=gw' }
const CLIENT_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

/** what every MCP POST carries, and passes */
const MCP: ReadonlyArray<readonly [string, string]> = [['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'], ['MCP-Protocol-Version', '2025-11-25']]
const MCP_PASSES = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' }
const TOKEN = 'Bearer client-token-9c1e'

const wireRows: WireRow[] = [
  // the client's token, in every spelling Node folds into one
  { name: 'Authorization', send: [...MCP, ['Authorization', TOKEN]], passes: MCP_PASSES },
  { name: 'AUTHORIZATION in capitals', send: [...MCP, ['AUTHORIZATION', TOKEN]], passes: MCP_PASSES },
  { name: 'aUtHoRiZaTiOn in mixed case', send: [...MCP, ['aUtHoRiZaTiOn', TOKEN]], passes: MCP_PASSES },
  { name: 'Authorization twice, two tokens', send: [...MCP, ['Authorization', TOKEN], ['authorization', 'Bearer second-token']], passes: MCP_PASSES },
  { name: 'Authorization: Basic', send: [...MCP, ['Authorization', 'Basic YWxpY2U6cHc=']], passes: MCP_PASSES },
  { name: 'a DPoP-bound token and its proof', send: [...MCP, ['Authorization', 'DPoP client-token-9c1e'], ['DPoP', 'eyJhbGciOiJFUzI1NiJ9.proof']], passes: MCP_PASSES },
  { name: 'the CGI spelling HTTP_AUTHORIZATION, and X_Authorization', send: [...MCP, ['HTTP_AUTHORIZATION', TOKEN], ['X_Authorization', TOKEN]], passes: MCP_PASSES },
  { name: 'Proxy-Authorization, twice', send: [...MCP, ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'], ['Proxy-Authorization', 'Basic b3RoZXI6c2VjcmV0']], passes: MCP_PASSES },
  { name: 'Cookie, twice (Node joins them)', send: [...MCP, ['Cookie', 'sid=client-session'], ['cookie', 'csrf=1']], passes: MCP_PASSES },
  // where the client says it is
  { name: 'Forwarded and the X-Forwarded-* family', send: [...MCP, ['Forwarded', 'for=203.0.113.9;proto=https'], ['X-Forwarded-For', '203.0.113.9'], ['X-Forwarded-For', '10.0.0.1'], ['X-Forwarded-Host', 'admin.internal'], ['X-Forwarded-Proto', 'https'], ['X-Real-IP', '10.0.0.1']], passes: MCP_PASSES },
  { name: 'the X-Forwarded-* family with underscores', send: [...MCP, ['X_Forwarded_For', '10.0.0.1'], ['x_real_ip', '10.0.0.1'], ['X-Forwarded_Host', 'admin.internal']], passes: MCP_PASSES },
  { name: 'a forged identity header, in both spellings', send: [...MCP, ['X-Forwarded-User', 'mallory@example.com'], ['X_Forwarded_User', 'eve@example.com']], passes: MCP_PASSES, configs: ['bearer'] },
  { name: 'an identity header where the gateway sets none: passes, but not its underscore twin', send: [...MCP, ['X-Forwarded-User', 'declared@example.com'], ['X_Forwarded_User', 'eve@example.com']], passes: { ...MCP_PASSES, 'x-forwarded-user': 'declared@example.com' }, configs: ['apiKey'] },
  // the session, the host
  { name: 'the client\'s (sealed) Mcp-Session-Id, twice', send: [...MCP, ['Mcp-Session-Id', 'sealed-by-gateway'], ['MCP-SESSION-ID', 'another']], passes: MCP_PASSES },
  { name: 'mcp_session_id with underscores', send: [...MCP, ['mcp_session_id', 'forged-upstream-session']], passes: MCP_PASSES },
  { name: 'Host, twice', send: [['Host', 'gateway.example.com'], ['Host', 'upstream.internal'], ...MCP], passes: MCP_PASSES },
  // hop-by-hop, and headers named in Connection
  { name: 'Connection naming a custom header', send: [...MCP, ['Connection', 'close, X-Hop'], ['X-Hop', 'for-the-gateway-only'], ['X-End-To-End', 'kept']], passes: { ...MCP_PASSES, 'x-end-to-end': 'kept' } },
  { name: 'Connection naming a header by its underscore spelling', send: [...MCP, ['Connection', 'x_hop'], ['X-Hop', 'for-the-gateway-only']], passes: MCP_PASSES },
  { name: 'Connection naming Accept and Mcp-Protocol-Version', send: [...MCP, ['Connection', 'Accept, MCP-Protocol-Version']], passes: { 'content-type': 'application/json' } },
  { name: 'Connection naming the gateway\'s own headers: they stay', send: [...MCP, ['Connection', 'Authorization, X-Forwarded-User, X-Api-Key, traceparent'], ['Authorization', TOKEN]], passes: MCP_PASSES },
  { name: 'Connection: keep-alive and Keep-Alive', send: [...MCP, ['Connection', 'keep-alive'], ['Keep-Alive', 'timeout=5, max=100']], passes: MCP_PASSES },
  { name: 'Proxy-Connection', send: [...MCP, ['Proxy-Connection', 'keep-alive']], passes: MCP_PASSES },
  { name: 'TE: trailers, named in Connection', send: [...MCP, ['TE', 'trailers'], ['Connection', 'TE']], passes: MCP_PASSES },
  { name: 'Upgrade to h2c with HTTP2-Settings', send: [...MCP, ['Upgrade', 'h2c'], ['Connection', 'Upgrade, HTTP2-Settings'], ['HTTP2-Settings', 'AAMAAABkAAQAAP__']], passes: MCP_PASSES },
  { name: 'Upgrade: websocket', send: [...MCP, ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']], passes: { ...MCP_PASSES, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } },
  // framing
  { name: 'Transfer-Encoding: chunked with a Trailer', send: [...MCP, ['Transfer-Encoding', 'chunked'], ['Trailer', 'X-Checksum']], chunked: true, passes: MCP_PASSES },
  { name: 'Content-Length, Content-Encoding and Expect', send: [...MCP, ['Content-Length', '0'], ['Content-Encoding', 'identity'], ['Expect', '100-continue']], passes: MCP_PASSES },
  // what a browser adds
  { name: 'Origin, Referer and Accept-Encoding', send: [...MCP, ['Origin', 'https://evil.example'], ['Referer', 'https://evil.example/page'], ['Accept-Encoding', 'gzip, br']], passes: MCP_PASSES },
  // what must pass, next to what must not
  { name: 'a GET resuming a stream: Last-Event-ID passes, the token does not', send: [['Accept', 'text/event-stream'], ['Last-Event-ID', 'stream-1.42'], ['MCP-Protocol-Version', '2025-11-25'], ['Authorization', TOKEN]], passes: { accept: 'text/event-stream', 'last-event-id': 'stream-1.42', 'mcp-protocol-version': '2025-11-25' } },
  { name: '2026-07-28 routing headers and Mcp-Param-* pass (also with `_`), a cookie does not', send: [...MCP, ['Mcp-Method', 'tools/call'], ['Mcp-Name', 'echo'], ['Mcp-Param-Region', 'eu'], ['Mcp-Param-User_Id', '7'], ['Cookie', 'sid=1']], passes: { ...MCP_PASSES, 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-param-region': 'eu', 'mcp-param-user_id': '7' } },
  { name: 'duplicated end-to-end headers are joined; the token is not', send: [...MCP, ['X-Request-Tag', 'a'], ['X-Request-Tag', 'b'], ['User-Agent', 'client/1.0'], ['Authorization', TOKEN]], passes: { ...MCP_PASSES, 'x-request-tag': 'a, b', 'user-agent': 'client/1.0' } },
  { name: 'names with underscores are dropped, their hyphen twins pass', send: [...MCP, ['X_Custom', 'underscored'], ['X-Custom', 'hyphenated'], ['Trace_Parent', 'forged']], passes: { ...MCP_PASSES, 'x-custom': 'hyphenated' } },
  { name: 'an Mcp-Param-* the gateway sets: the client\'s, in either spelling, does not pass', send: [...MCP, ['Mcp_Param_Tenant', 'evil-tenant'], ['Mcp-Param-Tenant', 'evil-tenant'], ['Authorization', TOKEN]], passes: MCP_PASSES, configs: ['tenantParam'] },
  // the trace context
  { name: 'the client\'s traceparent and tracestate are replaced by the gateway\'s; baggage passes', send: [...MCP, ['traceparent', CLIENT_TRACEPARENT], ['tracestate', 'client=1'], ['baggage', 'tenant=acme'], ['Cookie', 'sid=1']], passes: { ...MCP_PASSES, baggage: 'tenant=acme' } },
  { name: 'tracing off: the client\'s traceparent passes as it is; its token does not', send: [...MCP, ['traceparent', CLIENT_TRACEPARENT], ['Authorization', TOKEN]], passes: { ...MCP_PASSES, traceparent: CLIENT_TRACEPARENT }, trace: 'off' },
]

/** A real node:http server (no `upgrade` listener, as Fastify's): what it hands over as request.headers. */
const parser = createServer((req, res) => {
  pendingHeaders.shift()?.(req.headers)
  req.resume()
  req.on('end', () => res.writeHead(204).end())
})
const pendingHeaders: Array<(headers: IncomingHttpHeaders) => void> = []
parser.listen(0, '127.0.0.1')
await once(parser, 'listening')
t.teardown(() => { parser.closeAllConnections(); parser.close() })

async function asNodeParsesIt (row: WireRow): Promise<IncomingHttpHeaders> {
  const lines = [...row.send]
  if (!lines.some(([n]) => n.toLowerCase() === 'host')) lines.unshift(['Host', 'gateway.example.com'])
  if (row.chunked !== true && !lines.some(([n]) => n.toLowerCase() === 'content-length')) lines.push(['Content-Length', '2'])
  const body = row.chunked === true ? '2\r\n{}\r\n0\r\nX-Checksum: 1\r\n\r\n' : lines.some(([n, v]) => n === 'Content-Length' && v === '0') ? '' : '{}'
  const headers = new Promise<IncomingHttpHeaders>((resolve) => pendingHeaders.push(resolve))
  const socket = connect((parser.address() as AddressInfo).port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`POST /mcp/s HTTP/1.1\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${body}`)
  const timeout = setTimeout(() => pendingHeaders.shift()?.({ 'x-test-error': 'Node refused the request' }), 2_000)
  try {
    return await headers
  } finally {
    clearTimeout(timeout)
    socket.destroy()
  }
}

t.test('hostile header sets from the wire: exactly what reaches the upstream', async (t) => {
  t.ok(wireRows.length >= 25, `${wireRows.length} rows`)
  for (const row of wireRows) {
    const incoming = await asNodeParsesIt(row)
    for (const name of row.configs ?? ['bearer', 'apiKey'] as const) {
      const { config, sent } = CONFIGS[name]
      const trace = row.trace === 'off' ? {} : GW_TRACE
      const out = buildUpstreamRequestHeaders(incoming, config, alice, trace)
      t.strictSame(out, { ...row.passes, ...sent, ...trace }, `${row.name} (upstream credential: ${name})`)
      const leaked = Object.values(out).filter((v) => /client-token|second-token|YWxpY2U6cHc|mallory|eve@|sid=|cHJveHk6|forged|sealed|evil|203\.0\.113|10\.0\.0\.1|for-the-gateway/.test(v))
      t.same(leaked, [], `${row.name} (${name}): no client credential or claim in any value`)
    }
  }
})

t.test('values Node hands over as arrays: dropped or joined like any other', async (t) => {
  const rows: Array<[string, IncomingHttpHeaders, Record<string, string>]> = [
    ['authorization as an array', { authorization: [TOKEN, 'Bearer second-token'] as unknown as string, accept: 'application/json' }, { accept: 'application/json' }],
    ['cookie and x-forwarded-for as arrays', { cookie: ['a=1', 'b=2'] as unknown as string, 'x-forwarded-for': ['1.2.3.4', '5.6.7.8'] as unknown as string }, {}],
    ['set-cookie (Node\'s one array header) passes joined', { 'set-cookie': ['a=1', 'b=2'], 'proxy-authorization': 'Basic eA==' }, { 'set-cookie': 'a=1, b=2' }],
    ['an end-to-end header as an array passes joined; its `_` twin does not', { 'x-tag': ['a', 'b'] as unknown as string, x_tag: ['c'] as unknown as string }, { 'x-tag': 'a, b' }],
  ]
  for (const [name, incoming, passes] of rows) {
    for (const configName of ['bearer', 'apiKey'] as const) {
      const { config, sent } = CONFIGS[configName]
      t.strictSame(buildUpstreamRequestHeaders(incoming, config, alice, GW_TRACE), { ...passes, ...sent, ...GW_TRACE }, `${name} (${configName})`)
    }
  }
})
