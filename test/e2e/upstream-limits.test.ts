// Per-principal caps and a bounded wait for an upstream connection (security review finding 2):
// one client's open streams or stdio sessions must not starve the others (429 + Retry-After for
// the client over its cap, the others unaffected), and a request that cannot get an upstream
// connection within limits.upstreamWaitMs gets 503 + Retry-After — while one whose client left
// as it waited is never sent upstream. Real gateway, real upstreams (test/helpers/faulty-upstream.ts
// `streams`, the stdio pid server). The servers are `auth: none`, where a client's share is its
// address: each "user" here is an HTTP agent bound to its own loopback address (127.0.0.N).
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { Agent, request, type Dispatcher } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startFaultyUpstream } from '../helpers/faulty-upstream.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'
import { messagesOf } from '../helpers/mcp-http.ts'

const WAIT_MS = 400
const pidServer = fileURLToPath(new URL('../fixtures/stdio-pid-server.ts', import.meta.url))
const faulty = await startFaultyUpstream()
const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
limits: { maxStreamsPerPrincipal: 2, upstreamWaitMs: ${WAIT_MS} }
servers:
  streams:
    upstream: { url: "${faulty.url('streams')}", maxConnections: 64 }
    auth: none
    tools: [{ allow: ["*"] }]
  pool:
    upstream: { url: "${faulty.url('streams')}?pool", maxConnections: 2 }
    auth: none
    tools: [{ allow: ["*"] }]
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(pidServer)}], maxSessions: 3, maxSessionsPerPrincipal: 2 }
    auth: none
    tools: [{ allow: ["*"] }]
