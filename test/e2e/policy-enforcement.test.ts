// Per-tool allowlists end to end (design.md §4 tool rules, §5 "Exact answers" Policy): the
// official SDK 1.x client, with a gateway access token for alice (eng; tools.read tools.write),
// bob (sales; tools.read) or alice holding tools.read only, talks through the real gateway to
// recording upstreams (real SDK servers) answering in SSE, in JSON, and in pages. For every
// identity × tool the decision table below says allow / deny / step-up; the test checks that
// allowed calls arrive at the upstream, denied ones never do and get exactly the answer a
// nonexistent tool gets, step-ups get 403 insufficient_scope with scope=, tools/list shows exactly
// the allowed tools in upstream order (every page, nextCursor kept), and that audit lines and
// metrics record each decision with its rule and reason. A shadow-mode server decides the same
// but lets everything through, counted as would_deny.
import t from 'tap'
import { request } from 'undici'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { CLIENT, startEmaStack } from '../helpers/ema.ts'
import { RECORDING_TOOLS, startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts'
import { startModernUpstream } from '../helpers/modern-upstream.ts'
import { policyToken, type User } from '../helpers/policy-users.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'
import { POST_HEADERS, rawInitialize, readMessages, type RpcMessage } from '../helpers/raw-mcp.ts'
import { dropClientConnections } from '../helpers/mcp-http.ts'

/** The same rules on every server of this test. */
const RULES = `
    scopes: [tools.read, tools.write]
    tools:
      - allow: ["echo", "add"]
        scopes: [tools.read]
        id: read-tools
      - allow: [slow]
        scopes: [tools.write]
        claims: { groups: [eng] }
        id: eng-slow
      - allow: [fail]
        scopes: [tools.write]
        id: writers-fail
      - deny: ["sec*"]
        id: no-secrets
    prompts:
      - allow: [greet]
        id: greet-only
    resources:
      - allow: ["file:///public/*"]
        id: public-files`

const upstreams = {
  sse: await startRecordingUpstream({ promptsAndResources: true }),
  json: await startRecordingUpstream({ json: true, promptsAndResources: true }),
  paged: await startRecordingUpstream({ pageSize: 2 }),
  'paged-json': await startRecordingUpstream({ pageSize: 2, json: true }),
  shadow: await startRecordingUpstream(),
} satisfies Record<string, RecordingUpstream>
type ServerName = keyof typeof upstreams

/** an SDK 2.x server speaking 2026-07-28 (tools echo and secret) */
const modern = await startModernUpstream()

const stack = await startEmaStack(Object.entries(upstreams).map(([name, upstream]) => `
  ${name}:
    upstream: { url: ${upstream.url} }${name === 'shadow' ? '\n    mode: shadow' : ''}${RULES}`).join('') + `
  modern:
    upstream: { url: ${modern.url} }${RULES}`)

const clients: Client[] = []
t.teardown(async () => {
  for (const client of clients) await client.close().catch(() => {})
  await dropClientConnections()
  await stack.close()
  for (const upstream of Object.values(upstreams)) await upstream.close()
  await modern.close()
})

// ---------------------------------------------------------------------------------------------
// the decision table

type Cell =
  | { readonly expect: 'allow'; readonly rule: string }
  | { readonly expect: 'deny'; readonly rule: string; readonly reason: 'denied_by_rule' | 'no_matching_rule' | 'claims_not_matched' }
  | { readonly expect: 'step-up'; readonly rule: string; readonly scope: string }

const allow = (rule: string): Cell => ({ expect: 'allow', rule })
const deny = (rule: string, reason: 'denied_by_rule' | 'no_matching_rule' | 'claims_not_matched'): Cell => ({ expect: 'deny', rule, reason })
const stepUp = (rule: string, scope: string): Cell => ({ expect: 'step-up', rule, scope })

/** the upstream's five tools and one that exists nowhere */
const TOOLS = [...RECORDING_TOOLS, 'nope'] as const
type Tool = typeof TOOLS[number]

interface Identity {
  readonly name: string
  readonly user: User
  /** the scope requested at the token endpoint (default: everything the user may have) */
  readonly scope?: string
  readonly cells: Readonly<Record<Tool, Cell>>
}

const IDENTITIES: readonly Identity[] = [
  {
    name: 'alice (eng, tools.read tools.write)',
    user: 'alice',
    cells: {
      echo: allow('read-tools'),
      add: allow('read-tools'),
      slow: allow('eng-slow'),
      fail: allow('writers-fail'),
      secret: deny('no-secrets', 'denied_by_rule'),
      nope: deny('default', 'no_matching_rule'),
    },
  },
  {
    name: 'bob (sales, tools.read)',
    user: 'bob',
    cells: {
      echo: allow('read-tools'),
      add: allow('read-tools'),
      slow: deny('default', 'claims_not_matched'),
      fail: stepUp('writers-fail', 'tools.write'),
      secret: deny('no-secrets', 'denied_by_rule'),
      nope: deny('default', 'no_matching_rule'),
    },
  },
  {
    name: 'alice holding tools.read only',
    user: 'alice',
    scope: 'tools.read',
    cells: {
      echo: allow('read-tools'),
      add: allow('read-tools'),
      slow: stepUp('eng-slow', 'tools.write'),
      fail: stepUp('writers-fail', 'tools.write'),
      secret: deny('no-secrets', 'denied_by_rule'),
      nope: deny('default', 'no_matching_rule'),
    },
  },
]

const ARGS: Readonly<Record<Tool, Record<string, unknown>>> = {
  echo: { message: 'argument-canary-7f3a' },
  add: { a: 1, b: 2 },
  slow: { steps: 1, ms: 1 },
  fail: {},
  secret: {},
  nope: {},
}

const allowedOf = (identity: Identity): string[] => RECORDING_TOOLS.filter((tool) => identity.cells[tool].expect === 'allow')

// ---------------------------------------------------------------------------------------------
// helpers

const tokens = new Map<string, Promise<string>>()
async function token (identity: Identity, server: ServerName): Promise<string> {
  const key = `${identity.name}@${server}`
  let promise = tokens.get(key)
  if (promise === undefined) tokens.set(key, promise = policyToken(stack, identity.user, server, identity.scope))
  return await promise
}

async function connect (server: ServerName, bearer: string): Promise<Client> {
  const client = new Client({ name: 'policy-enforcement', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.gw.mcpUrl(server)), {
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  }))
  clients.push(client)
  return client
}

