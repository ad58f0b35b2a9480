// Backpressure (issue 17): a client that stops reading its SSE stream makes the gateway stop
// reading the upstream, and after limits.streamStallMs (or past maxStreamBufferBytes unread) the
// stream is closed and counted — the gateway's memory stays flat — while another client's stream
// and calls carry on. Both for a relayed Streamable HTTP stream and a bridged (stdio) one.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS, readMessages } from '../helpers/raw-mcp.ts'

const EVENT = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x'.repeat(16 * 1024) } })}\n\n`
/** An upstream whose GET stream sends 16 KiB events as fast as its socket takes them; POSTs answer JSON. */
let written = 0
const streams: ServerResponse[] = []
const upstream = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    streams.push(res)
    const pump = (): void => {
      while (!res.destroyed) {
        written += EVENT.length
        if (!res.write(EVENT)) { res.once('drain', pump); return }
      }
    }
    pump()
    return
  }
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    const id = (JSON.parse(body) as { id?: number }).id
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ok' }] } }))
  })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const gw = await startGatewayProcess({
  yaml: `
publicUrl: http://127.0.0.1:1
limits: { streamStallMs: 1500, maxStreamBufferBytes: 4194304 }
servers:
  firehose:
    upstream: { url: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp }
    auth: none
    tools: [{ allow: ["*"] }]
`,
})
t.teardown(async () => {
  await gw.stop()
  for (const s of streams) s.destroy()
  await new Promise((resolve) => upstream.close(resolve))
})

const rss = async (): Promise<number> => {
  const text = await gw.metrics()
  return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0)
}

/** A client that sends the GET and then never reads a byte. */
async function stalledClient (): Promise<Socket> {
  const { hostname, port } = new URL(gw.url)
  const socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`GET /mcp/firehose HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`)
  socket.pause()
  return socket
}

t.test('a client that stops reading: the upstream is not read further, the stream closes after the stall, counted', async (t) => {
  const before = await rss()
  const socket = await stalledClient()
  const closed = new Promise<number>((resolve) => { const at = Date.now(); socket.once('close', () => resolve(Date.now() - at)) })
  socket.on('error', () => {})
  // a well-behaved client meanwhile
  const control = await request(`${gw.url}/mcp/firehose`, { method: 'POST', headers: POST_HEADERS, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}' })
  t.match((await readMessages(control))[0]?.result, { content: [{ text: 'ok' }] }, 'another client is served meanwhile')
  await new Promise((resolve) => setTimeout(resolve, 800))
  const pumped = written
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.ok(written - pumped < 2 * 1024 * 1024, `the upstream is read no further while the client does not read (${written - pumped} bytes in 400 ms)`)
  // the client (paused) cannot see the close: watch the gateway's side
  const stalledAt = Date.now()
  let counted = false
  while (!counted && Date.now() - stalledAt < 10_000) {
    counted = /portcullis_streams_stalled_total\{server="firehose"\} [1-9]/.test(await gw.metrics())
    if (!counted) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(counted, `the stream was closed and counted (${Date.now() - stalledAt} ms after the upstream stopped being read)`)
  t.match(await gw.metrics(), /^portcullis_open_streams\{server="firehose",kind="get"\} 0$/m, 'no stream left open')
  socket.destroy()
  void closed
  const grown = (await rss()) - before
  t.ok(grown < 64 * 1024 * 1024, `memory stayed bounded (+${Math.round(grown / 1048576)} MiB)`)
})