`)

const agents = new Map<string, Agent>()
/** A client at its own loopback address. */
function user (name: string, n: number): Agent {
  const agent = new Agent({ localAddress: `127.0.0.${n}` })
  agents.set(name, agent)
  return agent
}
const users = { ann: user('ann', 2), bob: user('bob', 3), cat: user('cat', 4), dan: user('dan', 5), eve: user('eve', 6), fay: user('fay', 7), gus: user('gus', 8) }
type UserName = keyof typeof users

t.teardown(async () => {
  for (const agent of agents.values()) await agent.destroy()
  await gw.close()
  await faulty.close()
})

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

interface Answer {
  readonly status: number
  readonly headers: Dispatcher.ResponseData['headers']
  readonly ms: number
  /** the JSON body (refusals and JSON answers); undefined for a stream still open */
  readonly json: { id?: unknown, result?: unknown, error?: { code: number, message: string } } | undefined
  /** close the client's side (a stream the client leaves) */
  close (): void
}

/** Send and return at the response head; a JSON body is read, an SSE body left open. */
async function call (who: UserName, server: string, method: 'GET' | 'POST', body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const ac = new AbortController()
  const started = performance.now()
  const res = await request(gw.mcpUrl(server), {
    dispatcher: users[who],
    method,
    headers: method === 'GET' ? { accept: 'text/event-stream', ...headers } : { ...HEADERS, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: ac.signal,
  })
  const sse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
  res.body.on('error', () => {}) // the abort of a stream we leave
  const text = sse ? '' : await res.body.text()
  const json = sse ? undefined : text === '' ? {} : JSON.parse(text) as Answer['json']
  return { status: res.statusCode, headers: res.headers, ms: performance.now() - started, json, close: () => ac.abort() }
}

const toolsCall = (id: string, name: string): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } })

/** Did the upstream receive a request with this JSON-RPC id? */
const upstreamSaw = (id: string): boolean => faulty.requests.some((r) => r.body.includes(`"id":"${id}"`))

/** The audit line the gateway writes when it is done with the request with this JSON-RPC id. */
const auditOf = (id: string): Record<string, unknown> | undefined =>
  gw.logs.find((l) => l['log.type'] === 'audit' && l['jsonrpc.request.id'] === id)

/** How many policy decisions the gateway has counted for this server: one per request it judged, before sending or queueing it. */
const decisions = async (server: string): Promise<number> => metricSum(await scrape(gw.adminUrl), 'portcullis_policy_decisions_total', { server })

async function until (check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
}

/** Wait until the gateway has seen a client leave: the upstream request of the stream is aborted. */
async function leave (stream: Answer, id: string): Promise<void> {
  stream.close()
  await until(() => faulty.requests.some((r) => r.body.includes(`"id":"${id}"`) && r.closedAt !== undefined))
  await new Promise((resolve) => setTimeout(resolve, 20))
}

const RATE_LIMITED = -31029

/** a subtest (the last overload of t.test takes just the callback) */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

interface Expect {
  readonly status: number
  /** 200 answers: an SSE stream (held open) or a JSON result */
  readonly sse?: boolean
  /** JSON-RPC error code and id of a refusal */
  readonly code?: number
  readonly id?: string | null
  readonly retryAfter?: string
  readonly message?: RegExp
  /** whether the request reached the upstream (by its id) */
  readonly sent?: boolean
}

function check (t: Test, answer: Answer, expect: Expect, id: string | undefined): void {
  t.equal(answer.status, expect.status, 'status')
  if (expect.sse !== undefined) t.equal(answer.json === undefined, expect.sse, expect.sse ? 'an SSE stream' : 'a JSON answer')
  if (expect.code !== undefined) {
    t.equal(answer.json?.error?.code, expect.code, 'JSON-RPC error code')
    t.equal(answer.json?.id, expect.id, 'JSON-RPC id')
  }
  if (expect.message !== undefined) t.match(answer.json?.error?.message, expect.message, 'error message')
  if (expect.retryAfter !== undefined) t.equal(answer.headers['retry-after'], expect.retryAfter, 'Retry-After')
  if (expect.sent !== undefined && id !== undefined) t.equal(upstreamSaw(id), expect.sent, expect.sent ? 'sent upstream' : 'never sent upstream')
}

// ---------------------------------------------------------------------------------------------
// open streams per principal (limits.maxStreamsPerPrincipal: 2), Streamable HTTP upstream

interface StreamRow {
  readonly name: string
  readonly who: UserName
  /** get: a GET stream; hold: a tools/call answered with a stream that stays open; echo: a tools/call answered with JSON */
  readonly kind: 'get' | 'hold' | 'echo'
  readonly id: string
  readonly expect: Expect
  /** before the row: close these open streams (by row id) */
  readonly leaving?: readonly string[]
}

const refusedStream = (id: string | null): Expect => ({
  status: 429, code: RATE_LIMITED, id, retryAfter: '5', message: /Too Many Requests.*at most 2 open streams/, sent: false,
})

const streamRows: StreamRow[] = [
  { name: 'ann: a GET stream', who: 'ann', kind: 'get', id: 's1', expect: { status: 200, sse: true } },
  { name: 'ann: a tools/call answered with a stream', who: 'ann', kind: 'hold', id: 's2', expect: { status: 200, sse: true, sent: true } },
  { name: 'ann: a third stream (GET) is refused before it is sent', who: 'ann', kind: 'get', id: 's3', expect: refusedStream(null) },
  { name: 'ann: a third stream (POST) is refused before it is sent', who: 'ann', kind: 'hold', id: 's4', expect: refusedStream('s4') },
  { name: 'ann: at the cap, any POST with a request may become a stream: refused', who: 'ann', kind: 'echo', id: 's5', expect: refusedStream('s5') },
  { name: 'bob meanwhile: a GET stream', who: 'bob', kind: 'get', id: 's6', expect: { status: 200, sse: true } },
  { name: 'bob meanwhile: a tools/call answered with a stream', who: 'bob', kind: 'hold', id: 's7', expect: { status: 200, sse: true, sent: true } },
  { name: 'bob at his cap too: refused', who: 'bob', kind: 'hold', id: 's8', expect: refusedStream('s8') },
  { name: 'ann, after one of her streams closed: a tools/call answered with JSON', who: 'ann', kind: 'echo', id: 's9', leaving: ['s2'], expect: { status: 200, sse: false, sent: true } },
  { name: 'ann: JSON answers hold nothing — another one', who: 'ann', kind: 'echo', id: 's10', expect: { status: 200, sse: false, sent: true } },
  { name: 'ann: a stream again', who: 'ann', kind: 'hold', id: 's11', expect: { status: 200, sse: true, sent: true } },
  { name: 'ann: and at the cap again', who: 'ann', kind: 'get', id: 's12', expect: refusedStream(null) },
]

t.test('open streams per principal', async (t) => {
  const open = new Map<string, Answer>()
  for (const row of streamRows) {
    for (const id of row.leaving ?? []) {
      const stream = open.get(id)
      if (stream === undefined) throw new Error(`no open stream ${id}`)
      await leave(stream, id)
      open.delete(id)
    }
    const before = faulty.requests.length
    const answer = row.kind === 'get'
      ? await call(row.who, 'streams', 'GET')
      : await call(row.who, 'streams', 'POST', toolsCall(row.id, row.kind))
    if (answer.json === undefined) open.set(row.id, answer)
    t.test(row.name, async (t) => {
      check(t, answer, row.expect, row.kind === 'get' ? undefined : row.id)
      if (row.expect.status === 429) t.equal(faulty.requests.length, before, 'no upstream request at all')
    })
  }
  const samples = await scrape(gw.adminUrl)
  t.equal(metricSum(samples, 'portcullis_rate_limited_total', { server: 'streams', limit: 'streams' }), 5, 'portcullis_rate_limited_total{limit="streams"}: every refusal')
  for (const stream of open.values()) stream.close()
})

// ---------------------------------------------------------------------------------------------
// stdio sessions per principal (maxSessionsPerPrincipal: 2, maxSessions: 3) and bridged streams

interface Session { readonly id: string, readonly version: string }

/** initialize (its answer read to the end) and notifications/initialized */
async function initialize (who: UserName): Promise<{ answer: Answer, session: Session | undefined }> {
  const answer = await callToEnd(who, { jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: who, version: '1' } } })
  const id = answer.headers['mcp-session-id']
  if (answer.status !== 200 || typeof id !== 'string') return { answer, session: undefined }
  const session = { id, version: '2025-11-25' }
  const ack = await call(who, 'stdio', 'POST', { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders(session))
  if (ack.status !== 202) throw new Error(`initialized: HTTP ${ack.status}`)
  return { answer, session }
}

const sessionHeaders = (s: Session): Record<string, string> => ({ 'mcp-session-id': s.id, 'mcp-protocol-version': s.version })

/** A POST to the stdio server read to its end; an SSE answer's first message as `json`. */
async function callToEnd (who: UserName, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(gw.mcpUrl('stdio'), { dispatcher: users[who], method: 'POST', headers: { ...HEADERS, ...headers }, body: JSON.stringify(body) })
  const [json] = messagesOf(String(res.headers['content-type'] ?? ''), await res.body.text()) as Array<Answer['json']>
  return { status: res.statusCode, headers: res.headers, ms: 0, json, close: () => {} }
}

/** tools/call pid in a session: the child's pid, or the refusal */
async function pid (who: UserName, session: Session): Promise<number | Answer> {
  const answer = await callToEnd(who, toolsCall('pid', 'pid'), sessionHeaders(session))
  if (answer.status !== 200) return answer
  return Number((answer.json?.result as { content: Array<{ text: string }> }).content[0]?.text)
}

t.test('stdio sessions per principal, and the global cap', async (t) => {
  const sessions: Record<string, Session[]> = { cat: [], dan: [] }
  const rows: Array<{ name: string, who: 'cat' | 'dan', expect: Expect }> = [
    { name: 'cat: a first session', who: 'cat', expect: { status: 200 } },
    { name: 'cat: a second session', who: 'cat', expect: { status: 200 } },
    { name: 'cat: a third is over her cap: 429, not the global 503', who: 'cat', expect: { status: 429, code: RATE_LIMITED, id: 'init', retryAfter: '5', message: /at most 2 sessions per client/ } },
    { name: 'dan meanwhile: a session (the third of maxSessions 3)', who: 'dan', expect: { status: 200 } },
    { name: 'dan: the server is full now: the global 503 stays', who: 'dan', expect: { status: 503, code: -32603, id: 'init', retryAfter: '5', message: /too many sessions/ } },
  ]
  for (const row of rows) {
    const { answer, session } = await initialize(row.who)
    if (session !== undefined) sessions[row.who]!.push(session)
    t.test(row.name, async (t) => check(t, answer, row.expect, undefined))
  }
  const [dan] = sessions.dan!
  t.type(await pid('dan', dan!), 'number', 'dan calls tools while cat is at her cap')
  t.equal(gw.gateway.registry.get('stdio')?.sessionCount(), 3, 'the refused initializes started no process')

  // bridged streams count too (maxStreamsPerPrincipal: 2): cat's two sessions each hold a GET stream
  const [c1, c2] = sessions.cat!
  const g1 = await call('cat', 'stdio', 'GET', undefined, sessionHeaders(c1!))
  const g2 = await call('cat', 'stdio', 'GET', undefined, sessionHeaders(c2!))
  t.equal(g1.status, 200, 'cat: a GET stream in her first session')
  t.equal(g2.status, 200, 'cat: a GET stream in her second session')
  const third = await pid('cat', c1!)
  t.match(third, { status: 429, json: { id: 'pid', error: { code: RATE_LIMITED } } }, 'cat: a third stream (a tools/call) is refused')
  t.type(await pid('dan', dan!), 'number', 'dan still calls tools')
  g1.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.type(await pid('cat', c1!), 'number', 'cat, after her GET stream closed: calls tools again')
  g2.close()

  const samples = await scrape(gw.adminUrl)
  t.equal(metricSum(samples, 'portcullis_rate_limited_total', { server: 'stdio', limit: 'stdio_sessions' }), 1, 'portcullis_rate_limited_total{limit="stdio_sessions"}')
  t.equal(metricSum(samples, 'portcullis_rate_limited_total', { server: 'stdio', limit: 'streams' }), 1, 'portcullis_rate_limited_total{server="stdio",limit="streams"}')
})

// ---------------------------------------------------------------------------------------------
// a bounded wait for an upstream connection (maxConnections: 2, upstreamWaitMs: 400)

t.test('a full upstream pool: a bounded wait, then 503; a client that left is never sent', async (t) => {
  // two slow streams of two users take both connections
  const p1 = await call('eve', 'pool', 'POST', toolsCall('p1', 'hold'))
  const p2 = await call('fay', 'pool', 'POST', toolsCall('p2', 'hold'))
  t.equal(p1.status, 200)
  t.equal(p2.status, 200)

  t.test('the next request waits upstreamWaitMs, then 503 + Retry-After', async (t) => {
    const answer = await call('gus', 'pool', 'POST', toolsCall('p3', 'echo'))
    check(t, answer, { status: 503, code: -32603, id: 'p3', retryAfter: '1', message: /no connection to the MCP server came free in time/, sent: false }, 'p3')
    t.ok(answer.ms >= WAIT_MS - 20 && answer.ms < WAIT_MS + 600, `answered after the wait (${Math.round(answer.ms)} ms; bound ${WAIT_MS} ms)`)
  })

  t.test('a client that leaves while it waits is never sent upstream', async (t) => {
    const ac = new AbortController()
    const gone = request(gw.mcpUrl('pool'), { dispatcher: users.gus, method: 'POST', headers: HEADERS, body: JSON.stringify(toolsCall('p4', 'echo')), signal: ac.signal })
    gone.catch(() => {})
    // (no event marks a request joining the queue for a connection: give it the time to get there)
    await new Promise((resolve) => setTimeout(resolve, 100))
    ac.abort()
    // the gateway is done with p4 once it has written its audit line
    await until(() => auditOf('p4') !== undefined)
    t.match(auditOf('p4'), { outcome: 'cancelled' }, 'the gateway saw the client leave: cancelled')
    // a connection comes free while its request would still have been waiting
    await leave(p1, 'p1')
    // The queue is first come, first served: a request sent now and answered proves the freed
    // connection went round — p4, had it still been waiting, would have had it first.
    const after = await call('gus', 'pool', 'POST', toolsCall('p4-after', 'echo'))
    check(t, after, { status: 200, sse: false, sent: true }, 'p4-after')
    t.notOk(upstreamSaw('p4'), 'the upstream never received the request of the client that left')
  })

  t.test('once a stream closes, requests flow again', async (t) => {
    const answer = await call('gus', 'pool', 'POST', toolsCall('p5', 'echo'))
    check(t, answer, { status: 200, sse: false, sent: true }, 'p5')
  })

  t.test('a waiter gets the connection a stream gives back within the bound', async (t) => {
    const p6 = await call('eve', 'pool', 'POST', toolsCall('p6', 'hold'))
    t.equal(p6.status, 200, 'the pool is full again')
    const judged = await decisions('pool')
    const waiting = call('gus', 'pool', 'POST', toolsCall('p7', 'echo'))
    // p7 has been judged (the step before it is sent or queued), and a request that came after
    // it, to the same upstream through a server with connections to spare, has been sent and
    // answered: p7, had it not been held back, would have been sent too
    for (const deadline = Date.now() + 3_000; await decisions('pool') === judged && Date.now() < deadline;) await new Promise((resolve) => setImmediate(resolve))
    t.equal(await decisions('pool'), judged + 1, 'p7 was judged by the policy')
    const later = await call('gus', 'streams', 'POST', toolsCall('p7-later', 'echo'))
    check(t, later, { status: 200, sse: false, sent: true }, 'p7-later')
    t.notOk(upstreamSaw('p7'), 'waiting: not sent yet')
    await leave(p2, 'p2')
    const answer = await waiting
    check(t, answer, { status: 200, sse: false, sent: true }, 'p7')
    t.ok(answer.ms < WAIT_MS + 300, `answered once the connection was free (${Math.round(answer.ms)} ms)`)
    p6.close()
  })

  t.test('metrics', async (t) => {
    const samples = await scrape(gw.adminUrl)
    t.equal(metricSum(samples, 'portcullis_upstream_errors_total', { server: 'pool', reason: 'pool_timeout' }), 1, 'portcullis_upstream_errors_total{reason="pool_timeout"}: the one 503')
    t.equal(metricSum(samples, 'portcullis_rate_limited_total', { server: 'pool' }), 0, 'no per-principal refusal on the pool server')
  })
})
