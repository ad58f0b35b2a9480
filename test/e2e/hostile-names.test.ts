// Log amplification: 900 KB names, URIs, progress tokens and ids sent to the real gateway in front
// of a recording upstream. Each is refused before policy with a short answer that never quotes it,
// its audit line stays small, and the upstream sees nothing.
import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { POST_HEADERS, dropClientConnections, send, type HttpResult } from '../helpers/mcp-http.ts'

const upstream = await startRecordingUpstream({ mode: 'stateless', json: true, promptsAndResources: true })
const gw = await startGateway(`
publicUrl: https://gw.example.test
limits: { maxBodyBytes: 4000000 }
servers:
  open:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(async () => {
  await dropClientConnections()
  await gw.close()
  await upstream.close()
})

const HUGE = 'x'.repeat(900 * 1024)
const post = (body: object) => async (): Promise<HttpResult> => await send(gw.mcpUrl('open'), { headers: POST_HEADERS, body: JSON.stringify(body) })
const rpc = (method: string, params?: object, id: string | number = 1): object => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })
const error = (id: string | number | null, code: number, message: string): object[] => [{ jsonrpc: '2.0', id, error: { code, message } }]

interface Row {
  readonly name: string
  readonly send: () => Promise<HttpResult>
  readonly status: number
  readonly same: unknown
}

const rows: Row[] = [
  { name: 'tool name', send: post(rpc('tools/call', { name: HUGE, arguments: {} })), status: 400, same: error(1, -32602, 'Invalid params: tool name longer than 128 characters') },
  { name: 'tool name of 129 characters', send: post(rpc('tools/call', { name: 'e'.repeat(129), arguments: {} })), status: 400, same: error(1, -32602, 'Invalid params: tool name longer than 128 characters') },
  { name: 'empty tool name', send: post(rpc('tools/call', { name: '', arguments: {} })), status: 400, same: error(1, -32602, 'Invalid params: tool name is empty') },
  { name: 'prompt name', send: post(rpc('prompts/get', { name: HUGE })), status: 400, same: error(1, -32602, 'Invalid params: prompt name longer than 128 characters') },
  { name: 'method name', send: post(rpc(HUGE, {})), status: 400, same: error(null, -32600, 'Invalid Request: Invalid Request: method name longer than 128 characters') },
  { name: 'method name of a notification', send: post({ jsonrpc: '2.0', method: HUGE }), status: 400, same: error(null, -32600, 'Invalid Request: Invalid Request: method name longer than 128 characters') },
  { name: 'resource URI (read)', send: post(rpc('resources/read', { uri: `file:///${HUGE}` })), status: 400, same: error(1, -32602, 'Invalid params: resource URI longer than 2048 characters') },
  { name: 'resource URI (subscribe)', send: post(rpc('resources/subscribe', { uri: `file:///${HUGE}` })), status: 400, same: error(1, -32602, 'Invalid params: resource URI longer than 2048 characters') },
  { name: 'completion ref/prompt name', send: post(rpc('completion/complete', { ref: { type: 'ref/prompt', name: HUGE }, argument: { name: 'a', value: '' } })), status: 400, same: error(1, -32602, 'Invalid params: prompt name longer than 128 characters') },
  { name: 'completion ref/resource uri', send: post(rpc('completion/complete', { ref: { type: 'ref/resource', uri: HUGE }, argument: { name: 'a', value: '' } })), status: 400, same: error(1, -32602, 'Invalid params: resource URI longer than 2048 characters') },
  { name: 'progress token', send: post(rpc('tools/call', { name: 'echo', arguments: { message: 'x' }, _meta: { progressToken: HUGE } })), status: 400, same: error(1, -32602, 'Invalid params: progress token longer than 256 characters') },
  { name: 'string request id', send: post(rpc('tools/call', { name: 'echo', arguments: { message: 'x' } }, HUGE)), status: 400, same: error(null, -32600, 'Invalid Request: Invalid Request: id longer than 256 characters') },
  { name: 'string id of a response', send: post({ jsonrpc: '2.0', id: HUGE, result: {} }), status: 400, same: error(null, -32600, 'Invalid Request: Invalid Request: id longer than 256 characters') },
]

for (const row of rows) {
  t.test(`900 KB ${row.name}`, async (t) => {
    const requests = upstream.requests.length
    const lines = gw.rawLogs.length
    const result = await row.send()
    t.equal(result.status, row.status, `HTTP ${row.status}`)
    t.same(result.messages, row.same, 'the exact answer')
    t.ok(result.text.length < 200, `a small answer (${result.text.length} bytes)`)
    t.same(upstream.requests.slice(requests), [], 'nothing reached the upstream')
    const written = gw.rawLogs.slice(lines)
    t.ok(written.some((l) => l.includes('"log.type":"audit"')), 'an audit line was written')
    for (const line of written) t.ok(line.length < 4096, `every log line is small (${line.length} bytes)`)
  })
}

t.test('at the bounds: forwarded', async (t) => {
  const requests = upstream.requests.length
  const result = await post(rpc('tools/call', { name: 'echo', arguments: { message: 'x' }, _meta: { progressToken: 'p'.repeat(256) } }, 'i'.repeat(256)))()
  t.equal(result.status, 200)
  t.match(result.messages, [{ id: 'i'.repeat(256), result: { content: [{ text: 'x' }] } }])
  t.equal(upstream.requests.length - requests, 1, 'one request upstream')
})