/** tools/call bodies the upstream received naming this tool */
function callsReceived (upstream: RecordingUpstream, tool: string, from = 0): number {
  return upstream.requests.slice(from).filter((r) => {
    if (r.body === '') return false
    const parsed = JSON.parse(r.body) as unknown
    return (Array.isArray(parsed) ? parsed : [parsed]).some((m: { method?: unknown, params?: { name?: unknown } }) =>
      m.method === 'tools/call' && m.params?.name === tool)
  }).length
}

type Audit = Record<string, unknown>
const audits = (): Audit[] => stack.gw.logs.filter((l) => l['log.type'] === 'audit')

/** the audit lines of tool calls on `server` naming `tool`, after index `from` of the audit log (waits briefly: a 403 is audited when its response closes) */
async function toolAudits (server: string, tool: string, from: number, n = 1): Promise<Audit[]> {
  const pick = (): Audit[] => audits().slice(from).filter((l) => l['event.name'] === 'mcp.tool_call' && l['portcullis.server'] === server && l['gen_ai.tool.name'] === tool)
  for (let i = 0; i < 50 && pick().length < n; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  return pick()
}

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, messages: RpcMessage[] }
async function rawPost (server: ServerName, bearer: string, body: unknown, session?: { sessionId: string, protocolVersion: string }): Promise<Raw> {
  const res = await request(stack.gw.mcpUrl(server), {
    method: 'POST',
    headers: {
      ...POST_HEADERS,
      authorization: `Bearer ${bearer}`,
      ...(session === undefined ? {} : { 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion }),
    },
    body: JSON.stringify(body),
  })
  return { status: res.statusCode, headers: res.headers, messages: await readMessages(res) }
}

