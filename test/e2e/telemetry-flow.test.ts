// Telemetry end to end (design.md §6, issue #5): a scripted EMA flow — a real ID token and ID-JAG
// from the dev IdP, assertions signed with its key, redeemed at the gateway's token endpoint —
// followed by allowed, denied, failing and made-up tool calls through the real gateway to a
// recording upstream (Streamable HTTP) and a stdio upstream. Then, exactly: the Prometheus
// samples (counters, histogram _count, a trace_id exemplar), the span tree an in-process exporter
// saw (names, kinds, attributes, parent links, W3C context continued from the client's header or
// `_meta`), the `traceparent` the upstreams received (header and `params._meta`), the audit lines
// (one per request, design.md §6 fields) — and that no token, assertion, ID token, client secret
// or tool argument appears in any log line, span or metric.
import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { decodeJwt } from 'jose'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { startTracing } from '../../src/telemetry/tracing.ts'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { CLIENT, IDP_CLIENT, JWT_BEARER, startEmaStack } from '../helpers/ema.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { POST_HEADERS, readMessages, type RpcMessage } from '../helpers/raw-mcp.ts'
import { dropClientConnections } from '../helpers/mcp-http.ts'
import { USERS, type User } from '../helpers/policy-users.ts'

// The gateway reads the pseudonym key from process.env (GatewayDeps.env defaults to it): a fixed
// key makes `enduser.pseudo.id` checkable. One process per tap file, so this and the global
// tracer provider below belong to this file.
const PSEUDONYM_KEY = 'telemetry-flow-pseudonym-key-0123456789abcdef'
process.env.PORTCULLIS_AUDIT_PSEUDONYM_KEY = PSEUDONYM_KEY

const exporter = new InMemorySpanExporter()
const stopTracing = await startTracing({}, [new SimpleSpanProcessor({ exporter })])
if (stopTracing === undefined) throw new Error('startTracing with span processors started nothing')

/** A tool argument no log line, span or metric may ever contain. */
const ARGUMENT = `do-not-log-${randomBytes(12).toString('hex')}`
const PROTOCOL = '2025-11-25'
const RULES = `
    scopes: [tools.read, tools.write]
    tools:
      - allow: [echo, add, fail]
        scopes: [tools.read]
        id: read-tools
      - deny: [secret]
        id: no-secrets`

const guardedUpstream = await startRecordingUpstream()
const fixture = fileURLToPath(new URL('../fixtures/telemetry-meta-echo.ts', import.meta.url))
const stack = await startEmaStack(`
  guarded:
    upstream: { url: ${guardedUpstream.url} }${RULES}
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(fixture)}] }
    scopes: [tools.read]
    tools:
      - allow: [traceparent]
        scopes: [tools.read]
        id: stdio-tools
`)
t.teardown(async () => {
  await dropClientConnections()
  await stack.close()
  await guardedUpstream.close()
  await stopTracing()
})

/** Everything that must never be written anywhere: filled as the flow obtains it. */
const secrets = new Map<string, string>([['mcp client secret', CLIENT.secret], ['idp client secret', IDP_CLIENT.secret], ['tool argument', ARGUMENT]])
function keep (what: string, jwt: string): string {
  secrets.set(what, jwt)
  // the signature alone identifies a JWT too: it must not appear even if the rest were cut off
  secrets.set(`${what} (signature)`, jwt.split('.')[2] ?? jwt)
  return jwt
}

// ---- the client side ---------------------------------------------------------------------------

let validBearerRequests = 0

interface Answer { readonly status: number; readonly headers: Record<string, unknown>; readonly messages: RpcMessage[] }

async function post (server: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(stack.gw.mcpUrl(server), {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  if (res.statusCode !== 401) validBearerRequests++
  return { status: res.statusCode, headers: res.headers, messages: await readMessages(res) }
}

interface Session { readonly server: string; readonly token: string; readonly id: string; readonly version: string }

async function open (server: string, token: string, id: string): Promise<Session> {
  const init = await post(server, token, { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'telemetry-test', version: '1' } } })
  const sessionId = init.headers['mcp-session-id']
  if (init.status !== 200 || typeof sessionId !== 'string') throw new Error(`initialize at ${server}: HTTP ${init.status}`)
  const version = (init.messages[0]?.result as { protocolVersion?: string } | undefined)?.protocolVersion ?? PROTOCOL
  const session = { server, token, id: sessionId, version }
  const ack = await post(server, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders(session))
  if (ack.status !== 202) throw new Error(`notifications/initialized at ${server}: HTTP ${ack.status}`)
  return session
}

function sessionHeaders (s: Session): Record<string, string> {
  return { 'mcp-session-id': s.id, 'mcp-protocol-version': s.version }
}

async function call (s: Session, id: string, name: string, args: Record<string, unknown> = {}, opts: { headers?: Record<string, string>, meta?: Record<string, string> } = {}): Promise<RpcMessage> {
  const res = await post(s.server, s.token, {
    jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(opts.meta === undefined ? {} : { _meta: opts.meta }) },
  }, { ...sessionHeaders(s), ...opts.headers })
  const answer = res.messages.find((m) => m.id === id)
  if (res.status !== 200 || answer === undefined) throw new Error(`tools/call ${name}: HTTP ${res.status} ${JSON.stringify(res.messages)}`)
  return answer
}

