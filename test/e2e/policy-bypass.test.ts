// Trying to get past the tool policy (design.md §4, §5; protocol.md §5.6, §5.7, §7.4 PO-1…PO-6):
// each row is a hostile request sent with raw HTTP (undici) to the real gateway — alice's or
// bob's real access token — in front of recording upstreams (real SDK servers). Every row asserts
// the HTTP status and the JSON-RPC answer, and that the upstream saw nothing it should not: no
// tools/call naming a denied tool (each element of every batch looked at), no execution of it,
// no denied prompt or resource served, no hidden tool listed back to the client.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startEmaStack } from '../helpers/ema.ts'
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../helpers/recording-upstream.ts'
import { policyToken, type User } from '../helpers/policy-users.ts'
import { LEAK, POST_HEADERS, dropClientConnections, send, type HttpResult } from '../helpers/mcp-http.ts'
import { rawInitialize, sseEvents, type RpcMessage } from '../helpers/raw-mcp.ts'
import { parseMetrics } from '../helpers/policy-metrics.ts'

/** listed by the upstream besides its five tools, never allowed by any rule of `guarded` */
const LOOKALIKES = ['Secret', '\u0455ecret' /* Cyrillic dze */, '\uff53\uff45\uff43\uff52\uff45\uff54' /* fullwidth */, 'secret ', 'admin']

// `main`: stateless, JSON responses, tools/list in pages of 3, prompts and resources.
// `stateful`: sessions, SSE responses, an event log for Last-Event-ID replays.
const main = await startRecordingUpstream({ mode: 'stateless', json: true, pageSize: 3, extraTools: LOOKALIKES, promptsAndResources: true })
const stateful = await startRecordingUpstream({ resumable: true, promptsAndResources: true })

const GUARDED_TOOLS = `
    scopes: [tools.read, tools.write]
    tools:
      - allow: [echo, add]
        scopes: [tools.read]
        id: read-tools
      - allow: [slow]
        scopes: [tools.write]
        claims: { groups: [eng] }
        id: eng-slow
      - deny: ["sec*"]
        id: no-secrets`

const stack = await startEmaStack(`
  guarded:
    upstream: { url: ${main.url} }${GUARDED_TOOLS}
    prompts:
      - allow: [greet]
        id: greet-only
    resources:
      - allow: ["file:///public/*"]
        id: public-files
  open:
    upstream: { url: ${main.url} }
    scopes: [tools.read, tools.write]
    tools:
      - allow: ["*"]
        id: everything
      - deny: [secret]
        id: no-secret
    resources:
      - allow: ["*"]
        id: every-file
      - deny: ["file:///secret/*"]
        id: no-secret-files
  sessions:
    upstream: { url: ${stateful.url} }${GUARDED_TOOLS}
`)
t.teardown(async () => {
  await dropClientConnections()
  await stack.close()
  await main.close()
  await stateful.close()
})

type Server = 'guarded' | 'open' | 'sessions'
const tokens: Record<User, Partial<Record<Server, string>>> = {
  alice: {
    guarded: await policyToken(stack, 'alice', 'guarded'),
    open: await policyToken(stack, 'alice', 'open'),
    sessions: await policyToken(stack, 'alice', 'sessions'),
  },
  bob: {
    guarded: await policyToken(stack, 'bob', 'guarded'),
    sessions: await policyToken(stack, 'bob', 'sessions'),
  },
}
const bearer = (user: User, server: Server): string => `Bearer ${tokens[user][server] ?? ''}`
const aliceSession = await rawInitialize(stack.gw.mcpUrl('sessions'), { authorization: bearer('alice', 'sessions') })
const sessionHeaders = (user: User): Record<string, string> => ({
  authorization: bearer(user, 'sessions'),
  'mcp-session-id': aliceSession.sessionId,
  'mcp-protocol-version': aliceSession.protocolVersion,
})

// ---------------------------------------------------------------------------------------------
// request builders

interface PostOptions { readonly as?: User, readonly headers?: Record<string, string> }