// ---------------------------------------------------------------------------------------------
// identities × tools, through the SDK client, JSON and SSE upstream responses

for (const server of ['sse', 'json'] as const) {
  const upstream = upstreams[server]
  for (const identity of IDENTITIES) {
    t.test(`${server} responses: ${identity.name}`, async (t) => {
      const client = await connect(server, await token(identity, server))

      const { tools, nextCursor } = await client.listTools()
      t.same(tools.map((tool) => tool.name), allowedOf(identity), 'tools/list is exactly the allowed tools, in upstream order')
      t.equal(nextCursor, undefined)

      for (const tool of TOOLS) {
        const cell = identity.cells[tool]
        const calls = upstream.calls.length
        const requests = upstream.requests.length
        const auditFrom = audits().length
        const outcome = await client.callTool({ name: tool, arguments: ARGS[tool] }).then((result) => ({ result }), (error: unknown) => ({ error }))
        const [line] = await toolAudits(server, tool, auditFrom)
        if (cell.expect === 'allow') {
          t.ok('result' in outcome, `${tool}: allowed`)
          t.same(upstream.calls.slice(calls), [tool], `${tool}: executed by the upstream`)
          t.match(line, {
            'portcullis.policy.decision': 'allow',
            'portcullis.policy.rule_id': cell.rule,
            'portcullis.policy.reason': 'allowed_by_rule',
            outcome: tool === 'fail' ? 'tool_error' : 'success',
            'portcullis.auth.client_id': CLIENT.id,
          }, `${tool}: audited as allowed by ${cell.rule}`)
          continue
        }
        const error = 'error' in outcome ? outcome.error : undefined
        if (cell.expect === 'deny') {
          t.ok(error instanceof McpError, `${tool}: a JSON-RPC error`)
          t.equal((error as McpError).code, -32602, `${tool}: -32602`)
          t.equal((error as McpError).message, `MCP error -32602: Unknown tool: ${tool}`, `${tool}: "Unknown tool: ${tool}"`)
          t.match(line, { 'portcullis.policy.decision': 'deny', 'portcullis.policy.rule_id': cell.rule, 'portcullis.policy.reason': cell.reason, outcome: 'denied' },
            `${tool}: audited as denied (${cell.rule}, ${cell.reason})`)
        } else {
          t.ok(error instanceof Error && !(error instanceof McpError), `${tool}: refused at the HTTP level (step-up)`)
          t.equal((error as { code?: unknown }).code, 403, `${tool}: HTTP 403`)
          t.match(line, { 'portcullis.policy.decision': 'deny', 'portcullis.policy.rule_id': cell.rule, 'portcullis.policy.reason': 'insufficient_scope', outcome: 'denied' },
            `${tool}: audited as insufficient_scope (${cell.rule})`)
        }
        t.equal(upstream.calls.length, calls, `${tool}: nothing executed upstream`)
        t.equal(callsReceived(upstream, tool, requests), 0, `${tool}: no tools/call for it reached the upstream`)
      }

      // prompts and resources: one allow rule each, the same for every identity
      const { prompts } = await client.listPrompts()
      t.same(prompts.map((p) => p.name), ['greet'], 'prompts/list: only the allowed prompt')
      const reads = upstream.reads.length
      const greeting = await client.getPrompt({ name: 'greet', arguments: { name: 'policy' } })
      t.match(greeting.messages, [{ content: { text: 'Hello policy' } }], 'prompts/get of an allowed prompt')
      const promptError = await client.getPrompt({ name: 'internal-prompt' }).then(() => undefined, (e: unknown) => e)
      t.ok(promptError instanceof McpError)
      t.equal((promptError as McpError).code, -32602)
      t.equal((promptError as McpError).message, 'MCP error -32602: Unknown prompt: internal-prompt', 'a denied prompts/get: -32602 Unknown prompt')

      const { resources } = await client.listResources()
      t.same(resources.map((r) => r.uri), ['file:///public/readme.txt'], 'resources/list: only the allowed resource')
      const readme = await client.readResource({ uri: 'file:///public/readme.txt' })
      t.match(readme.contents, [{ text: 'public' }], 'resources/read of an allowed resource')
      t.same(upstream.reads.slice(reads), ['prompt:greet', 'resource:file:///public/readme.txt'], 'the allowed prompt and resource were served')
      const resourceError = await client.readResource({ uri: 'file:///secret/keys.txt' }).then(() => undefined, (e: unknown) => e)
      t.ok(resourceError instanceof McpError)
      t.equal((resourceError as McpError).code, -32002)
      t.equal((resourceError as McpError).message, 'MCP error -32002: Resource not found', 'a denied resources/read: -32002 Resource not found')
      t.same((resourceError as McpError).data, { uri: 'file:///secret/keys.txt' })
      t.notOk(upstream.reads.includes('prompt:internal-prompt') || upstream.reads.includes('resource:file:///secret/keys.txt'),
        'the denied prompt and resource were never served')
    })
  }
}