/** A real EMA flow at the dev IdP: ID token (password grant) → ID-JAG (token exchange) for `tools`. */
async function emaAssertion (user: User): Promise<string> {
  const idToken = keep(`${user}'s ID token`, await stack.idToken(user))
  const res = await request(`${stack.idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(IDP_CLIENT.id, IDP_CLIENT.secret) },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
      subject_token: idToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      audience: stack.issuer,
      resource: stack.resource,
    }).toString(),
  })
  const body = await res.body.json() as { access_token?: string }
  if (typeof body.access_token !== 'string') throw new Error(`token exchange: HTTP ${res.statusCode}`)
  return keep(`${user}'s ID-JAG for tools`, body.access_token)
}

/**
 * An ID-JAG signed with the dev IdP's key for a server its policy does not list (the dev IdP
 * would refuse the exchange), with the user's identity as policy-users.ts has it.
 */
async function mintedAssertion (user: User, server: string): Promise<string> {
  const u = USERS[user]
  return keep(`${user}'s ID-JAG for ${server}`, await stack.mintIdJag({ sub: u.sub, email: u.email, groups: [...u.groups], scope: u.scope, resource: `${stack.issuer}/mcp/${server}` }))
}

let tokensIssued = 0
async function redeem (assertion: string, what: string): Promise<string> {
  const { status, body } = await stack.redeem({ grant_type: JWT_BEARER, assertion })
  if (status !== 200 || typeof body.access_token !== 'string') throw new Error(`redeem ${what}: HTTP ${status} ${JSON.stringify(body)}`)
  tokensIssued++
  return keep(`access token ${what}`, body.access_token)
}

// ---- what the gateway produced ------------------------------------------------------------------

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
  readonly exemplar?: { readonly labels: Readonly<Record<string, string>>; readonly value: number }
}

const LABELS = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
function labelsOf (text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const m of (text ?? '').matchAll(LABELS)) labels[m[1] as string] = (m[2] as string).replace(/\\n/g, '\n').replace(/\\(.)/g, '$1')
  return labels
}

/** OpenMetrics text: every sample with its labels and exemplar. */
function parseOpenMetrics (text: string): Sample[] {
  const out: Sample[] = []
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (\S+)(?: \S+)?(?: # \{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\} (\S+)(?: \S+)?)?$/
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('#')) continue
    const m = line.exec(l)
    if (m === null) throw new Error(`unparsable metrics line: ${l}`)
    out.push({
      name: m[1] as string,
      labels: labelsOf(m[2]),
      value: Number(m[3]),
      ...(m[5] === undefined ? {} : { exemplar: { labels: labelsOf(m[4]), value: Number(m[5]) } }),
    })
  }
  return out
}

interface Scrape { readonly text: string; readonly contentType: string; readonly samples: Sample[] }
async function scrape (): Promise<Scrape> {
  const res = await request(`${stack.gw.adminUrl}/metrics`)
  const text = await res.body.text()
  return { text, contentType: String(res.headers['content-type']), samples: parseOpenMetrics(text) }
}