/** POST a body (a string is sent byte for byte) to /mcp/{server} with the user's token */
const post = (server: Server, body: string | object, opts: PostOptions = {}) => async (): Promise<HttpResult> =>
  await send(stack.gw.mcpUrl(server), {
    headers: { ...POST_HEADERS, authorization: bearer(opts.as ?? 'alice', server), ...opts.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

const rpc = (id: number | string | undefined, method: string, params?: object): object =>
  ({ jsonrpc: '2.0', ...(id === undefined ? {} : { id }), method, ...(params === undefined ? {} : { params }) })
/** a tools/call request (id null: a notification) */
const call = (name: unknown, id: number | null = 1, args: object = { message: 'x' }): object => rpc(id ?? undefined, 'tools/call', { name, arguments: args })
/** a tools/call with raw JSON text for params */
const rawCall = (params: string, id = 1): string => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":${params}}`
const list = (id: number, cursor?: unknown): object => rpc(id, 'tools/list', cursor === undefined ? undefined : { cursor })
const readUri = (uri: string): object => rpc(1, 'resources/read', { uri })

const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} }
const modern = (bodyName: string, headerName: string) => post('guarded', rpc(1, 'tools/call', { name: bodyName, arguments: { message: 'x' }, _meta: MODERN_META }), {
  headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': headerName },
})

/** the answer a denied (or nonexistent) tool gets */
const unknownTool = (name: string, id: number | string = 1): object[] => [{ jsonrpc: '2.0', id, error: { code: -32602, message: `Unknown tool: ${name}` } }]
const notProcessed = (id: number): object => ({ jsonrpc: '2.0', id, error: { code: -32600, message: 'Request not processed: another request in this batch was refused' } })
const resourceNotFound = (uri: string): object[] => [{ jsonrpc: '2.0', id: 1, error: { code: -32002, message: 'Resource not found', data: { uri } } }]

/** POST tools/list on the stateful server, break the SSE stream after its priming event, replay it on a GET with Last-Event-ID */
async function getReplayOfToolsList (): Promise<HttpResult> {
  const url = stack.gw.mcpUrl('sessions')
  const live = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, ...sessionHeaders('alice') },
    body: JSON.stringify(list(4242)),
    signal: AbortSignal.timeout(5_000),
  })
  let priming: string | undefined
  for await (const event of sseEvents(live)) {
    if (event.id !== undefined && event.message === undefined) { priming = event.id; break }
  }
  live.body.destroy()
  if (priming === undefined) throw new Error('the upstream sent no priming event')
  const replay = await request(url, {
    method: 'GET',
    headers: { accept: 'text/event-stream', ...sessionHeaders('alice'), 'last-event-id': priming },
    signal: AbortSignal.timeout(5_000),
  })
  const messages: RpcMessage[] = []
  for await (const event of sseEvents(replay)) {
    if (event.message === undefined) continue
    messages.push(event.message)
    if (event.message.id === 4242) break
  }
  replay.body.destroy()
  return { status: replay.statusCode, headers: replay.headers, text: JSON.stringify(messages), ms: 0, messages }
}

/** every tools/list page through the gateway, following nextCursor */
async function walkPages (server: Server): Promise<HttpResult> {
  const pages: unknown[] = []
  let cursor: string | undefined
  let status = 0
  do {
    const res = await post(server, list(pages.length + 1, cursor))()
    status = res.status
    const result = (res.messages[0] as { result?: { tools: unknown[], nextCursor?: string } }).result
    pages.push(result)
    cursor = result?.nextCursor
  } while (cursor !== undefined && pages.length < 10)
  return { status, headers: {}, text: JSON.stringify(pages), ms: 0, messages: pages }
}

// ---------------------------------------------------------------------------------------------
// the table