t.test('a denied tool gets byte for byte the answer of a tool that does not exist', async (t) => {
  for (const server of ['sse', 'json'] as const) {
    const bob = await token(IDENTITIES[1] as Identity, server)
    const session = await rawInitialize(stack.gw.mcpUrl(server), { authorization: `Bearer ${bob}` })
    const ask = async (name: string): Promise<Raw> =>
      await rawPost(server, bob, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } }, session)
    const nope = await ask('nope')
    t.equal(nope.status, 200, `${server}: HTTP 200 for a nonexistent tool`)
    t.same(nope.messages, [{ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Unknown tool: nope' } }])
    for (const denied of ['secret', 'slow']) {
      const res = await ask(denied)
      t.equal(res.status, nope.status, `${server} ${denied}: same status`)
      t.equal(res.headers['content-type'], nope.headers['content-type'], `${server} ${denied}: same content type`)
      t.equal(JSON.stringify(res.messages).replace(denied, 'nope'), JSON.stringify(nope.messages), `${server} ${denied}: same body but for the name`)
    }
  }
})

t.test('step-up: 403 insufficient_scope naming the scope, with the resource metadata', async (t) => {
  for (const [identity, tool] of [[IDENTITIES[1], 'fail'], [IDENTITIES[2], 'slow'], [IDENTITIES[2], 'fail']] as const) {
    const bearer = await token(identity as Identity, 'sse')
    const session = await rawInitialize(stack.gw.mcpUrl('sse'), { authorization: `Bearer ${bearer}` })
    const before = upstreams.sse.requests.length
    const res = await rawPost('sse', bearer, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: tool, arguments: {} } }, session)
    t.equal(res.status, 403, `${(identity as Identity).name} ${tool}: 403`)
    t.equal(res.headers['www-authenticate'],
      `Bearer error="insufficient_scope", scope="tools.write", resource_metadata="${stack.issuer}/.well-known/oauth-protected-resource/mcp/sse"`)
    t.match(res.messages, [{ id: 9, error: { code: -32600 } }])
    t.equal(upstreams.sse.requests.length, before, 'nothing reached the upstream')
  }
})

