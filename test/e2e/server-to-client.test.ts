// Server→client requests and notifications through the gateway: a sampling request sent by
// the upstream in the middle of a tool call reaches the client on that call's stream, the
// client's answer (a POSTed JSON-RPC response) reaches the upstream, and the tool completes —
// for every upstream transport.
import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { startEverythingGateway } from '../helpers/everything.ts'

const { gw, close } = await startEverythingGateway()
t.teardown(close)

for (const server of ['stdio', 'sse', 'http']) {
  t.test(`sampling request from a ${server} upstream reaches the client and its answer reaches the upstream`, async (t) => {
    const client = new Client({ name: 'sampler', version: '1.0.0' }, { capabilities: { sampling: {} } })
    const asked: string[] = []
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked.push(JSON.stringify(request.params.messages[0]?.content))
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `sampled-by-client-${server}` } }
    })
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl(server))))
    t.teardown(() => client.close())
    const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `hello ${server}` } })
    t.equal(asked.length, 1, 'the client was asked once')
    t.match(asked[0], `hello ${server}`)
    t.match(JSON.stringify(result.content), `sampled-by-client-${server}`, 'the answer made it back upstream and into the result')
  })

  t.test(`logging notifications from a ${server} upstream reach the client`, async (t) => {
    const client = new Client({ name: 'logger', version: '1.0.0' })
    const logs: unknown[] = []
    client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => { logs.push(n.params) })
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl(server))))
    t.teardown(() => client.close())
    await client.setLoggingLevel('debug')
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} })
    const deadline = Date.now() + 8000
    while (logs.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    t.ok(logs.length > 0, `got ${logs.length} log notifications`)
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} })
  })
}
