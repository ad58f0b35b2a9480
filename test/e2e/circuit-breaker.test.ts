// Circuit breaking per upstream (issue 17): after `consecutiveFailures` failures in a row a
// server's calls fail fast — 503 + Retry-After, a JSON-RPC error, the upstream not called — while
// other servers are untouched; after `halfOpenAfterMs` one probe goes through, and its success
// closes the circuit. portcullis_upstream_circuit_open{server} follows, and so do the failures of
// a stdio command that cannot start.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { POST_HEADERS, readMessages } from '../helpers/raw-mcp.ts'

/** An upstream whose answers the test switches: `ok` (a JSON result), `fail` (HTTP 500). */
let mode: 'ok' | 'fail' = 'fail'
let calls = 0
const upstream = createServer((req, res) => {
  calls++
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    if (mode === 'fail') { res.writeHead(500).end('down'); return }
    const id = (JSON.parse(body) as { id?: number }).id
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'fine' }] } }))
  })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const healthy = createServer((req, res) => {
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    const id = (JSON.parse(body) as { id?: number }).id
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'other' }] } }))
  })
})
await new Promise<void>((resolve) => healthy.listen(0, '127.0.0.1', resolve))
const port = (s: typeof upstream): number => (s.address() as AddressInfo).port

const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  flaky:
    upstream: { url: http://127.0.0.1:${port(upstream)}/mcp }
    auth: none
    tools: [{ allow: ["*"] }]
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 700 }
  steady:
    upstream: { url: http://127.0.0.1:${port(healthy)}/mcp }
    auth: none
    tools: [{ allow: ["*"] }]
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 700 }
  broken:
    upstream: { command: /nonexistent/portcullis-test-binary }
    auth: none
    tools: [{ allow: ["*"] }]
    circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 60000 }
`)
t.teardown(async () => {
  await gw.close()
  await new Promise((resolve) => upstream.close(resolve))
  await new Promise((resolve) => healthy.close(resolve))
})

async function call (server: string, id: number): Promise<{ status: number, retryAfter: string | undefined, code: number | undefined, text: string | undefined }> {
  const res = await request(gw.mcpUrl(server), {
    method: 'POST',
    headers: POST_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: {} } }),
  })
  const [message] = await readMessages(res)
  const result = message?.result as { content?: Array<{ text?: string }> } | undefined
  return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, code: message?.error?.code, text: result?.content?.[0]?.text }
}

async function gauge (server: string): Promise<string | undefined> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  return new RegExp(`^portcullis_upstream_circuit_open\\{server="${server}"\\} (\\d)$`, 'm').exec(text)?.[1]
}

t.test('failures in a row open the circuit: fail fast, Retry-After, the upstream left alone, others untouched', async (t) => {
  t.equal(await gauge('flaky'), '0', 'closed at start')
  for (let i = 1; i <= 3; i++) {
    const failed = await call('flaky', i)
    t.equal(failed.status, 502, `failure ${i}: the upstream's 500 is a 502`)
  }
  t.equal(await gauge('flaky'), '1', 'open after three failures')
  const before = calls
  for (let i = 0; i < 5; i++) {
    const started = Date.now()
    const refused = await call('flaky', 10 + i)
    t.equal(refused.status, 503, 'fail fast: 503')
    t.equal(refused.code, -32603, 'a JSON-RPC error')
    t.ok(Number(refused.retryAfter) >= 1, `with Retry-After (${refused.retryAfter})`)
    t.ok(Date.now() - started < 200, 'at once')
  }
  t.equal(calls, before, 'the upstream was not called while the circuit was open')
  t.equal((await call('steady', 20)).text, 'other', 'another server is not affected')
  t.equal(await gauge('steady'), '0')
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.match(metrics, /portcullis_upstream_errors_total\{server="flaky",reason="circuit_open"\} 5/, 'the refusals are counted')
})

t.test('after halfOpenAfterMs one probe goes through: a failed probe opens it again, a good one closes it', async (t) => {
  await new Promise((resolve) => setTimeout(resolve, 800))
  const probe = await call('flaky', 30)
  t.equal(probe.status, 502, 'the probe reached the upstream, which still fails')
  t.equal((await call('flaky', 31)).status, 503, 'so the circuit is open again')
  mode = 'ok'
  await new Promise((resolve) => setTimeout(resolve, 800))
  t.equal((await call('flaky', 32)).text, 'fine', 'the probe succeeds')
  t.equal(await gauge('flaky'), '0', 'closed')
  for (let i = 0; i < 3; i++) t.equal((await call('flaky', 40 + i)).text, 'fine', 'calls flow again')
})

t.test('a stdio command that cannot start opens its circuit: no more processes spawned', async (t) => {
  const init = async (): Promise<number> => {
    const res = await request(gw.mcpUrl('broken'), {
      method: 'POST',
      headers: POST_HEADERS,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    })
    await res.body.dump()
    return res.statusCode
  }
  const first = [await init(), await init()]
  t.ok(first.every((s) => s >= 500), `the first two starts fail (${first.join(', ')})`)
  const started = Date.now()
  t.equal(await init(), 503, 'then 503 at once')
  t.ok(Date.now() - started < 200, 'without spawning')
  t.equal(await gauge('broken'), '1')
})