t.test('tools/list is filtered in JSON and in SSE responses', async (t) => {
  for (const [server, type] of [['sse', /^text\/event-stream/], ['json', /^application\/json/]] as const) {
    for (const identity of IDENTITIES) {
      const bearer = await token(identity, server)
      const session = await rawInitialize(stack.gw.mcpUrl(server), { authorization: `Bearer ${bearer}` })
      const res = await rawPost(server, bearer, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, session)
      t.match(res.headers['content-type'], type, `${server}: the upstream answered in ${String(type)}`)
      t.equal(res.messages.length, 1)
      const result = res.messages[0]?.result as { tools: Array<{ name: string }> }
      t.same(result.tools.map((tool) => tool.name), allowedOf(identity), `${server}, ${identity.name}: exactly the allowed tools`)
      t.notOk('nextCursor' in result, 'no nextCursor invented')
    }
  }
})

t.test('2026-07-28: the filtered list is marked cacheScope "private"', async (t) => {
  const bob = await policyToken(stack, 'bob', 'modern')
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} }
  const headers = { ...POST_HEADERS, authorization: `Bearer ${bob}`, 'mcp-protocol-version': '2026-07-28' }
  const listed = await request(stack.gw.mcpUrl('modern'), {
    method: 'POST',
    headers: { ...headers, 'mcp-method': 'tools/list' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }),
  })
  t.equal(listed.statusCode, 200)
  const [message] = await readMessages(listed)
  const result = message?.result as { tools: Array<{ name: string }>, cacheScope?: string }
  t.same(result.tools.map((tool) => tool.name), ['echo'], 'secret hidden')
  t.equal(result.cacheScope, 'private', 'cacheScope: private')
  const before = modern.requests.length
  const denied = await request(stack.gw.mcpUrl('modern'), {
    method: 'POST',
    headers: { ...headers, 'mcp-method': 'tools/call', 'mcp-name': 'secret' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'secret', arguments: {}, _meta: meta } }),
  })
  t.same(await readMessages(denied), [{ jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Unknown tool: secret' } }], 'a denied call: Unknown tool')
  t.equal(modern.requests.length, before, 'nothing reached the upstream')
})

// ---------------------------------------------------------------------------------------------
// pagination: every page filtered, nextCursor kept exactly, an all-denied page is []

for (const server of ['paged', 'paged-json'] as const) {
  const upstream = upstreams[server]
  for (const identity of IDENTITIES.slice(0, 2)) {
    t.test(`pages of 2 (${server}): ${identity.name}`, async (t) => {
      const client = await connect(server, await token(identity, server))
      const expected = [0, 2, 4].map((start) => ({
        tools: RECORDING_TOOLS.slice(start, start + 2).filter((tool) => identity.cells[tool].expect === 'allow'),
        nextCursor: start + 2 < RECORDING_TOOLS.length ? `page:${start + 2}` : undefined,
      }))
      const pages: Array<{ tools: string[], nextCursor: string | undefined }> = []
      const requests = upstream.requests.length
      let cursor: string | undefined
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor })
        pages.push({ tools: page.tools.map((tool) => tool.name), nextCursor: page.nextCursor })
        cursor = page.nextCursor
      } while (cursor !== undefined && pages.length < 10)
      t.same(pages, expected, 'each page holds exactly its allowed tools; nextCursor as the upstream sent it')
      const cursors = upstream.requests.slice(requests)
        .map((r) => r.body === '' ? undefined : JSON.parse(r.body) as { method?: string, params?: { cursor?: string } })
        .filter((m) => m?.method === 'tools/list')
        .map((m) => m?.params?.cursor)
      t.same(cursors, [undefined, 'page:2', 'page:4'], 'the cursors reached the upstream unchanged')
      t.same(pages.flatMap((p) => p.tools), allowedOf(identity), 'all pages together: the allowed set')
    })
  }

  t.test(`an all-denied page is "tools": [] and keeps nextCursor (${server})`, async (t) => {
    const bob = await token(IDENTITIES[1] as Identity, server)
    const session = await rawInitialize(stack.gw.mcpUrl(server), { authorization: `Bearer ${bob}` })
    const middle = await rawPost(server, bob, { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { cursor: 'page:2' } }, session)
    t.same(middle.messages, [{ jsonrpc: '2.0', id: 4, result: { tools: [], nextCursor: 'page:4' } }], 'slow and fail hidden from bob: [] with the next cursor')
    const last = await rawPost(server, bob, { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { cursor: 'page:4' } }, session)
    t.same(last.messages, [{ jsonrpc: '2.0', id: 5, result: { tools: [] } }], 'the last page (secret) is [] without a cursor')
  })
}

