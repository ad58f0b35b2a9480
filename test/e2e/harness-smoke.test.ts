// The multi-replica harness itself: two real gateway processes behind a round-robin balancer
// without affinity (test/helpers/balancer.ts, gateway-process.ts). Requests alternate between the
// replicas even on one kept-alive connection, an SSE answer streams through unbuffered, and
// SIGTERM stops each process with exit code 0, leaving nothing behind.
import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { startBalancer } from '../helpers/balancer.ts'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS, initialize, toolsCall } from '../helpers/mcp-http.ts'
import { CLOSED_PORT } from '../helpers/ports.ts'

/**
 * A stateless MCP-ish upstream: JSON answers; `tools/call slow` answers in SSE, a progress
 * notification at once and the result only when the test calls release().
 */
async function startTinyUpstream (): Promise<{ url: string, release (): void, close (): Promise<void> }> {
  const held: Array<() => void> = []
  const server = createServer((req, res) => {
    if (req.method !== 'POST') { res.writeHead(405).end(); return }
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const msg = JSON.parse(body) as { id?: number | string, method: string, params?: { name?: string, arguments?: { message?: string } } }
      const json = (result: unknown): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })) }
      if (msg.id === undefined) { res.writeHead(202).end(); return }
      if (msg.method === 'initialize') json({ protocolVersion: '2025-03-26', capabilities: { tools: {} }, serverInfo: { name: 'tiny', version: '1' } })
      else if (msg.method === 'tools/list') json({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }, { name: 'slow', inputSchema: { type: 'object' } }] })
      else if (msg.method === 'tools/call' && msg.params?.name === 'slow') slow(res, msg.id)
      else if (msg.method === 'tools/call') json({ content: [{ type: 'text', text: msg.params?.arguments?.message ?? '' }] })
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no' } }))
    })
  })
  const slow = (res: ServerResponse, id: number | string): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'first' } })}\n\n`)
    held.push(() => res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'done' }] } })}\n\n`))
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    release: () => { for (const end of held.splice(0)) end() },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
  }
}

/** The sum of portcullis_mcp_requests_total over all its series. */
function mcpRequests (metrics: string): number {
  return metrics.split('\n').filter((l) => l.startsWith('portcullis_mcp_requests_total{') || l.startsWith('portcullis_mcp_requests_total '))
    .reduce((sum, l) => sum + Number(l.trim().split(/\s+/).at(-1)), 0)
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('two gateway processes behind the balancer', async (t) => {
  const upstream = await startTinyUpstream()
  // The balancer's URL is every replica's publicUrl: it starts first, without targets.
  const balancer = await startBalancer()
  const yaml = `
publicUrl: ${balancer.url}
servers:
  tiny:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`
  const gateways: GatewayProcess[] = await Promise.all([startGatewayProcess({ yaml }), startGatewayProcess({ yaml })])
  const client = new Agent({ connections: 1 }) // one kept-alive connection to the balancer
  t.teardown(async () => {
    await Promise.all(gateways.map((g) => g.kill()))
    await client.close().catch(() => {}) // closed already, unless the test failed half-way
    await balancer.close()
    await upstream.close()
  })
  balancer.setTargets(gateways.map((g) => g.url))
  t.not(gateways[0]?.pid, gateways[1]?.pid, 'two processes')
  const mcpUrl = `${balancer.url}/mcp/tiny`

  const before = await Promise.all(gateways.map(async (g) => mcpRequests(await g.metrics())))
  const answers: string[] = []
  for (let i = 0; i < 10; i++) {
    const res = await request(mcpUrl, { dispatcher: client, method: 'POST', headers: POST_HEADERS, body: toolsCall(i, 'echo', { message: `m${i}` }) })
    answers.push(`${res.statusCode} ${await res.body.text()}`)
  }
  t.ok(answers.every((a, i) => a.startsWith('200 ') && a.includes(`"m${i}"`)), 'all 10 calls answered through the balancer', { answers })
  t.same(balancer.requestsPerTarget(), [5, 5], 'the balancer alternated: 5 requests each, on one client connection')
  const after = await Promise.all(gateways.map(async (g) => mcpRequests(await g.metrics())))
  t.same(after.map((n, i) => n - (before[i] ?? 0)), [5, 5], 'each process counted 5 MCP requests (portcullis_mcp_requests_total)')

  // SSE through the balancer: the first event arrives while the upstream still holds the answer.
  const res = await request(mcpUrl, { dispatcher: client, method: 'POST', headers: POST_HEADERS, body: toolsCall('s', 'slow'), bodyTimeout: 10_000 })
  t.equal(res.statusCode, 200, 'HTTP 200')
  t.match(String(res.headers['content-type']), /text\/event-stream/, 'an SSE answer')
  let text = ''
  const chunks = res.body[Symbol.asyncIterator]()
  while (!text.includes('notifications/message')) {
    const { value, done } = await chunks.next() as { value: Buffer, done: boolean }
    if (done) break
    text += value.toString()
  }
  t.match(text, 'notifications/message', 'the first event arrived before the upstream finished')
  t.notMatch(text, '"done"', 'and without the result, still held upstream')
  upstream.release()
  for (let r = await chunks.next(); r.done !== true; r = await chunks.next()) text += (r.value as Buffer).toString()
  t.match(text, '"done"', 'then the result')

  // A second request on another replica still works (initialize is answered by whichever).
  const init = await request(mcpUrl, { dispatcher: client, method: 'POST', headers: POST_HEADERS, body: initialize(1) })
  t.equal(init.statusCode, 200, 'initialize through the balancer')
  await init.body.text()

  await client.close()
  const codes = await Promise.all(gateways.map((g) => g.stop()))
  t.same(codes, [0, 0], 'SIGTERM: both exit 0')
  t.same(gateways.map((g) => alive(g.pid)), [false, false], 'no process left behind')
})

t.test('the balancer answers 502 for a target that refuses the connection', async (t) => {
  const balancer = await startBalancer([`http://127.0.0.1:${CLOSED_PORT}`])
  t.teardown(() => balancer.close())
  const res = await request(`${balancer.url}/mcp/x`, { method: 'POST', headers: POST_HEADERS, body: initialize(1) })
  await res.body.text()
  t.equal(res.statusCode, 502, 'HTTP 502')
  t.same(balancer.requestsPerTarget(), [1], 'counted for its target')
})