interface Row {
  readonly name: string
  readonly send: () => Promise<HttpResult>
  readonly status: number
  /** the JSON-RPC messages of the answer: exactly (`same`) or as a pattern (`match`) */
  readonly same?: unknown
  readonly match?: unknown
  /** tools that must not reach the upstream in a tools/call, besides `secret` */
  readonly forbidden?: readonly string[]
  /** the tools the upstream must have executed (default none) */
  readonly executed?: readonly string[]
  /** further checks on the answer and on the requests the upstreams received */
  readonly check?: (t: Test, result: HttpResult, received: readonly RecordedRequest[]) => unknown
  /** the request is meant to reach the upstream (default: the gateway answers it alone) */
  readonly forwarded?: boolean
}

const HIDDEN = new Set(['fail', 'secret', ...LOOKALIKES])
/** no tools/list result in the answer names a tool alice may not see */
const listsNothingHidden = (t: Test, result: HttpResult): void => {
  const listed = result.messages.flatMap((m) => {
    const tools = (m as { result?: { tools?: Array<{ name?: string }> } } | undefined)?.result?.tools
    return Array.isArray(tools) ? tools.map((tool) => tool.name) : []
  })
  t.same(listed.filter((name) => name !== undefined && HIDDEN.has(name)), [], 'no hidden tool is listed')
}
const forwardedBodies = (received: readonly RecordedRequest[]): Array<Record<string, unknown>> =>
  received.filter((r) => r.body !== '').flatMap((r) => {
    const parsed = JSON.parse(r.body) as Record<string, unknown> | Array<Record<string, unknown>>
    return Array.isArray(parsed) ? parsed : [parsed]
  })

