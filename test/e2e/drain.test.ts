// Drain (issue 17): SIGTERM to a replica under load — readiness turns 503, GET streams end cleanly
// at once, the listener takes nothing new, every tool call in flight finishes with its answer, and
// the process exits 0 — while a balancer that took the replica out (as Kubernetes does during the
// preStop sleep) keeps serving every call from the other replica: 0 failed calls.
import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startBalancer } from '../helpers/balancer.ts'
import { startGatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS, readMessages } from '../helpers/raw-mcp.ts'

const CALL_MS = 1_500
const held: ServerResponse[] = []
/** the ids of the tool calls the upstream has received, and who waits for more */
const received = new Set<number>()
let onCall: (() => void) | undefined
const upstream = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(': open\n\n')
    held.push(res)
    return
  }
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    const message = JSON.parse(body) as { id?: number, params?: { arguments?: { message?: string } } }
    if (message.id === undefined) { res.writeHead(202).end(); return }
    received.add(message.id)
    onCall?.()
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: message.params?.arguments?.message ?? '' }] } }))
    }, CALL_MS)
  })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const balancer = await startBalancer()
const yaml = `
publicUrl: ${balancer.url}
listen: { host: 127.0.0.1, port: 0, drainTimeoutMs: 10000 }
servers:
  slow:
    upstream: { url: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp }
    auth: none
    tools: [{ allow: ["*"] }]
`
const [a, b] = await Promise.all([startGatewayProcess({ yaml }), startGatewayProcess({ yaml })])
if (a === undefined || b === undefined) throw new Error('two replicas')
balancer.setTargets([a.url, b.url])
t.teardown(async () => {
  await Promise.allSettled([a.stop(), b.stop()])
  await balancer.close()
  for (const res of held) res.destroy()
  await new Promise((resolve) => upstream.close(resolve))
})

async function call (base: string, id: number): Promise<{ status: number, text: string | undefined }> {
  const res = await request(`${base}/mcp/slow`, {
    method: 'POST',
    headers: POST_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `call ${id}` } } }),
  })
  const [message] = await readMessages(res)
  const result = message?.result as { content?: Array<{ text?: string }> } | undefined
  return { status: res.statusCode, text: result?.content?.[0]?.text }
}

t.test('SIGTERM under load: in-flight calls finish, streams end cleanly, exit 0, no call fails', async (t) => {
  // load through the balancer, all along
  let stop = false
  const failures: string[] = []
  let served = 0
  // the calls that started once the draining replica was gone, and who waits for them
  let exitedAt = Infinity
  let doneAfterExit = 0
  let onDoneAfterExit: (() => void) | undefined
  const workers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const id = 1000 * (w + 1) + i
      const startedAt = Date.now()
      const r = await call(balancer.url, id).catch((err: unknown) => ({ status: 0, text: String(err) }))
      if (r.status === 200 && r.text === `call ${id}`) served++
      else failures.push(`${r.status} ${r.text ?? ''}`)
      if (startedAt >= exitedAt) { doneAfterExit++; onDoneAfterExit?.() }
    }
  })
  // a GET stream open at the replica that will drain
  const stream = await request(`${a.url}/mcp/slow`, { method: 'GET', headers: { accept: 'text/event-stream' } })
  t.equal(stream.statusCode, 200, 'a GET stream is open at the replica')
  const streamEnded = stream.body.text().then(() => 'ended', (err: unknown) => `failed: ${String(err)}`)
  // calls in flight at that replica
  const inFlight = Array.from({ length: 8 }, async (_, i) => await call(a.url, 100 + i))
  // in flight = the upstream has every one of them (each takes CALL_MS to answer)
  await new Promise<void>((resolve) => {
    onCall = () => { if (Array.from({ length: 8 }, (_, i) => 100 + i).every((id) => received.has(id))) resolve() }
    onCall()
  })

  // Kubernetes removes the endpoint (preStop sleep), then sends SIGTERM
  balancer.setTargets([b.url])
  const started = Date.now()
  const exited = a.stop(15_000)
  // the replica logs `draining` as it takes the signal, and turns unready in the same step
  await a.waitForLog((l) => l.msg === 'draining')
  const ready = await request(`${a.adminUrl}/readyz`).then(async (r) => { await r.body.dump(); return r.statusCode }, () => 0)
  t.equal(ready, 503, 'readiness is 503 while draining')
  const refused = await request(`${a.url}/mcp/slow`, {
    method: 'POST', headers: POST_HEADERS, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  }).then(async (r) => { await r.body.dump(); return r.statusCode }, () => 'refused')
  t.ok(refused === 'refused' || refused === 503, `a new connection during the drain is not served (${refused})`)
  t.equal(await streamEnded, 'ended', 'the GET stream ended cleanly')

  const answers = await Promise.all(inFlight)
  t.same(answers.map((r) => r.status), Array(8).fill(200), 'every call in flight at the draining replica got its answer')
  t.ok(answers.every((r, i) => r.text === `call ${100 + i}`))
  t.equal(await exited, 0, 'exit code 0')
  t.ok(Date.now() - started < CALL_MS + 3_000, `the drain took as long as the calls in flight (${Date.now() - started} ms), not the drain timeout`)
  // the load goes on after the replica is gone: wait for four calls (one round of the workers)
  // that started after its exit to complete, whatever their outcome
  exitedAt = Date.now()
  await new Promise<void>((resolve) => { onDoneAfterExit = () => { if (doneAfterExit >= 4) resolve() } })
  stop = true
  await Promise.all(workers)
  t.same(failures, [], 'no call through the balancer failed')
  t.ok(served >= 4, `the load was served all along (${served} calls)`)
})
