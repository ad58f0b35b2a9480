// Last-Event-ID resumption through the gateway: a client whose SSE response breaks in the
// middle of a long tool call resumes with GET + Last-Event-ID and receives the rest — the
// progress it missed and the result — from a Streamable HTTP upstream that keeps an event log
// (an SDK server with an event store) and from a stdio upstream (the gateway's own bounded
// event log).
import t from 'tap'
import { request } from 'undici'
import { everythingEntry } from '../helpers/everything.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { POST_HEADERS, rawInitialize, sseEvents, type RpcMessage } from '../helpers/raw-mcp.ts'

const http = await startRecordingUpstream({ resumable: true })
const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(everythingEntry)}, stdio] }
    auth: none
    tools: [{ allow: ["*"] }]
  http:
    upstream: { url: ${http.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(async () => {
  await gw.close()
  await http.close()
})

for (const server of ['http', 'stdio']) {
  t.test(`a broken stream is resumed with Last-Event-ID (${server} upstream)`, async (t) => {
    const url = gw.mcpUrl(server)
    const { sessionId, protocolVersion } = await rawInitialize(url)
    const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion }
    const res = await request(url, {
      method: 'POST',
      headers: { ...POST_HEADERS, ...session },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 42,
        method: 'tools/call',
        params: server === 'http'
          ? { name: 'slow', arguments: { steps: 3, ms: 400 }, _meta: { progressToken: 'p42' } }
          : { name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 3 }, _meta: { progressToken: 'p42' } }
      }),
    })
    t.match(res.headers['content-type'], /text\/event-stream/)
    let lastEventId: string | undefined
    let firstProgress: RpcMessage | undefined
    for await (const event of sseEvents(res)) {
      if (event.id !== undefined) lastEventId = event.id
      if (event.message?.method === 'notifications/progress') { firstProgress = event.message; break }
    }
    res.body.destroy() // the connection breaks after the first progress event
    await new Promise((resolve) => setTimeout(resolve, 100)) // clients reconnect after a backoff
    t.ok(lastEventId, 'events carry ids')
    t.match(firstProgress?.params, { progress: 1 })

    const resumed = await request(url, {
      method: 'GET',
      headers: { accept: 'text/event-stream', ...session, 'last-event-id': String(lastEventId) },
    })
    t.equal(resumed.statusCode, 200)
    const progress: unknown[] = []
    let result: RpcMessage | undefined
    for await (const event of sseEvents(resumed)) {
      if (event.message?.method === 'notifications/progress') progress.push((event.message.params as { progress: number }).progress)
      if (event.message?.id === 42) { result = event.message; break }
    }
    resumed.body.destroy()
    t.same(progress, [2, 3], 'the missed progress is replayed, nothing twice')
    t.match(JSON.stringify(result?.result), server === 'http' ? 'done after 3 steps' : 'Long running operation completed')
  })
}
