// MCP 2026-07-28 through the gateway: the SDK 2.x client pinned to the modern revision talks
// to an SDK 2.x server (no initialize, no sessions, Mcp-Method / Mcp-Name headers), and the
// gateway refuses a request whose headers disagree with its body (400) before the upstream
// sees it.
import t from 'tap'
import { request } from 'undici'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { startGateway } from '../helpers/gateway.ts'
import { startModernUpstream } from '../helpers/modern-upstream.ts'

const upstream = await startModernUpstream()
const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  modern:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(async () => {
  await gw.close()
  await upstream.close()
})

t.test('the SDK 2.x client pinned to 2026-07-28 lists and calls tools through the gateway', async (t) => {
  const client = new Client({ name: 'modern-client', version: '2.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('modern'))))
  t.teardown(() => client.close())
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['echo', 'secret'])
  const result = await client.callTool({ name: 'echo', arguments: { message: 'modern hello' } })
  t.same(result.content, [{ type: 'text', text: 'modern hello' }])
  const call = upstream.requests.find((r) => r.body.includes('"tools/call"'))
  t.equal(call?.headers['mcp-method'], 'tools/call', 'Mcp-Method is forwarded')
  t.equal(call?.headers['mcp-name'], 'echo', 'Mcp-Name is forwarded')
  t.equal(call?.headers['mcp-protocol-version'], '2026-07-28')
  t.notOk(call?.headers['mcp-session-id'], 'no session in 2026-07-28')
})

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} }
const call = (name: string, id = 7): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { message: 'x' }, _meta: META } })
const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28' }

const cases: Array<{ name: string, headers: Record<string, string>, body: string, status: number, code?: number }> = [
  { name: 'Mcp-Name names another tool than the body', headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: call('secret'), status: 400, code: -32020 },
  { name: 'Mcp-Name missing on tools/call', headers: { ...base, 'mcp-method': 'tools/call' }, body: call('echo'), status: 400, code: -32020 },
  { name: 'Mcp-Method missing', headers: { ...base, 'mcp-name': 'echo' }, body: call('echo'), status: 400, code: -32020 },
  { name: 'Mcp-Method names another method', headers: { ...base, 'mcp-method': 'tools/list', 'mcp-name': 'echo' }, body: call('echo'), status: 400, code: -32020 },
  { name: 'Mcp-Name in a case variant', headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': 'Echo' }, body: call('echo'), status: 400, code: -32020 },
  { name: 'Base64 sentinel naming another tool', headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }, body: call('secret'), status: 400, code: -32020 },
  { name: 'header version 2026-07-28, body _meta says 2025-11-25', headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: call('echo').replace('"2026-07-28"', '"2025-11-25"'), status: 400, code: -32020 },
  { name: 'body says 2026-07-28 but no version header', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: call('echo'), status: 400, code: -32020 },
  { name: 'a batch in 2026-07-28', headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: `[${call('echo', 1)},${call('echo', 2)}]`, status: 400, code: -32600 },
]

t.test('header/body disagreement is refused before the upstream (2026-07-28 Server Validation)', async (t) => {
  for (const c of cases) {
    const before = upstream.requests.length
    const res = await request(gw.mcpUrl('modern'), { method: 'POST', headers: c.headers, body: c.body })
    const body = await res.body.json() as { error?: { code?: number } }
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    if (c.code !== undefined) t.equal(body.error?.code, c.code, `${c.name}: JSON-RPC code`)
    t.equal(upstream.requests.length, before, `${c.name}: nothing reached the upstream`)
  }
})

t.test('a Base64-sentinel Mcp-Name that matches the body is accepted', async (t) => {
  const res = await request(gw.mcpUrl('modern'), {
    method: 'POST',
    headers: { ...base, 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` },
    body: call('echo'),
  })
  t.equal(res.statusCode, 200)
  t.match(await res.body.text(), /"text":"x"/)
})
