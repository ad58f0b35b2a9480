// Backpressure (issue 17): a client that stops reading its SSE stream costs the gateway a bounded
// amount of memory, and its stream is closed and counted, while other clients carry on. A relayed
// Streamable HTTP stream stops reading the upstream and is closed after limits.streamStallMs; a
// bridged (stdio) session's stream, which the MCP SDK's transport writes to regardless, is closed
// as soon as it holds maxStreamBufferBytes unread — counted where the SDK queues the messages.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { fileURLToPath } from 'node:url'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS, rawInitialize, readMessages, type RawSession } from '../helpers/raw-mcp.ts'

const floodServer = fileURLToPath(new URL('../fixtures/stdio-flood-server.ts', import.meta.url))

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
// Bridged sessions, with a stall timeout far beyond the test: a stream can only be closed here
// by the bound on what it holds unread.
const bridged = await startGatewayProcess({
  yaml: `
publicUrl: http://127.0.0.1:1
limits: { streamStallMs: 600000, maxStreamBufferBytes: 4194304 }
servers:
  flood:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(floodServer)}] }
    auth: none
    tools: [{ allow: ["*"] }]
`,
})
t.teardown(async () => {
  await gw.stop()
  await bridged.stop()
  for (const s of streams) s.destroy()
  await new Promise((resolve) => upstream.close(resolve))
})

const sample = async (g: GatewayProcess, name: string): Promise<number> => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await g.metrics())?.[1] ?? 0)
const rss = async (): Promise<number> => await sample(gw, 'process_resident_memory_bytes')

/** A client that sends the GET and then never reads a byte. */
async function stalledClient (g: GatewayProcess, server: string, session?: RawSession): Promise<Socket> {
  const { hostname, port } = new URL(g.url)
  const socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once('connect', resolve))
  const sessionHeaders = session === undefined ? '' : `Mcp-Session-Id: ${session.sessionId}\r\nMCP-Protocol-Version: ${session.protocolVersion}\r\n`
  socket.write(`GET /mcp/${server} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n${sessionHeaders}\r\n`)
  socket.pause()
  return socket
}

/** Wait (up to 10 s) for portcullis_streams_stalled_total{server} to reach `n`; how long it took, or undefined. */
async function stalledCount (g: GatewayProcess, server: string, n: number): Promise<number | undefined> {
  const at = Date.now()
  const counted = new RegExp(`^portcullis_streams_stalled_total\\{server="${server}"\\} (\\d+)$`, 'm')
  while (Date.now() - at < 10_000) {
    if (Number(counted.exec(await g.metrics())?.[1] ?? 0) >= n) return Date.now() - at
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return undefined
}

/** tools/call `name` in `session` of server `flood`: its result. */
async function callFlood (session: RawSession, name: string): Promise<unknown> {
  const res = await request(`${bridged.url}/mcp/flood`, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } }),
  })
  return (await readMessages(res)).find((m) => m.id === 7)?.result
}

t.test('a client that stops reading: the upstream is not read further, the stream closes after the stall, counted', async (t) => {
  const before = await rss()
  const socket = await stalledClient(gw, 'firehose')
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
  const ms = await stalledCount(gw, 'firehose', 1)
  t.ok(ms !== undefined, `the stream was closed and counted (${ms} ms after the upstream stopped being read)`)
  t.match(await gw.metrics(), /^portcullis_open_streams\{server="firehose",kind="get"\} 0$/m, 'no stream left open')
  socket.destroy()
  void closed
  const grown = (await rss()) - before
  t.ok(grown < 64 * 1024 * 1024, `memory stayed bounded (+${Math.round(grown / 1048576)} MiB)`)
})

t.test('a bridged (stdio) session\'s GET stream whose client stops reading: closed past maxStreamBufferBytes, counted; other sessions carry on', async (t) => {
  // Bridged sessions' transports write regardless of backpressure: the MCP SDK queues each
  // message in front of the response whether or not the client reads. The bound on what a
  // stream holds unread, counted where the SDK queues it (src/upstream/stall.ts), is what keeps
  // the gateway's memory flat — without it this stream would hold the whole 256 MiB flood.
  /** the JS heap in use and what lies outside it (Buffers: the SDK's adapter encodes each event) */
  const heap = async (): Promise<number> => await sample(bridged, 'nodejs_heap_size_used_bytes') + await sample(bridged, 'nodejs_external_memory_bytes')
  const before = await heap()
  const stalled = await rawInitialize(`${bridged.url}/mcp/flood`)
  const socket = await stalledClient(bridged, 'flood', stalled)
  socket.on('error', () => {})
  t.match(await callFlood(stalled, 'flood'), { content: [{ text: 'flooding' }] }, 'the upstream starts sending 256 MiB of notifications as fast as it can')
  const ms = await stalledCount(bridged, 'flood', 1)
  t.ok(ms !== undefined, `the GET stream was closed at the bound and counted (${ms} ms after the flood started; the stall timeout is 10 minutes)`)
  t.match(await bridged.metrics(), /^portcullis_open_streams\{server="flood",kind="get"\} 0$/m, 'no stream left open')
  const other = await rawInitialize(`${bridged.url}/mcp/flood`)
  t.match(await callFlood(other, 'echo'), { content: [{ text: 'ok' }] }, 'another session is served meanwhile')
  t.match(await callFlood(stalled, 'echo'), { content: [{ text: 'ok' }] }, 'and the stalled client\'s own session still answers its POSTs')
  // The flood goes on to its end (the messages have no stream to go to); what stays is the
  // session's event log (4 MiB at most), while the client still holds its connection, reading
  // nothing (without the bound: the whole flood, ~300 MiB more, until the client goes away; with
  // it, 40–90 MiB of garbage until the next GC). RSS is no measure here: it keeps the high-water mark of the garbage that processing
  // 256 MiB in a second makes.
  let after = await heap()
  for (const at = Date.now(); after > before + 160 * 1048576 && Date.now() - at < 20_000;) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    after = await heap()
  }
  t.ok(after <= before + 160 * 1048576, `the memory in use (heap + external) came back (${Math.round(before / 1048576)} → ${Math.round(after / 1048576)} MiB)`)
  socket.destroy()
})
