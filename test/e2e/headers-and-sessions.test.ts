// The header table of protocol.md §5.5 and the session rules of §5.2, through the real gateway
// to real upstreams that record what they receive: the client's credentials and hop-by-hop
// headers never cross; configured upstream headers are added and win; MCP headers and trace
// context are forwarded; an upstream's cookies and challenges never reach the client, and its
// session id reaches it only sealed (the upstream is sent its own id back); sessions are bound to the server that opened them and end with DELETE; SSE
// answers carry the no-buffering headers; a client that goes away cancels the upstream request.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream, type RecordedRequest } from '../helpers/recording-upstream.ts'
import { LEAKY_SESSION, startFaultyUpstream } from '../helpers/faulty-upstream.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'
import { ACCEPT_BOTH, POST_HEADERS, dropClientConnections, initialize, rawHttp, rawRequest, rpcError, send, toolsCall } from '../helpers/mcp-http.ts'

const ORIGIN = 'https://app.example.test'
const UPSTREAM_TOKEN = 'upstream-token-from-env-1234'
const UPSTREAM_KEY = 'upstream-key-from-env-5678'
const CLIENT_TOKEN = 'client-access-token-SECRET-0001'
const CLIENT_COOKIE = 'client-cookie-SECRET-0002'
const crashScript = fileURLToPath(new URL('../fixtures/crash-on-call.mjs', import.meta.url))

const recorder = await startRecordingUpstream()
const faulty = await startFaultyUpstream()
const gw = await startGateway(`
publicUrl: ${ORIGIN}
servers:
  rec:
    upstream:
      url: ${recorder.url}
      headers:
        Authorization: Bearer \${UPSTREAM_TOKEN}
        X-Api-Key: \${UPSTREAM_KEY}
        X-Tenant: configured-tenant
    auth: none
    tools: [{ allow: ["*"] }]
  rec2:
    upstream: { url: ${recorder.url} }
    auth: none
    tools: [{ allow: ["*"] }]
  leaky:
    upstream: { url: ${faulty.url('leaky-headers')} }
    auth: none
    tools: [{ allow: ["*"] }]
  slow:
    upstream: { url: ${faulty.url('slow-sse')} }
    auth: none
    tools: [{ allow: ["*"] }]
  silent:
    upstream: { url: ${faulty.url('silent-sse')} }
    auth: none
    tools: [{ allow: ["*"] }]
  hang:
    upstream: { url: ${faulty.url('hang')} }
    auth: none
    tools: [{ allow: ["*"] }]
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(crashScript)}] }
    auth: none
    tools: [{ allow: ["*"] }]
`, { UPSTREAM_TOKEN, UPSTREAM_KEY })
t.teardown(async () => {
  await dropClientConnections() // a pooled keep-alive connection would hold gw.close() for the drain timeout
  await gw.close()
  await recorder.close()
  await faulty.close()
})

/** the upstream request the last gateway request became */
function lastUpstreamRequest (t: Test, before: number): RecordedRequest {
  t.equal(recorder.requests.length, before + 1, 'exactly one upstream request')
  const last = recorder.requests.at(-1)
  if (last === undefined) throw new Error('the upstream received nothing')
  return last
}