// ---------------------------------------------------------------------------------------------
// shadow mode: decided, logged and counted, never blocked

t.test('shadow mode: denied calls reach the upstream, counted and audited as would_deny', async (t) => {
  const bob = IDENTITIES[1] as Identity
  const client = await connect('shadow', await token(bob, 'shadow'))
  const before = await scrape(stack.gw.adminUrl)
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name), [...RECORDING_TOOLS], 'lists are not filtered in shadow mode')
  const auditFrom = audits().length
  const calls = upstreams.shadow.calls.length
  const secret = await client.callTool({ name: 'secret', arguments: {} })
  t.match(secret.content, [{ text: 'the secret' }], 'a denied tool still runs')
  await client.callTool({ name: 'slow', arguments: { steps: 1, ms: 1 } })
  await client.callTool({ name: 'fail', arguments: {} })
  await client.callTool({ name: 'echo', arguments: { message: 'x' } })
  t.same(upstreams.shadow.calls.slice(calls), ['secret', 'slow', 'fail', 'echo'], 'every call reached the upstream')

  const [secretLine] = await toolAudits('shadow', 'secret', auditFrom)
  t.match(secretLine, { 'portcullis.policy.decision': 'would_deny', 'portcullis.policy.rule_id': 'no-secrets', 'portcullis.policy.reason': 'denied_by_rule', outcome: 'success' })
  const [slowLine] = await toolAudits('shadow', 'slow', auditFrom)
  t.match(slowLine, { 'portcullis.policy.decision': 'would_deny', 'portcullis.policy.rule_id': 'default', 'portcullis.policy.reason': 'claims_not_matched' })
  const [failLine] = await toolAudits('shadow', 'fail', auditFrom)
  t.match(failLine, { 'portcullis.policy.decision': 'would_deny', 'portcullis.policy.reason': 'insufficient_scope', outcome: 'tool_error' })
  const [echoLine] = await toolAudits('shadow', 'echo', auditFrom)
  t.match(echoLine, { 'portcullis.policy.decision': 'allow', 'portcullis.policy.rule_id': 'read-tools', outcome: 'success' })

  const after = await scrape(stack.gw.adminUrl)
  const delta = (labels: Record<string, string>): number =>
    metricSum(after, 'portcullis_policy_decisions_total', labels) - metricSum(before, 'portcullis_policy_decisions_total', labels)
  t.equal(delta({ server: 'shadow', decision: 'would_deny' }), 3, 'three would_deny decisions counted')
  t.equal(delta({ server: 'shadow', decision: 'would_deny', reason: 'denied_by_rule' }), 1)
  t.equal(delta({ server: 'shadow', decision: 'would_deny', reason: 'insufficient_scope' }), 1)
  t.equal(delta({ server: 'shadow', decision: 'deny' }), 0, 'nothing counted as deny')
  t.equal(delta({ server: 'shadow', decision: 'allow' }), 1)
  t.equal(metricSum(after, 'portcullis_tool_calls_total', { server: 'shadow', outcome: 'denied' }), 0, 'no tool call counted as denied')
})

// ---------------------------------------------------------------------------------------------
// what the audit log and the metrics say about all of the above