const rows: Row[] = [
  // --- case, whitespace, control characters and homoglyphs: exact names, default deny
  { name: 'case variant "Secret"', send: post('guarded', call('Secret')), status: 200, same: unknownTool('Secret'), forbidden: ['Secret'] },
  { name: 'case variant "SECRET"', send: post('guarded', call('SECRET')), status: 200, same: unknownTool('SECRET'), forbidden: ['SECRET'] },
  { name: 'trailing space "secret "', send: post('guarded', call('secret ')), status: 200, same: unknownTool('secret '), forbidden: ['secret '] },
  { name: 'escaped NUL "secret\\u0000"', send: post('guarded', rawCall('{"name":"secret\\u0000","arguments":{}}')), status: 200, same: unknownTool('secret\u0000'), forbidden: ['secret\u0000'] },
  { name: 'Cyrillic homoglyph "\u0455ecret"', send: post('guarded', call('\u0455ecret')), status: 200, same: unknownTool('\u0455ecret'), forbidden: ['\u0455ecret'] },
  { name: 'fullwidth "\uff53\uff45\uff43\uff52\uff45\uff54"', send: post('guarded', call('\uff53\uff45\uff43\uff52\uff45\uff54')), status: 200, same: unknownTool('\uff53\uff45\uff43\uff52\uff45\uff54') },
  { name: 'zero-width space "sec\\u200bret"', send: post('guarded', call('sec\u200bret')), status: 200, same: unknownTool('sec\u200bret') },
  {
    name: 'escaped name "\\u0073ecret" is judged as secret',
    send: post('guarded', rawCall('{"name":"\\u0073ecret","arguments":{}}')),
    status: 200,
    same: unknownTool('secret'),
    check: (t) => {
      const line = stack.gw.logs.filter((l) => l['event.name'] === 'mcp.tool_call' && l['portcullis.server'] === 'guarded').at(-1)
      t.match(line, { 'gen_ai.tool.name': 'secret', 'portcullis.policy.rule_id': 'no-secrets', 'portcullis.policy.reason': 'denied_by_rule' }, 'audited as secret, denied by no-secrets')
    },
  },
  // where a rule allows the variant ("*"), it is forwarded — and the upstream, comparing exactly, runs nothing
  { name: 'open server (allow *, deny secret): "Secret" is another tool', send: post('open', call('Secret')), status: 200, forwarded: true, match: [{ id: 1, result: { isError: true } }] },
  { name: 'open server: "secret\\u0000" is another tool', send: post('open', call('secret\u0000')), status: 200, forwarded: true, match: [{ id: 1, result: { isError: true } }] },
  { name: 'open server: Cyrillic "\u0455ecret" is another tool', send: post('open', call('\u0455ecret')), status: 200, forwarded: true, match: [{ id: 1, result: { isError: true } }] },
  { name: 'open server: "secret" itself is denied', send: post('open', call('secret')), status: 200, same: unknownTool('secret') },

  // --- duplicate keys: refused, never judged by one name and forwarded with another
  { name: 'duplicate "name" keys: echo then secret', send: post('guarded', rawCall('{"name":"echo","name":"secret","arguments":{"message":"x"}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: 'duplicate "name" keys: secret then echo', send: post('guarded', rawCall('{"name":"secret","name":"echo","arguments":{"message":"x"}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: '"Name":"secret" next to "name":"echo"', send: post('guarded', rawCall('{"name":"echo","Name":"secret","arguments":{"message":"x"}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: '"\\u006eame":"secret" next to "name":"echo"', send: post('guarded', rawCall('{"name":"echo","\\u006eame":"secret","arguments":{"message":"x"}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: 'duplicate "method" keys: tools/list then tools/call', send: post('guarded', '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"secret"}}'), status: 400, match: [{ error: { code: -32600 } }] },

  // --- batches (2025-03-26): every element judged; one denial refuses the whole batch
  { name: 'batch [allowed echo, denied secret]', send: post('guarded', [call('echo', 1), call('secret', 2)]), status: 200, same: [notProcessed(1), unknownTool('secret', 2)[0]] },
  { name: 'batch [denied secret, allowed echo]', send: post('guarded', [call('secret', 1), call('echo', 2)]), status: 200, same: [unknownTool('secret', 1)[0], notProcessed(2)] },
  { name: 'batch [denied notification, allowed request]', send: post('guarded', [call('secret', null), call('echo', 2)]), status: 200, same: [notProcessed(2)] },
  { name: 'batch [denied prompt, allowed tool]', send: post('guarded', [rpc(1, 'prompts/get', { name: 'internal-prompt' }), call('echo', 2)]), status: 200, same: [{ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Unknown prompt: internal-prompt' } }, notProcessed(2)] },
  { name: 'batch of 20 echo calls hiding one secret', send: post('guarded', Array.from({ length: 20 }, (_, i) => call(i === 13 ? 'secret' : 'echo', i + 1))), status: 200, match: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, error: { code: i === 13 ? -32602 : -32600 } })) },
  { name: 'batch under 2025-11-25 (batches not allowed)', send: post('guarded', [call('echo', 1), call('secret', 2)], { headers: { 'mcp-protocol-version': '2025-11-25' } }), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: 'control: batch [echo, add] is forwarded whole', send: post('guarded', [call('echo', 1), call('add', 2, { a: 1, b: 2 })]), status: 200, forwarded: true, match: [{ id: 1, result: {} }, { id: 2, result: {} }], executed: ['echo', 'add'] },

  // --- notifications
  { name: 'a tools/call secret notification', send: post('guarded', call('secret', null)), status: 202 },
  { name: 'a prompts/get notification for a denied prompt', send: post('guarded', rpc(undefined, 'prompts/get', { name: 'internal-prompt' })), status: 202 },

  // --- 2026-07-28 Mcp-Name header vs body
  { name: '2026-07-28: Mcp-Name echo, body secret', send: modern('secret', 'echo'), status: 400, match: [{ id: 1, error: { code: -32020 } }] },
  { name: '2026-07-28: Mcp-Name secret, body echo', send: modern('echo', 'secret'), status: 400, match: [{ id: 1, error: { code: -32020 } }] },

  // --- names elsewhere: only params.name is the tool
  {
    name: 'body echo, _meta and arguments naming secret: forwarded as echo',
    send: post('guarded', rpc(1, 'tools/call', { name: 'echo', arguments: { message: 'x', name: 'secret' }, _meta: { name: 'secret', tool: 'secret', 'io.modelcontextprotocol/name': 'secret' } })),
    status: 200,
    forwarded: true,
    match: [{ id: 1, result: { content: [{ text: 'x' }] } }],
    executed: ['echo'],
    check: (t, _result, received) => t.match(forwardedBodies(received), [{ params: { name: 'echo' } }], 'forwarded with name echo'),
  },
  { name: 'params.name as an array ["secret"]', send: post('guarded', call(['secret'])), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
  { name: 'params.name as an object', send: post('guarded', call({ name: 'secret' })), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
  { name: 'params.name as a number', send: post('guarded', call(42)), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
  { name: 'params.name null', send: post('guarded', call(null)), status: 400, match: [{ id: 1, error: { code: -32602 } }] },

  // --- prototype-pollution keys
  { name: '__proto__ key in params beside name', send: post('guarded', rawCall('{"__proto__":{"name":"echo"},"name":"secret","arguments":{}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: '__proto__ key carrying the only name', send: post('guarded', rawCall('{"__proto__":{"name":"echo"},"arguments":{}}')), status: 400, match: [{ id: null, error: { code: -32600 } }] },
  { name: '__proto__ at the top level', send: post('guarded', '{"jsonrpc":"2.0","id":1,"method":"tools/call","__proto__":{"params":{"name":"echo"}},"params":{"name":"secret"}}'), status: 400, match: [{ error: { code: -32600 } }] },
  { name: 'constructor key beside name secret', send: post('guarded', rawCall('{"name":"secret","constructor":{"name":"echo"},"arguments":{}}')), status: 200, same: unknownTool('secret') },
  { name: 'constructor.prototype in arguments of echo', send: post('guarded', rawCall('{"name":"echo","arguments":{"message":"x","constructor":{"prototype":{"name":"secret"}}}}')), status: 200, forwarded: true, match: [{ id: 1, result: {} }], executed: ['echo'] },
  { name: 'a tool named "constructor"', send: post('guarded', call('constructor')), status: 200, same: unknownTool('constructor'), forbidden: ['constructor'] },
  { name: 'a tool named "__proto__"', send: post('guarded', call('__proto__')), status: 200, same: unknownTool('__proto__'), forbidden: ['__proto__'] },
  { name: 'a tool named "hasOwnProperty"', send: post('guarded', call('hasOwnProperty')), status: 200, same: unknownTool('hasOwnProperty'), forbidden: ['hasOwnProperty'] },
  { name: 'server path /mcp/__proto__', send: async () => await send(`${stack.gw.url}/mcp/__proto__`, { headers: { ...POST_HEADERS, authorization: bearer('alice', 'guarded') }, body: JSON.stringify(call('secret')) }), status: 404, match: [{ error: { code: -32600 } }] },

  // --- cursors: forwarded verbatim, whatever page they land on is filtered
  {
    name: 'made-up cursor "page:3" (fail, secret, Secret)',
    send: post('guarded', list(1, 'page:3')),
    status: 200,
    forwarded: true,
    same: [{ jsonrpc: '2.0', id: 1, result: { tools: [], nextCursor: 'page:6' } }],
    check: (t, _r, received) => t.match(forwardedBodies(received), [{ method: 'tools/list', params: { cursor: 'page:3' } }], 'cursor forwarded verbatim'),
  },
  {
    name: 'made-up misaligned cursor "page:1"',
    send: post('guarded', list(1, 'page:1')),
    status: 200,
    forwarded: true,
    match: [{ id: 1, result: { tools: [{ name: 'add' }, { name: 'slow' }], nextCursor: 'page:4' } }],
    check: (t, result) => t.equal((result.messages[0] as { result: { tools: unknown[] } }).result.tools.length, 2, 'fail is hidden'),
  },
  { name: 'made-up cursor "page:4" into the lookalikes', send: post('guarded', list(1, 'page:4')), status: 200, forwarded: true, same: [{ jsonrpc: '2.0', id: 1, result: { tools: [], nextCursor: 'page:7' } }] },
  {
    name: 'garbage cursor: the upstream\'s error, nothing listed',
    send: post('guarded', list(1, '../../secret')),
    status: 200,
    forwarded: true,
    match: [{ id: 1, error: { code: -32602 } }],
    check: (t, _r, received) => t.match(forwardedBodies(received), [{ params: { cursor: '../../secret' } }], 'cursor forwarded verbatim'),
  },
  { name: 'cursor as an object', send: post('guarded', list(1, { name: 'secret' })), status: 200, forwarded: true, match: [{ id: 1 }] },

  // --- an upstream that lists what the rules hide
  {
    name: 'every page of an upstream listing hidden tools and lookalikes (JSON)',
    send: async () => await walkPages('guarded'),
    status: 200,
    forwarded: true,
    same: [
      { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'slow' }].map((tool) => ({ ...tool, description: tool.name, inputSchema: { type: 'object' } })), nextCursor: 'page:3' },
      { tools: [], nextCursor: 'page:6' },
      { tools: [], nextCursor: 'page:9' },
      { tools: [] },
    ],
  },
  {
    name: 'tools/list of a stateful upstream in SSE',
    send: post('sessions', list(1), { headers: sessionHeaders('alice') }),
    status: 200,
    forwarded: true,
    match: [{ id: 1, result: { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'slow' }] } }],
    check: (t, result) => {
      t.match(result.headers['content-type'], /^text\/event-stream/)
      t.equal((result.messages[0] as { result: { tools: unknown[] } }).result.tools.length, 3)
    },
  },
  {
    name: 'a GET stream replay (Last-Event-ID) carrying a tools/list result',
    send: getReplayOfToolsList,
    status: 200,
    forwarded: true,
    match: [{ id: 4242, result: { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'slow' }] } }],
    check: (t, result) => t.equal((result.messages.find((m) => (m as RpcMessage).id === 4242) as { result: { tools: unknown[] } }).result.tools.length, 3, 'filtered by shape'),
  },
  {
    name: 'batch [tools/list, ping] sharing one id: refused',
    send: post('guarded', [list(1, 'page:3'), rpc(1, 'ping')]),
    status: 400,
    match: [{ error: { code: -32600 } }],
  },
  {
    name: 'batch [tools/list, tools/call echo] sharing one id: refused',
    send: post('guarded', [list(7, 'page:3'), call('echo', 7)]),
    status: 400,
    match: [{ error: { code: -32600 } }],
  },

  // --- principals
  { name: 'alice\'s session id with bob\'s token', send: post('sessions', call('echo'), { as: 'bob', headers: sessionHeaders('bob') }), status: 404, match: [{ error: { code: -32001 } }] },
  {
    name: 'alice\'s session id with bob\'s token on a GET replay',
    send: async () => await send(stack.gw.mcpUrl('sessions'), { method: 'GET', headers: { accept: 'text/event-stream', ...sessionHeaders('bob'), 'last-event-id': '0' } }),
    status: 404,
    match: [{ error: { code: -32001 } }],
  },
  { name: 'a tool allowed for alice (slow) with bob\'s token', send: post('guarded', call('slow', 1, { steps: 1, ms: 1 }), { as: 'bob' }), status: 200, same: unknownTool('slow'), forbidden: ['slow'] },
  {
    name: 'alice\'s token for another server',
    send: async () => await send(stack.gw.mcpUrl('open'), { headers: { ...POST_HEADERS, authorization: bearer('alice', 'guarded') }, body: JSON.stringify(call('echo')) }),
    status: 401,
    check: (t, result) => t.match(result.headers['www-authenticate'], /^Bearer /),
  },

  // --- prompts and resources
  { name: 'prompts/get case variant "Internal-Prompt"', send: post('guarded', rpc(1, 'prompts/get', { name: 'Internal-Prompt' })), status: 200, same: [{ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Unknown prompt: Internal-Prompt' } }] },
  { name: 'resources/read with a scheme case variant (allowlist)', send: post('guarded', readUri('FILE:///secret/keys.txt')), status: 200, same: resourceNotFound('FILE:///secret/keys.txt') },
  { name: 'resources/read with a scheme case variant (denylist)', send: post('open', readUri('FILE:///secret/keys.txt')), status: 200, match: [{ id: 1, error: {} }] },
  { name: 'resources/read with "localhost" host (denylist)', send: post('open', readUri('file://localhost/secret/keys.txt')), status: 200, match: [{ id: 1, error: {} }] },
  { name: 'resources/read with a dot segment (denylist)', send: post('open', readUri('file:///./secret/keys.txt')), status: 200, match: [{ id: 1, error: {} }] },
  { name: 'resources/read with ".." out of an allowed prefix', send: post('guarded', readUri('file:///public/../secret/keys.txt')), status: 200, match: [{ id: 1, error: {} }] },
  { name: 'resources/read with "%2e%2e" out of an allowed prefix', send: post('guarded', readUri('file:///public/%2e%2e/secret/keys.txt')), status: 200, match: [{ id: 1, error: {} }] },
]

t.ok(rows.length >= 20, `${rows.length} hostile requests`)

const upstreams: readonly RecordingUpstream[] = [main, stateful]

for (const row of rows) {
  t.test(row.name, async (t) => {
    const requests = upstreams.map((u) => u.requests.length)
    const calls = upstreams.map((u) => u.calls.length)
    const reads = upstreams.map((u) => u.reads.length)
    const result = await row.send()
    t.equal(result.status, row.status, `HTTP ${row.status}`)
    if (row.same !== undefined) t.same(result.messages, row.same, 'the exact answer')
    if (row.match !== undefined) t.match(result.messages, row.match, 'the answer')
    if (row.status === 202) t.equal(result.text, '', 'no body')
    t.notMatch(result.text.replace(/"uri":"[^"]*"/g, '"uri":""'), LEAK, 'no stack trace or internal path')

    const received = upstreams.flatMap((u, i) => u.requests.slice(requests[i]))
    const forbidden = new Set(['secret', ...(row.forbidden ?? [])])
    const leaked = forwardedBodies(received).filter((m) => m.method === 'tools/call' && forbidden.has((m.params as { name?: string } | undefined)?.name ?? ''))
    t.same(leaked, [], `no tools/call for ${[...forbidden].map((n) => JSON.stringify(n)).join(', ')} reached an upstream`)
    t.same(upstreams.flatMap((u, i) => u.calls.slice(calls[i])), row.executed ?? [], `the upstream executed ${JSON.stringify(row.executed ?? [])}`)
    const served = upstreams.flatMap((u, i) => u.reads.slice(reads[i])).filter((r) => r === 'prompt:internal-prompt' || r.startsWith('resource:file:///secret'))
    t.same(served, [], 'no denied prompt or resource was served')
    if (row.forwarded !== true) t.same(received, [], 'the gateway answered alone: nothing reached an upstream')
    listsNothingHidden(t, result)
    await row.check?.(t, result, received)
  })
}

t.test('denied calls are counted as such, per name the rules or the upstream know', async (t) => {
  // `secret` matches only a glob of the rules: it is a label value once the upstream listed it
  // (the page walk above did), `_unknown` before that
  const denied = await post('guarded', call('secret'))()
  t.same(denied.messages, unknownTool('secret'))
  const res = await request(`${stack.gw.adminUrl}/metrics`)
  const text = await res.body.text()
  t.match(text, /portcullis_policy_decisions_total\{server="guarded",tool="secret",decision="deny",reason="denied_by_rule"\} [1-9]/)
  t.match(text, /portcullis_tool_calls_total\{server="guarded",tool="secret",outcome="denied"\} [1-9]/)
  const madeUp = new Set(['SECRET', 'sec\u200bret', 'constructor', '__proto__', 'hasOwnProperty'])
  t.same(parseMetrics(text).filter((s) => madeUp.has(s.labels.tool ?? '')).map((s) => s.labels.tool), [],
    'names neither the rules nor the upstream know mint no label values')
  t.ok(parseMetrics(text).some((s) => s.name === 'portcullis_tool_calls_total' && s.labels.server === 'guarded' && s.labels.tool === '_unknown'), 'they are _unknown')
})