/** open a session on `server`; returns its id */
async function openSession (server: string): Promise<string> {
  const res = await send(gw.mcpUrl(server), { body: initialize(1) })
  if (res.status !== 200 || typeof res.headers['mcp-session-id'] !== 'string') throw new Error(`initialize on ${server}: ${res.status} ${res.text}`)
  const sessionId = res.headers['mcp-session-id']
  const ack = await send(gw.mcpUrl(server), {
    headers: { ...POST_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26' },
    body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
  })
  if (ack.status !== 202) throw new Error(`notifications/initialized on ${server}: ${ack.status}`)
  return sessionId
}

/** a subtest (the last overload of t.test takes just the callback) */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const inSession = (sessionId: string, extra: Record<string, string> = {}): Record<string, string> =>
  ({ ...POST_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26', ...extra })

// ---------------------------------------------------------------------------------------------
// client → upstream

t.test('credentials, Origin, Accept-Encoding, Connection-listed and hop-by-hop headers never reach the upstream', async (t) => {
  const body = initialize(1)
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`
  const before = recorder.requests.length
  const res = await rawHttp(gw.mcpUrl('rec'), rawRequest('POST', gw.mcpUrl('rec'), [
    ['Content-Type', 'application/json'],
    ['Accept', ACCEPT_BOTH],
    ['Authorization', `Bearer ${CLIENT_TOKEN}`],
    ['Cookie', `sid=${CLIENT_COOKIE}`],
    ['Proxy-Authorization', 'Basic cHJveHk6cHJveHktc2VjcmV0'],
    ['DPoP', 'eyJ0eXAiOiJkcG9wK2p3dCJ9.client-dpop-proof.sig'],
    ['Origin', ORIGIN],
    ['Referer', `${ORIGIN}/app/page?token=leak`],
    ['Accept-Encoding', 'gzip, br'],
    ['Connection', 'close, X-Hop-Custom'],
    ['X-Hop-Custom', 'named-in-connection'],
    ['Keep-Alive', 'timeout=5, max=100'],
    ['TE', 'trailers'],
    ['Trailer', 'X-Checksum'],
    ['Upgrade', 'h2c'],
    ['Proxy-Connection', 'keep-alive'],
    ['Transfer-Encoding', 'chunked'],
    ['X-Tenant', 'client-tenant'],
    ['x-api-key', 'client-key'],
    ['X-Client-Custom', 'an-ordinary-header'],
  ], chunked))
  t.equal(res.status, 200, 'initialize succeeds')
  const got = lastUpstreamRequest(t, before)
  t.equal(got.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`, 'Authorization: the configured upstream credential, never the client\'s')
  for (const name of ['cookie', 'proxy-authorization', 'dpop', 'origin', 'referer', 'accept-encoding', 'x-hop-custom', 'keep-alive',
    'te', 'trailer', 'upgrade', 'proxy-connection', 'transfer-encoding']) {
    t.equal(got.headers[name], undefined, `no ${name}`)
  }
  t.notMatch(String(got.headers.connection ?? ''), /x-hop-custom|close/i, 'the client\'s Connection header is not forwarded')
  t.equal(got.headers['content-length'], String(Buffer.byteLength(got.body)), 'Content-Length recomputed for the re-serialised body')
  t.equal(got.headers.host, new URL(recorder.url).host, 'Host is the upstream\'s')
  t.notOk(JSON.stringify(got.headers).includes(CLIENT_TOKEN) || JSON.stringify(got.headers).includes(CLIENT_COOKIE), 'no client secret anywhere')
  t.equal(got.headers['x-client-custom'], 'an-ordinary-header', 'control: an ordinary custom header does cross')
  t.notOk(gw.rawLogs.some((line) => line.includes(CLIENT_TOKEN) || line.includes(CLIENT_COOKIE)), 'no client secret in the gateway log')
  const sessionId = res.headers['mcp-session-id']
  if (typeof sessionId === 'string') await send(gw.mcpUrl('rec'), { method: 'DELETE', headers: { 'mcp-session-id': sessionId } })
})

t.test('configured upstream headers (${ENV} substituted) are added and win over the client\'s', async (t) => {
  const sessionId = await openSession('rec')
  const before = recorder.requests.length
  const res = await send(gw.mcpUrl('rec'), {
    headers: inSession(sessionId, { 'X-TENANT': 'client-tenant', 'x-api-key': 'client-key', authorization: `Bearer ${CLIENT_TOKEN}` }),
    body: toolsCall(2, 'echo', { message: 'hi' }),
  })
  t.equal(res.status, 200)
  const got = lastUpstreamRequest(t, before)
  t.equal(got.headers['x-tenant'], 'configured-tenant', 'X-Tenant: configured value wins (names compared case-insensitively)')
  t.equal(got.headers['x-api-key'], UPSTREAM_KEY, 'X-Api-Key: ${UPSTREAM_KEY} from the environment')
  t.equal(got.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`, 'Authorization: ${UPSTREAM_TOKEN} from the environment')
  t.notOk(gw.rawLogs.some((line) => line.includes(UPSTREAM_TOKEN) || line.includes(UPSTREAM_KEY)), 'the configured secrets are not logged')

  // a server without configured headers: the client's Authorization is still never forwarded
  const other = await openSession('rec2')
  const before2 = recorder.requests.length
  await send(gw.mcpUrl('rec2'), { headers: inSession(other, { authorization: `Bearer ${CLIENT_TOKEN}` }), body: toolsCall(3, 'echo', { message: 'hi' }) })
  t.equal(lastUpstreamRequest(t, before2).headers.authorization, undefined, 'no Authorization at all when none is configured')
})

/** the session id the upstream itself minted for the session opened last (its notifications/initialized carried it) */
function upstreamSessionId (): string {
  const id = recorder.requests.at(-1)?.headers['mcp-session-id']
  if (typeof id !== 'string') throw new Error('the upstream saw no session id')
  return id
}

t.test('MCP-Protocol-Version, the upstream\'s own Mcp-Session-Id, Last-Event-ID and trace context are forwarded', async (t) => {
  const sessionId = await openSession('rec')
  const upstreamId = upstreamSessionId()
  t.not(sessionId, upstreamId, 'the client holds a sealed id, not the upstream\'s')
  t.notOk(sessionId.includes(upstreamId), 'the sealed id does not show the upstream\'s')
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const before = recorder.requests.length
  const res = await send(gw.mcpUrl('rec'), {
    headers: inSession(sessionId, { traceparent, tracestate: 'vendor=opaque', baggage: 'tenant=acme' }),
    body: toolsCall(2, 'echo', { message: 'traced' }),
  })
  t.equal(res.status, 200)
  const got = lastUpstreamRequest(t, before)
  t.equal(got.headers['mcp-protocol-version'], '2025-03-26')
  t.equal(got.headers['mcp-session-id'], upstreamId, 'the upstream gets its own session id')
  t.equal(got.headers.traceparent, traceparent, 'traceparent (the same trace)')
  t.equal(got.headers.tracestate, 'vendor=opaque')
  t.equal(got.headers.baggage, 'tenant=acme')

  // Last-Event-ID travels on the GET that resumes a stream (an idle stream: its response
  // headers are not awaited here, see the idle-stream test below)
  const beforeGet = recorder.requests.length
  const abort = new AbortController()
  const stream = request(gw.mcpUrl('rec'), {
    method: 'GET',
    headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26', 'last-event-id': 'stream-1.42' },
    signal: abort.signal,
  }).then(async (res) => { await res.body.text() }, () => {})
  const deadline = Date.now() + 3_000
  while (recorder.requests.length === beforeGet && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  const get = lastUpstreamRequest(t, beforeGet)
  t.equal(get.method, 'GET')
  t.equal(get.headers['last-event-id'], 'stream-1.42', 'Last-Event-ID forwarded')
  t.equal(get.headers['mcp-session-id'], upstreamId)
  t.equal(get.headers['mcp-protocol-version'], '2025-03-26')
  abort.abort()
  await stream.catch(() => {})
})

// ---------------------------------------------------------------------------------------------
// upstream → client

t.test('the upstream\'s Set-Cookie, WWW-Authenticate and other headers stay behind; its Mcp-Session-Id crosses sealed', async (t) => {
  const res = await send(gw.mcpUrl('leaky'), { body: initialize(1) })
  t.equal(res.status, 200)
  const sealed = res.headers['mcp-session-id']
  t.type(sealed, 'string', 'a session id reaches the client')
  t.not(sealed, LEAKY_SESSION, 'sealed: not the upstream\'s own id')
  t.match(sealed, /^[A-Za-z0-9_-]{40,}$/, 'visible ASCII (base64url)')
  for (const name of ['set-cookie', 'www-authenticate', 'x-upstream-internal', 'x-powered-by', 'server', 'access-control-allow-origin',
    'strict-transport-security']) {
    t.equal(res.headers[name], undefined, `no ${name}`)
  }
  t.equal(res.headers['content-type'], 'application/json', 'Content-Type crosses exactly as the upstream sent it')
  const call = await send(gw.mcpUrl('leaky'), { headers: inSession(String(sealed)), body: toolsCall(2, 'echo', { message: 'x' }) })
  t.equal(call.status, 200, 'the session works')
  const raw = await send(gw.mcpUrl('leaky'), { headers: inSession(LEAKY_SESSION), body: toolsCall(3, 'echo', { message: 'x' }) })
  t.equal(raw.status, 404, 'the upstream\'s own id, sent by a client, is no session of the gateway\'s')
  t.equal(call.headers['set-cookie'], undefined)
  t.equal(call.headers['www-authenticate'], undefined)
})

// ---------------------------------------------------------------------------------------------
// sessions

t.test('a session opened on one server is 404 on another (even one with the same upstream)', async (t) => {
  const sessionId = await openSession('rec')
  const before = recorder.requests.length
  const res = await send(gw.mcpUrl('rec2'), { headers: inSession(sessionId), body: toolsCall(2, 'echo', { message: 'x' }) })
  t.equal(res.status, 404)
  t.equal(rpcError(res)?.error.code, -32001)
  t.equal(recorder.requests.length, before, 'the upstream is not asked')
  const get = await send(gw.mcpUrl('rec2'), { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })
  t.equal(get.status, 404, 'GET too')
  const del = await send(gw.mcpUrl('rec2'), { method: 'DELETE', headers: { 'mcp-session-id': sessionId } })
  t.equal(del.status, 404, 'DELETE too')
  const still = await send(gw.mcpUrl('rec'), { headers: inSession(sessionId), body: toolsCall(3, 'echo', { message: 'x' }) })
  t.equal(still.status, 200, 'and the session still works where it was opened')
})

t.test('DELETE ends the session: the next request with it is 404', async (t) => {
  const sessionId = await openSession('rec')
  const upstreamId = upstreamSessionId()
  const del = await send(gw.mcpUrl('rec'), { method: 'DELETE', headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26' } })
  t.equal(del.status, 200, 'DELETE is answered by the upstream')
  t.equal(recorder.requests.at(-1)?.headers['mcp-session-id'], upstreamId, 'the upstream was asked to end its own session')
  const res = await send(gw.mcpUrl('rec'), { headers: inSession(sessionId), body: toolsCall(2, 'echo', { message: 'x' }) })
  t.equal(res.status, 404)
  t.equal(rpcError(res)?.error.code, -32001)
  // The id itself is stateless (any replica could have served it): the upstream says it is gone.
  t.equal(recorder.requests.at(-1)?.headers['mcp-session-id'], upstreamId)
})

t.test('DELETE ends a bridged (stdio) session too', async (t) => {
  const sessionId = await openSession('stdio')
  const del = await send(gw.mcpUrl('stdio'), { method: 'DELETE', headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26' } })
  t.equal(del.status, 200)
  const res = await send(gw.mcpUrl('stdio'), { headers: inSession(sessionId), body: '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' })
  t.equal(res.status, 404)
  t.equal(rpcError(res)?.error.code, -32001)
})

// ---------------------------------------------------------------------------------------------
// streaming

t.test('SSE responses carry Cache-Control: no-cache, no-transform and X-Accel-Buffering: no', async (t) => {
  for (const server of ['rec', 'stdio']) {
    const sessionId = await openSession(server)
    const res = await send(gw.mcpUrl(server), {
      headers: inSession(sessionId),
      body: server === 'rec' ? toolsCall(2, 'echo', { message: 'x' }) : '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
    })
    t.equal(res.status, 200, `${server}: 200`)
    t.match(res.headers['content-type'], /^text\/event-stream/, `${server}: an SSE answer`)
    t.equal(res.headers['cache-control'], 'no-cache, no-transform', `${server}: Cache-Control`)
    t.equal(res.headers['x-accel-buffering'], 'no', `${server}: X-Accel-Buffering`)
    t.equal(res.headers['content-encoding'], undefined, `${server}: not compressed`)
    t.match(res.messages, [{ id: 2, result: {} }], `${server}: the answer is on the stream`)
    await send(gw.mcpUrl(server), { method: 'DELETE', headers: { 'mcp-session-id': sessionId } })
  }
})

t.test('an idle SSE stream: its headers reach the client at once, before any event', async (t) => {
  // The upstream flushes 200 + text/event-stream and then says nothing (a GET stream with no
  // news yet; the SDK's first keep-alive comes after 15 s). The client must see the stream open
  // now — a client whose own headers timeout runs would otherwise give up on a healthy stream.
  const abort = new AbortController()
  const started = Date.now()
  const opened = await request(gw.mcpUrl('silent'), {
    method: 'POST',
    headers: POST_HEADERS,
    body: toolsCall(1, 'echo', { message: 'x' }),
    signal: abort.signal,
    headersTimeout: 2_000,
  }).then((res) => ({ status: res.statusCode, headers: res.headers, ms: Date.now() - started, body: res.body }), (err: unknown) => err as Error)
  t.notOk(opened instanceof Error, `the response headers arrive (${opened instanceof Error ? opened.message : `${opened.ms} ms`})`)
  if (!(opened instanceof Error)) {
    t.equal(opened.status, 200)
    t.match(opened.headers['content-type'], /^text\/event-stream/)
    t.ok(opened.ms < 1_000, `within ${opened.ms} ms`)
    opened.body.on('error', () => {})
  }
  abort.abort()
})

t.test('a notification is answered 202 with an empty body', async (t) => {
  for (const server of ['rec', 'stdio']) {
    const sessionId = await openSession(server)
    const before = recorder.requests.length
    const res = await send(gw.mcpUrl(server), {
      headers: inSession(sessionId),
      body: '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99,"reason":"test"}}',
    })
    t.equal(res.status, 202, `${server}: 202`)
    t.equal(res.text, '', `${server}: empty body`)
    t.equal(res.headers['content-type'], undefined, `${server}: no content type`)
    if (server === 'rec') t.equal(recorder.requests.length, before + 1, 'forwarded')
    await send(gw.mcpUrl(server), { method: 'DELETE', headers: { 'mcp-session-id': sessionId } })
  }
})

t.test('a client that disconnects before the upstream answers aborts the upstream request; the call counts as cancelled', async (t) => {
  const calls = async (): Promise<number> => metricSum(await scrape(gw.adminUrl), 'portcullis_tool_calls_total', { server: 'hang', outcome: 'cancelled' })
  const cancelledBefore = await calls()
  const before = faulty.requests.length
  const abort = new AbortController()
  const pending = request(gw.mcpUrl('hang'), { method: 'POST', headers: POST_HEADERS, body: toolsCall(7, 'never'), signal: abort.signal })
  pending.catch(() => {})
  while (faulty.requests.length === before) await new Promise((resolve) => setTimeout(resolve, 10))
  const upstreamRequest = faulty.requests[before]
  t.equal(upstreamRequest?.fault, 'hang', 'the request reached the upstream, which does not answer')
  const abortedAt = Date.now()
  abort.abort()
  await t.rejects(pending, 'the client gave up')
  while (upstreamRequest?.closedAt === undefined && Date.now() - abortedAt < 3_000) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(upstreamRequest?.closedAt !== undefined, 'the upstream saw its request closed')
  t.ok((upstreamRequest?.closedAt ?? Infinity) - abortedAt < 1_000, `within ${(upstreamRequest?.closedAt ?? NaN) - abortedAt} ms of the disconnect (< 1 s)`)
  let cancelled = await calls()
  for (let i = 0; i < 50 && cancelled === cancelledBefore; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    cancelled = await calls()
  }
  t.equal(cancelled - cancelledBefore, 1, 'portcullis_tool_calls_total{outcome="cancelled"} counted it')
})

t.test('a client that disconnects mid-SSE aborts the upstream request', async (t) => {
  const abort = new AbortController()
  const before = faulty.requests.length
  const res = await request(gw.mcpUrl('slow'), {
    method: 'POST',
    headers: POST_HEADERS,
    body: toolsCall(1, 'slow', { steps: 100, ms: 1000 }, 'p-1'),
    signal: abort.signal,
  })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  // read the first event, then go away
  const first = await new Promise<string>((resolve, reject) => {
    let text = ''
    res.body.on('data', (c: Buffer) => { text += c.toString('utf8'); if (text.includes('\n\n')) resolve(text) })
    res.body.on('error', reject)
  })
  t.match(first, /notifications\/progress/, 'the first event arrived, streamed')
  const upstreamRequest = faulty.requests[before]
  t.equal(upstreamRequest?.fault, 'slow-sse')
  t.equal(upstreamRequest?.closedAt, undefined, 'the upstream request is open while the client listens')
  const abortedAt = Date.now()
  abort.abort()
  res.body.on('error', () => {})
  while (upstreamRequest?.closedAt === undefined && Date.now() - abortedAt < 3_000) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(upstreamRequest?.closedAt !== undefined, 'the upstream saw its request closed')
  t.ok((upstreamRequest?.closedAt ?? Infinity) - abortedAt < 1_000, `within ${(upstreamRequest?.closedAt ?? NaN) - abortedAt} ms of the disconnect (< 1 s)`)
})