t.test('every policy decision is audited with server, tool, rule id and reason — never the arguments', async (t) => {
  const toolLines = audits().filter((l) => l['event.name'] === 'mcp.tool_call')
  t.ok(toolLines.length > 30, `${toolLines.length} tool-call audit lines`)
  for (const line of toolLines) {
    if (line['portcullis.server'] === 'tools' || line['portcullis.server'] === 'other') continue
    t.type(line['portcullis.server'], 'string')
    t.type(line['gen_ai.tool.name'], 'string')
    t.match(line['portcullis.policy.decision'], /^(allow|deny|would_deny)$/)
    t.type(line['portcullis.policy.rule_id'], 'string')
    t.type(line['portcullis.policy.reason'], 'string')
  }
  for (const line of stack.gw.rawLogs) {
    if (line.includes('argument-canary-7f3a')) t.fail(`a log line carries a tool argument: ${line.slice(0, 200)}`)
  }
  const promptLine = audits().find((l) => l['mcp.method.name'] === 'prompts/get' && l['gen_ai.prompt.name'] === 'internal-prompt')
  t.match(promptLine, { 'portcullis.policy.decision': 'deny', 'portcullis.policy.reason': 'no_matching_rule', outcome: 'denied' }, 'a denied prompt is audited')
  const resourceLine = audits().find((l) => l['mcp.method.name'] === 'resources/read' && l['mcp.resource.uri'] === 'file:///secret/keys.txt')
  t.match(resourceLine, { 'portcullis.policy.decision': 'deny', 'portcullis.policy.reason': 'no_matching_rule', outcome: 'denied' }, 'a denied resource read is audited')
})

t.test('metrics: portcullis_policy_decisions_total and portcullis_tool_calls_total agree with the audit log', async (t) => {
  const samples = await scrape(stack.gw.adminUrl)
  const count = (server: string, tool: string, decision: string, reason?: string): number =>
    audits().filter((l) => l['event.name'] === 'mcp.tool_call' && l['portcullis.server'] === server && l['gen_ai.tool.name'] === tool &&
      l['portcullis.policy.decision'] === decision && (reason === undefined || l['portcullis.policy.reason'] === reason)).length
  for (const server of ['sse', 'json']) {
    const secretDenied = count(server, 'secret', 'deny')
    t.equal(secretDenied, 4, `${server}: secret denied once per identity, plus the raw comparison`)
    t.equal(metricSum(samples, 'portcullis_policy_decisions_total', { server, tool: 'secret', decision: 'deny', reason: 'denied_by_rule' }), secretDenied,
      `${server}: deny decisions for secret`)
    t.equal(metricSum(samples, 'portcullis_tool_calls_total', { server, tool: 'secret', outcome: 'denied' }), secretDenied, `${server}: denied secret calls`)
    t.equal(metricSum(samples, 'portcullis_policy_decisions_total', { server, tool: 'echo', decision: 'allow', reason: 'allowed_by_rule' }), count(server, 'echo', 'allow'))
    t.equal(metricSum(samples, 'portcullis_tool_calls_total', { server, tool: 'echo', outcome: 'success' }), count(server, 'echo', 'allow'))
    t.equal(metricSum(samples, 'portcullis_policy_decisions_total', { server, tool: 'fail', decision: 'deny', reason: 'insufficient_scope' }),
      count(server, 'fail', 'deny', 'insufficient_scope'), `${server}: step-ups counted`)
    t.equal(metricSum(samples, 'portcullis_policy_decisions_total', { server, tool: 'slow', decision: 'deny', reason: 'claims_not_matched' }),
      count(server, 'slow', 'deny', 'claims_not_matched'))
    t.equal(metricSum(samples, 'portcullis_policy_decisions_total', { server, tool: '_unknown', decision: 'deny', reason: 'no_matching_rule' }),
      count(server, 'nope', 'deny'), `${server}: a made-up tool name is labelled _unknown`)
    t.equal(metricSum(samples, 'portcullis_tool_calls_total', { server, outcome: 'denied' }),
      audits().filter((l) => l['event.name'] === 'mcp.tool_call' && l['portcullis.server'] === server && l.outcome === 'denied').length,
      `${server}: every denied call (deny and step-up) counted as outcome="denied"`)
  }
})