/** The one series of `name` with exactly these labels (labels not given must be absent or ""). */
function series (s: Scrape, name: string, labels: Record<string, string>): Sample | undefined {
  const found = s.samples.filter((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => (x.labels[k] ?? '') === v) &&
    Object.entries(x.labels).every(([k, v]) => k in labels || v === ''))
  if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${found.length} series`)
  return found[0]
}
const value = (s: Scrape, name: string, labels: Record<string, string>): number => series(s, name, labels)?.value ?? 0

const spans = (): ReadableSpan[] => exporter.getFinishedSpans()
const attr = (span: ReadableSpan | undefined, key: string): unknown => span?.attributes[key]

/** The SERVER span of the client request with this JSON-RPC id (ids are unique in this test). */
function serverSpan (id: string): ReadableSpan | undefined {
  const found = spans().filter((s) => s.kind === SpanKind.SERVER && s.attributes['jsonrpc.request.id'] === id)
  if (found.length > 1) throw new Error(`${found.length} SERVER spans for request ${id}`)
  return found[0]
}
function clientSpansOf (server: ReadableSpan | undefined): ReadableSpan[] {
  if (server === undefined) return []
  return spans().filter((s) => s.kind === SpanKind.CLIENT && s.spanContext().traceId === server.spanContext().traceId)
}

/** CLIENT spans end when the reply closes, a moment after the client has the answer. */
async function eventually<T> (fn: () => T | undefined, ms = 5000): Promise<T | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined || Date.now() > deadline) return v
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * Instead of waiting for time to pass before asserting a span is absent: a notification on
 * alice's session (traced and sent upstream, but not audited, so no count elsewhere changes),
 * and a wait for its SERVER and CLIENT spans. Spans end as their replies close, and on one
 * keep-alive connection the requests before it closed first: a span any of them had would be
 * recorded by now. True once both are in.
 */
async function spansSettled (): Promise<boolean> {
  const MARKER = 'notifications/roots/list_changed'
  const count = (kind: SpanKind): number => spans().filter((x) => x.kind === kind && x.attributes['mcp.method.name'] === MARKER).length
  const [servers, clients] = [count(SpanKind.SERVER), count(SpanKind.CLIENT)]
  const sent = await post('guarded', alice.token, { jsonrpc: '2.0', method: MARKER }, sessionHeaders(alice))
  if (sent.status !== 202) throw new Error(`${MARKER}: HTTP ${sent.status}`)
  return await eventually(() => count(SpanKind.SERVER) > servers && count(SpanKind.CLIENT) > clients ? true : undefined) === true
}

const audits = (): Record<string, unknown>[] => stack.gw.logs.filter((l) => l['log.type'] === 'audit')
function auditOf (server: string, id: string): Record<string, unknown>[] {
  return audits().filter((l) => l['portcullis.server'] === server && l['jsonrpc.request.id'] === id && String(l['event.name']).startsWith('mcp.'))
}

function pseudonym (user: User): string {
  return createHmac('sha256', PSEUDONYM_KEY).update(`${stack.idp.issuer}\n${USERS[user].sub}`).digest('base64url').slice(0, 22)
}

/** `mcp.session.id` in spans and audit lines: a pseudonym of the sealed id, never the id itself */
function sessionPseudonym (sessionId: string): string {
  return createHmac('sha256', PSEUDONYM_KEY).update(`\0mcp.session.id\n${sessionId}`).digest('base64url').slice(0, 22)
}

/** The upstream request that carried the JSON-RPC request with this id, and its parsed body. */
function upstreamRequestFor (id: string): { headers: Record<string, unknown>, body: { params?: { _meta?: Record<string, unknown> } } } | undefined {
  for (const r of guardedUpstream.requests) {
    if (r.method !== 'POST' || r.body === '') continue
    const body = JSON.parse(r.body) as { id?: unknown }
    if (body.id === id) return { headers: r.headers, body: body as { params?: { _meta?: Record<string, unknown> } } }
  }
  return undefined
}

const traceparentOf = (span: ReadableSpan): string => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`

// ---- the flow ----------------------------------------------------------------------------------

const jti = (assertion: string): unknown => decodeJwt(assertion).jti
let alice: Session
let aliceAssertion: string

t.test('the EMA flow: ID token → ID-JAG → access token, then MCP through the gateway', async (t) => {
  const assertion = await emaAssertion('alice')
  const token = await redeem(assertion, 'alice@tools')
  const tools = await open('tools', token, 'ema-init')
  const answer = await call(tools, 'ema-echo', 'echo', { message: ARGUMENT })
  t.same(answer.result, { content: [{ type: 'text', text: ARGUMENT }] }, 'the wildcard server answered')
  const line = auditOf('tools', 'ema-echo')
  t.equal(line.length, 1, 'one audit line')
  t.equal(line[0]?.['portcullis.auth.assertion_jti'], jti(assertion), 'naming the ID-JAG the token came from')

  // Credentials in the wrong place are refused — and must not be logged either.
  for (const [what, wrong] of [['ID token', await stack.idToken('alice')], ['ID-JAG', assertion]] as const) {
    keep(`alice's ${what} (misused)`, wrong)
    const res = await request(stack.gw.mcpUrl('tools'), {
      method: 'POST',
      headers: { ...POST_HEADERS, authorization: `Bearer ${wrong}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'wrong', method: 'tools/list' }),
    })
    await res.body.dump()
    t.equal(res.statusCode, 401, `an ${what} is not an access token`)
  }
  const rejected = await stack.redeem({ grant_type: JWT_BEARER, assertion: secrets.get("alice's ID token") as string })
  t.equal(rejected.status, 400, 'an ID token is not an ID-JAG')
})

t.test('the scripted calls: allowed, denied, tool error, unknown tool', async (t) => {
  aliceAssertion = await mintedAssertion('alice', 'guarded')
  const token = await redeem(aliceAssertion, 'alice@guarded')
  alice = await open('guarded', token, 'init-1')
  const list = await post('guarded', token, { jsonrpc: '2.0', id: 'list-1', method: 'tools/list' }, sessionHeaders(alice))
  const listed = (list.messages[0]?.result as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name)
  t.same(listed, ['echo', 'add', 'fail'], 'tools/list shows the allowed tools')

  const echo = await call(alice, 'call-echo', 'echo', { message: ARGUMENT })
  t.same(echo.result, { content: [{ type: 'text', text: ARGUMENT }] })
  const secret = await call(alice, 'call-secret', 'secret', { message: ARGUMENT })
  t.equal(secret.error?.code, -32602, 'the denied call is answered like a missing tool')
  const fail = await call(alice, 'call-fail', 'fail', { message: ARGUMENT })
  t.equal((fail.result as { isError?: boolean }).isError, true, 'fail is a tool error')
  const unknown = await call(alice, 'call-unknown', `made-up-${randomBytes(4).toString('hex')}`, { message: ARGUMENT })
  t.equal(unknown.error?.code, -32602)
  t.same(guardedUpstream.calls, ['echo', 'fail'], 'only the allowed calls reached the upstream')
})

t.test('metrics: the expected series and values', async (t) => {
  const s = await scrape()
  t.match(s.contentType, /^application\/openmetrics-text/, 'OpenMetrics, so samples can carry exemplars')
  const server = 'guarded'
  const tc = 'portcullis_tool_calls_total'
  t.equal(value(s, tc, { server, tool: 'echo', outcome: 'success' }), 1, 'echo: success')
  t.equal(value(s, tc, { server, tool: 'secret', outcome: 'denied' }), 1, 'secret: denied, labelled with its (rule-named) tool')
  t.equal(value(s, tc, { server, tool: 'fail', outcome: 'tool_error' }), 1, 'fail: tool_error')
  t.equal(value(s, tc, { server, tool: '_unknown', outcome: 'denied' }), 1, 'a made-up name is _unknown')
  t.equal(s.samples.filter((x) => x.name === tc && x.labels.server === server).reduce((a, x) => a + x.value, 0), 4, 'and nothing else')
  t.notOk(s.text.includes('made-up-'), 'a made-up tool name never becomes a label value')

  const pd = 'portcullis_policy_decisions_total'
  t.equal(value(s, pd, { server, tool: 'echo', decision: 'allow', reason: 'allowed_by_rule' }), 1)
  t.equal(value(s, pd, { server, tool: 'fail', decision: 'allow', reason: 'allowed_by_rule' }), 1)
  t.equal(value(s, pd, { server, tool: 'secret', decision: 'deny', reason: 'denied_by_rule' }), 1)
  t.equal(value(s, pd, { server, tool: '_unknown', decision: 'deny', reason: 'no_matching_rule' }), 1)

  const mr = 'portcullis_mcp_requests_total'
  t.equal(value(s, mr, { server, method: 'initialize', outcome: 'success' }), 1)
  t.equal(value(s, mr, { server, method: 'tools/list', outcome: 'success' }), 1)
  t.equal(value(s, mr, { server, method: 'tools/call', outcome: 'success' }), 1)
  t.equal(value(s, mr, { server, method: 'tools/call', outcome: 'denied' }), 2)
  t.equal(value(s, mr, { server, method: 'tools/call', outcome: 'tool_error' }), 1)

  t.equal(value(s, 'portcullis_token_requests_total', { grant_type: 'jwt_bearer', outcome: 'issued' }), tokensIssued, `${tokensIssued} access tokens issued`)
  t.ok(s.samples.some((x) => x.name === 'portcullis_token_requests_total' && x.labels.grant_type === 'jwt_bearer' && x.labels.outcome === 'rejected' && x.value === 1),
    'the ID token offered as an assertion was counted as rejected')
  t.equal(value(s, 'portcullis_access_token_validations_total', { result: 'valid' }), validBearerRequests, `${validBearerRequests} valid access tokens`)
  t.equal(s.samples.filter((x) => x.name === 'portcullis_access_token_validations_total' && x.labels.result === 'invalid').reduce((a, x) => a + x.value, 0), 2,
    'the ID token and the ID-JAG presented as bearer tokens')

  const td = 'portcullis_tool_call_duration_seconds'
  for (const [tool, outcome] of [['echo', 'success'], ['secret', 'denied'], ['fail', 'tool_error'], ['_unknown', 'denied']]) {
    t.equal(value(s, `${td}_count`, { server, tool: tool as string, outcome: outcome as string }), 1, `${td}_count ${tool} ${outcome}`)
    t.equal(value(s, `${td}_bucket`, { server, tool: tool as string, outcome: outcome as string, le: '+Inf' }), 1)
  }
  t.ok(value(s, `${td}_sum`, { server, tool: 'echo', outcome: 'success' }) > 0, 'a duration was observed')
  t.equal(value(s, 'portcullis_mcp_request_duration_seconds_count', { server, method: 'tools/list', outcome: 'success' }), 1)
  t.equal(value(s, 'portcullis_upstream_request_duration_seconds_count', { server, method: 'tools/call' }), 2, 'two tools/call went upstream')
  t.equal(value(s, 'portcullis_build_info', { version: s.samples.find((x) => x.name === 'portcullis_build_info')?.labels.version ?? '?' }), 1)

  // Exemplars: the echo call's samples point at its trace.
  const echoSpan = serverSpan('call-echo')
  const counterExemplar = series(s, tc, { server, tool: 'echo', outcome: 'success' })?.exemplar
  t.ok(counterExemplar, 'the tool-call counter sample carries an exemplar')
  t.equal(counterExemplar?.labels.trace_id, echoSpan?.spanContext().traceId, '# {trace_id="…"} is the trace of the echo call')
  const bucketExemplars = s.samples.filter((x) => x.name === `${td}_bucket` && x.labels.tool === 'echo' && x.labels.server === server && x.exemplar !== undefined)
  t.equal(bucketExemplars.length, 1, 'one histogram bucket carries the exemplar')
  t.equal(bucketExemplars[0]?.exemplar?.labels.trace_id, echoSpan?.spanContext().traceId)
  for (const x of s.samples) {
    if (x.exemplar === undefined) continue
    t.ok(spans().some((span) => span.spanContext().traceId === x.exemplar?.labels.trace_id), `exemplar of ${x.name} names a real trace`)
  }
})

t.test('spans: SERVER per request, CLIENT child per upstream call', async (t) => {
  const echo = serverSpan('call-echo')
  t.ok(echo, 'a SERVER span for the echo call')
  if (echo === undefined) return
  t.equal(echo.name, 'tools/call echo')
  t.has(echo.attributes, {
    'mcp.method.name': 'tools/call',
    'gen_ai.tool.name': 'echo',
    'gen_ai.operation.name': 'execute_tool',
    'jsonrpc.request.id': 'call-echo',
    'mcp.protocol.version': alice.version,
    'mcp.session.id': sessionPseudonym(alice.id),
    'portcullis.server': 'guarded',
    'portcullis.policy.decision': 'allow',
    'portcullis.auth.client_id': CLIENT.id,
  }, 'the design.md §6 attributes')
  t.equal(attr(echo, 'portcullis.outcome'), 'success')
  t.equal(echo.parentSpanContext, undefined, 'a root span: the client sent no trace context')
  t.not(echo.status.code, SpanStatusCode.ERROR)
  t.equal(echo.instrumentationScope.name, 'portcullis')

  const clients = await eventually(() => { const c = clientSpansOf(echo); return c.length > 0 ? c : undefined })
  t.equal(clients?.length, 1, 'one CLIENT span for the upstream call')
  const client = clients?.[0]
  t.equal(client?.name, 'tools/call echo')
  t.equal(client?.spanContext().traceId, echo.spanContext().traceId, 'same trace')
  t.equal(client?.parentSpanContext?.spanId, echo.spanContext().spanId, 'child of the SERVER span')
  t.equal(attr(client, 'portcullis.server'), 'guarded')
  t.equal(attr(client, 'mcp.method.name'), 'tools/call')

  const up = upstreamRequestFor('call-echo')
  t.ok(up, 'the upstream got the call')
  if (client !== undefined) {
    t.equal(up?.headers.traceparent, traceparentOf(client), 'the upstream got `traceparent` naming the CLIENT span')
    t.equal(up?.body.params?._meta?.traceparent, traceparentOf(client), '… and the same in params._meta.traceparent')
  }

  for (const [id, name] of [['init-1', 'initialize'], ['list-1', 'tools/list']] as const) {
    const span = serverSpan(id)
    t.equal(span?.name, name, `${name}: a SERVER span`)
    t.equal(attr(span, 'mcp.method.name'), name)
    t.equal(attr(span, 'portcullis.auth.client_id'), CLIENT.id)
    const c = await eventually(() => clientSpansOf(span)[0])
    t.equal(c?.parentSpanContext?.spanId, span?.spanContext().spanId, `${name}: CLIENT child`)
    const upstreamTp = upstreamRequestFor(id)?.headers.traceparent
    t.equal(upstreamTp, c === undefined ? 'no client span' : traceparentOf(c), `${name}: the upstream got its traceparent`)
  }

  const fail = serverSpan('call-fail')
  t.equal(fail?.name, 'tools/call fail')
  t.equal(fail?.status.code, SpanStatusCode.ERROR, 'a tool error is an error span')
  t.equal(attr(fail, 'error.type'), 'tool_error')
  t.equal(attr(fail, 'portcullis.policy.decision'), 'allow')
  t.ok(await eventually(() => clientSpansOf(fail)[0]), 'it went upstream: a CLIENT span')

  const secret = serverSpan('call-secret')
  t.equal(secret?.name, 'tools/call secret')
  t.equal(attr(secret, 'portcullis.policy.decision'), 'deny')
  t.equal(secret?.status.code, SpanStatusCode.ERROR, 'a denial is an error span')
  t.equal(attr(secret, 'gen_ai.tool.name'), 'secret')

  const unknown = serverSpan('call-unknown')
  t.equal(unknown?.name, 'tools/call', 'a tool name outside the bounded set: no target in the span name')
  t.equal(attr(unknown, 'portcullis.policy.decision'), 'deny')
  t.equal(unknown?.status.code, SpanStatusCode.ERROR)

  t.ok(await spansSettled(), 'a later message\'s spans are recorded')
  t.same(clientSpansOf(secret), [], 'a denied call never went upstream: no CLIENT span')
  t.same(clientSpansOf(unknown), [], 'nor for the unknown tool')
  t.equal(upstreamRequestFor('call-secret'), undefined)
})

t.test('initialize and notifications are traced and labelled by their MCP method', async (t) => {
  t.equal(alice.version, PROTOCOL, `the upstream negotiated ${PROTOCOL}`)
  const init = serverSpan('init-1')
  t.equal(attr(init, 'mcp.protocol.version'), PROTOCOL, 'initialize: mcp.protocol.version is the revision the client asked for (params.protocolVersion)')
  t.equal(auditOf('guarded', 'init-1')[0]?.['mcp.protocol.version'], PROTOCOL, 'initialize: the audit line too')

  // open() sent notifications/initialized: a client message with its own POST and upstream call.
  const s = await scrape()
  const verbLabels = s.samples.filter((x) => x.name.startsWith('portcullis_upstream_request_duration_seconds') && x.labels.server === 'guarded' && x.labels.method === 'POST')
  t.same(verbLabels, [], 'portcullis_upstream_request_duration_seconds{method} is an MCP method, never the HTTP verb')
  const verbSpans = spans().filter((x) => x.kind === SpanKind.CLIENT && x.attributes['portcullis.server'] === 'guarded' && (x.name === 'POST upstream' || x.attributes['mcp.method.name'] === 'POST'))
  t.same(verbSpans.map((x) => x.name), [], 'no CLIENT span named after the HTTP verb ("POST upstream", mcp.method.name=POST)')
  t.ok(spans().some((x) => x.kind === SpanKind.SERVER && x.name === 'notifications/initialized' && x.attributes['portcullis.server'] === 'guarded'),
    'a SERVER span for the client\'s notifications/initialized (design.md §6: "per client message a SERVER span")')
})

t.test('audit: one line per request with the design.md §6 fields', async (t) => {
  const ids = ['init-1', 'list-1', 'call-echo', 'call-secret', 'call-fail', 'call-unknown']
  for (const id of ids) t.equal(auditOf('guarded', id).length, 1, `one audit line for ${id}`)
  t.equal(audits().filter((l) => l['portcullis.server'] === 'guarded' && String(l['event.name']).startsWith('mcp.')).length, ids.length, 'and no others for this server')

  const expectedCommon = {
    'enduser.pseudo.id': pseudonym('alice'),
    'portcullis.auth.client_id': CLIENT.id,
    'portcullis.auth.issuer': stack.idp.issuer,
    'portcullis.auth.assertion_jti': jti(aliceAssertion),
    'portcullis.server': 'guarded',
  }
  const check = (id: string, expected: Record<string, unknown>): void => {
    const line = auditOf('guarded', id)[0] ?? {}
    const span = serverSpan(id)
    t.match(line, { ...expectedCommon, ...expected }, `audit ${id}`)
    t.equal(line.trace_id, span?.spanContext().traceId, `${id}: trace_id is its span's`)
    t.equal(line.span_id, span?.spanContext().spanId, `${id}: span_id is its SERVER span`)
    t.type(line.duration_s, 'number')
    t.ok((line.duration_s as number) > 0 && (line.duration_s as number) < 10, `${id}: duration_s in seconds`)
    t.notOk('gen_ai.tool.call.arguments' in line, 'never the arguments')
    t.notOk(Object.values(line).includes(alice.id), 'never the sealed session id')
  }
  check('init-1', { 'event.name': 'mcp.request', 'mcp.method.name': 'initialize', outcome: 'success' })
  check('list-1', { 'event.name': 'mcp.request', 'mcp.method.name': 'tools/list', outcome: 'success', 'mcp.session.id': sessionPseudonym(alice.id) })
  check('call-echo', {
    'event.name': 'mcp.tool_call',
    'mcp.method.name': 'tools/call',
    'gen_ai.tool.name': 'echo',
    'mcp.session.id': sessionPseudonym(alice.id),
    'portcullis.policy.decision': 'allow',
    'portcullis.policy.reason': 'allowed_by_rule',
    'portcullis.policy.rule_id': 'read-tools',
    outcome: 'success',
  })
  check('call-secret', {
    'event.name': 'mcp.tool_call',
    'gen_ai.tool.name': 'secret',
    'portcullis.policy.decision': 'deny',
    'portcullis.policy.reason': 'denied_by_rule',
    'portcullis.policy.rule_id': 'no-secrets',
    outcome: 'denied',
  })
  check('call-fail', { 'event.name': 'mcp.tool_call', 'gen_ai.tool.name': 'fail', 'portcullis.policy.rule_id': 'read-tools', outcome: 'tool_error', 'error.type': 'tool_error' })
  check('call-unknown', { 'event.name': 'mcp.tool_call', 'portcullis.policy.decision': 'deny', 'portcullis.policy.reason': 'no_matching_rule', 'portcullis.policy.rule_id': 'default', outcome: 'denied' })

  const tokenLines = audits().filter((l) => l['event.name'] === 'oauth.token' && l.outcome === 'issued')
  t.equal(tokenLines.length, tokensIssued, 'one oauth.token audit line per access token issued')
  t.ok(tokenLines.some((l) => l['portcullis.auth.assertion_jti'] === jti(aliceAssertion) && l['portcullis.server'] === 'guarded' && l['oauth.grant_type'] === 'jwt_bearer'),
    'naming the assertion jti and the server')
  t.ok(audits().some((l) => l['event.name'] === 'oauth.token' && l.outcome === 'rejected'), 'the rejected redeem has its audit line')
})

t.test('bob has his own stable pseudonym', async (t) => {
  const bob = await open('guarded', await redeem(await mintedAssertion('bob', 'guarded'), 'bob@guarded'), 'bob-init')
  await call(bob, 'bob-echo', 'echo', { message: ARGUMENT })
  await call(alice, 'call-echo-2', 'echo', { message: ARGUMENT })
  const bobLine = auditOf('guarded', 'bob-echo')[0]
  const aliceLines = audits().filter((l) => l['portcullis.server'] === 'guarded' && l['portcullis.auth.assertion_jti'] === jti(aliceAssertion) &&
    String(l['event.name']).startsWith('mcp.'))
  t.equal(bobLine?.['enduser.pseudo.id'], pseudonym('bob'))
  t.not(bobLine?.['enduser.pseudo.id'], pseudonym('alice'), 'bob ≠ alice')
  t.same(new Set(aliceLines.map((l) => l['enduser.pseudo.id'])), new Set([pseudonym('alice')]), 'every one of alice\'s lines has the same pseudonym')
  t.ok(aliceLines.length >= 7)
  for (const l of audits()) {
    const p = l['enduser.pseudo.id']
    if (p === undefined) continue
    t.notOk(String(p).includes('alice') || String(p).includes('bob'), 'the pseudonym does not name the user')
  }
  t.notOk(stack.gw.rawLogs.some((l) => l.includes('alice@example.com') || l.includes('"alice-sub"') || l.includes('bob-sub')), 'no raw subject or email in the logs')
})

t.test('a client\'s trace context is continued: traceparent header', async (t) => {
  const traceId = randomBytes(16).toString('hex')
  const parentId = randomBytes(8).toString('hex')
  await call(alice, 'tp-header', 'echo', { message: ARGUMENT }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } })
  const span = serverSpan('tp-header')
  t.equal(span?.spanContext().traceId, traceId, 'the SERVER span is in the client\'s trace')
  t.equal(span?.parentSpanContext?.spanId, parentId, 'as a child of the client\'s span')
  t.equal(span?.parentSpanContext?.isRemote, true)
  const client = await eventually(() => clientSpansOf(span)[0])
  t.equal(client?.spanContext().traceId, traceId)
  t.equal(client?.parentSpanContext?.spanId, span?.spanContext().spanId)
  const up = upstreamRequestFor('tp-header')
  if (client !== undefined) {
    t.equal(up?.headers.traceparent, traceparentOf(client), 'the upstream got the CLIENT span (not the client\'s own traceparent)')
    t.equal(up?.body.params?._meta?.traceparent, traceparentOf(client))
  }
  t.equal(auditOf('guarded', 'tp-header')[0]?.trace_id, traceId, 'the audit line names the client\'s trace')
})

t.test('a client\'s trace context is continued: params._meta.traceparent', async (t) => {
  const traceId = randomBytes(16).toString('hex')
  const parentId = randomBytes(8).toString('hex')
  const otherTrace = randomBytes(16).toString('hex')
  // _meta travels with the message; it wins over the HTTP header.
  await call(alice, 'tp-meta', 'echo', { message: ARGUMENT }, {
    meta: { traceparent: `00-${traceId}-${parentId}-01` },
    headers: { traceparent: `00-${otherTrace}-${randomBytes(8).toString('hex')}-01` },
  })
  const span = serverSpan('tp-meta')
  t.equal(span?.spanContext().traceId, traceId, 'the SERVER span continues the _meta trace')
  t.equal(span?.parentSpanContext?.spanId, parentId)
  const client = await eventually(() => clientSpansOf(span)[0])
  t.equal(client?.parentSpanContext?.spanId, span?.spanContext().spanId)
  const up = upstreamRequestFor('tp-meta')
  if (client !== undefined) {
    t.equal(up?.body.params?._meta?.traceparent, traceparentOf(client), 'the upstream\'s _meta.traceparent was replaced by the CLIENT span')
    t.equal(up?.headers.traceparent, traceparentOf(client), 'and so was the header')
  }
  t.notOk(spans().some((s) => s.spanContext().traceId === otherTrace), 'the header\'s trace was not used')

  const s = await scrape()
  t.equal(series(s, 'portcullis_tool_calls_total', { server: 'guarded', tool: 'echo', outcome: 'success' })?.exemplar?.labels.trace_id, traceId,
    'the exemplar names the latest sampled trace')
})

t.test('a client\'s unsampled trace context is continued but not recorded', async (t) => {
  const traceId = randomBytes(16).toString('hex')
  await call(alice, 'tp-unsampled', 'echo', { message: ARGUMENT }, { headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-00` } })
  t.ok(await spansSettled(), 'a later message\'s spans are recorded')
  t.equal(serverSpan('tp-unsampled'), undefined, 'parent-based sampling: no span is exported')
  const up = upstreamRequestFor('tp-unsampled')
  t.match(up?.headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`), 'the upstream still gets the (unsampled) trace context')
  const line = auditOf('guarded', 'tp-unsampled')[0]
  t.ok(line, 'the audit line is written regardless of sampling')
})

t.test('a stdio upstream receives params._meta.traceparent', async (t) => {
  const token = await redeem(await mintedAssertion('alice', 'stdio'), 'alice@stdio')
  const session = await open('stdio', token, 'stdio-init')
  const answer = await call(session, 'stdio-tp', 'traceparent')
  const received = (answer.result as { content: Array<{ text: string }> }).content[0]?.text
  const span = serverSpan('stdio-tp')
  t.equal(span?.name, 'tools/call traceparent')
  t.equal(attr(span, 'portcullis.server'), 'stdio')
  const client = await eventually(() => clientSpansOf(span)[0])
  t.equal(client?.parentSpanContext?.spanId, span?.spanContext().spanId, 'a CLIENT child span for the bridged call')
  t.equal(attr(client, 'portcullis.upstream.transport'), 'stdio')
  t.equal(received, client === undefined ? 'a client span' : traceparentOf(client), 'the child process got the CLIENT span in _meta.traceparent')
  t.equal(auditOf('stdio', 'stdio-tp')[0]?.trace_id, span?.spanContext().traceId)
})

t.test('requests refused before a request of their body is judged are counted and audited', async (t) => {
  const before = await scrape()
  const garbage = keep('a forged bearer token', `forged-${randomBytes(16).toString('hex')}`)
  const refused: Array<[string, Record<string, string>, string, number, string]> = [
    ['no token', {}, JSON.stringify({ jsonrpc: '2.0', id: 'r1', method: 'tools/list' }), 401, 'unauthenticated'],
    ['a forged token', { authorization: `Bearer ${garbage}` }, JSON.stringify({ jsonrpc: '2.0', id: 'r2', method: 'tools/list' }), 401, 'unauthenticated'],
    ['a body that is not JSON', { authorization: `Bearer ${alice.token}` }, '{"jsonrpc":', 400, 'invalid_request'],
    ['an Accept without text/event-stream', { authorization: `Bearer ${alice.token}`, accept: 'application/json' }, JSON.stringify({ jsonrpc: '2.0', id: 'r4', method: 'tools/list' }), 406, 'invalid_request'],
  ]
  for (const [what, headers, body, status] of refused) {
    const res = await request(stack.gw.mcpUrl('guarded'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL, ...headers },
      body,
    })
    await res.body.dump()
    t.equal(res.statusCode, status, `${what}: ${status}`)
  }
  const after = await scrape()
  const delta = (outcome: string): number => value(after, 'portcullis_mcp_requests_total', { server: 'guarded', method: '_unknown', outcome }) -
    value(before, 'portcullis_mcp_requests_total', { server: 'guarded', method: '_unknown', outcome })
  t.equal(delta('unauthenticated'), 2, 'two unauthenticated requests, method _unknown (their body was never read)')
  t.equal(delta('invalid_request'), 2, 'two invalid requests')
  const lines = audits().filter((l) => l['portcullis.server'] === 'guarded' && l['event.name'] === 'mcp.request' && typeof l['error.type'] === 'string' && l['mcp.method.name'] === undefined)
  t.same(lines.slice(-4).map((l) => [l.outcome, l['http.response.status_code'], l['error.type']]), [
    ['unauthenticated', 401, 'PORTCULLIS_ERR_UNAUTHENTICATED'],
    ['unauthenticated', 401, 'PORTCULLIS_ERR_UNAUTHENTICATED'],
    ['invalid_request', 400, 'PORTCULLIS_ERR_PARSE'],
    ['invalid_request', 406, 'PORTCULLIS_ERR_NOT_ACCEPTABLE'],
  ], 'one audit line each, with the HTTP status and the refusal')
  t.equal(lines.at(-2)?.['enduser.pseudo.id'], pseudonym('alice'), 'a refusal after authentication (the body) names the pseudonymous user')
  t.same([lines.at(-2)?.['portcullis.auth.issuer'], lines.at(-2)?.['portcullis.auth.assertion_jti']], [stack.idp.issuer, jti(aliceAssertion)],
    'and the IdP and the ID-JAG its token came from, as every other audit line of the exchange')
  t.equal(lines.at(-1)?.['enduser.pseudo.id'], undefined, 'a refusal before it (the Accept header is judged first) names nobody')
  t.equal(lines.at(-4)?.['enduser.pseudo.id'], undefined, 'an unauthenticated one names nobody')
})

t.test('no secret anywhere: logs, spans, metrics, upstream', async (t) => {
  t.ok(await spansSettled(), 'every span is recorded: a last message\'s spans are')
  const all = spans()
  t.ok(all.length > 20, `${all.length} spans recorded`)
  const spanText = JSON.stringify(all.map((s) => ({
    name: s.name, attributes: s.attributes, events: s.events, links: s.links, status: s.status, resource: s.resource.attributes,
  })))
  const logText = stack.gw.rawLogs.join('\n')
  const metricsText = (await scrape()).text
  t.ok(stack.gw.rawLogs.length > 20, `${stack.gw.rawLogs.length} log lines`)
  t.ok(secrets.size >= 15, `${secrets.size} secrets to look for`)
  for (const [what, secret] of secrets) {
    t.notOk(logText.includes(secret), `no ${what} in any log line`)
    t.notOk(spanText.includes(secret), `no ${what} in any span`)
    t.notOk(metricsText.includes(secret), `no ${what} in the metrics`)
  }
  // Labels are bounded (design.md §6): never a user, a client, a session or a pseudonym.
  for (const [what, id] of [['subject', USERS.alice.sub], ['email', USERS.alice.email], ['subject', USERS.bob.sub], ['client id', CLIENT.id],
    ['session id', alice.id], ['pseudonym', pseudonym('alice')], ['pseudonym', pseudonym('bob')]] as const) {
    t.notOk(metricsText.includes(id), `no ${what} in the metrics`)
  }
  t.notOk(/Bearer |eyJ[A-Za-z0-9_-]{10,}/.test(logText), 'nothing that looks like a bearer token or a JWT in the logs')
  t.notOk(/Bearer |eyJ[A-Za-z0-9_-]{10,}/.test(spanText), 'nor in spans')
  const upstreamText = guardedUpstream.requests.map((r) => JSON.stringify(r.headers) + r.body).join('\n')
  for (const [what, secret] of secrets) {
    if (what === 'tool argument') continue // the upstream is where the arguments are meant to go
    t.notOk(upstreamText.includes(secret), `no ${what} sent upstream`)
  }
})
