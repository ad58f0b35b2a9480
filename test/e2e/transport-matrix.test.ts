// The transport matrix: both official SDK clients (1.x, 2.x) × the three upstream transports
// (stdio, legacy HTTP+SSE, Streamable HTTP), all with the real server-everything behind the
// gateway. Each cell lists tools, calls a tool, and receives progress notifications *as they
// happen* — before the result, spread over the operation — through the gateway.
import t from 'tap'
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client'
import { startEverythingGateway } from '../helpers/everything.ts'

const { gw, close } = await startEverythingGateway()
t.teardown(close)

interface CellClient {
  listTools (): Promise<string[]>
  callTool (name: string, args: Record<string, unknown>, onprogress?: (p: { progress: number }) => void): Promise<{ content?: unknown, isError?: boolean }>
  close (): Promise<void>
}

async function connect (sdk: 1 | 2, url: string): Promise<CellClient> {
  if (sdk === 1) {
    const client = new Client1({ name: 'matrix-1x', version: '1.0.0' })
    await client.connect(new Transport1(new URL(url)))
    return {
      listTools: async () => (await client.listTools()).tools.map((tool) => tool.name),
      callTool: async (name, args, onprogress) =>
        await client.callTool({ name, arguments: args }, undefined, onprogress === undefined ? {} : { onprogress, timeout: 20_000 }) as { content?: unknown, isError?: boolean },
      close: () => client.close(),
    }
  }
  const client = new Client2({ name: 'matrix-2x', version: '2.0.0' })
  await client.connect(new Transport2(new URL(url)))
  return {
    listTools: async () => (await client.listTools()).tools.map((tool) => tool.name),
    callTool: async (name, args, onprogress) =>
      await client.callTool({ name, arguments: args }, onprogress === undefined ? {} : { onprogress, timeout: 20_000 }),
    close: () => client.close(),
  }
}

for (const sdk of [1, 2] as const) {
  for (const server of ['stdio', 'sse', 'http']) {
    t.test(`SDK ${sdk}.x client × ${server} upstream`, async (t) => {
      const client = await connect(sdk, gw.mcpUrl(server))
      t.teardown(() => client.close())

      const tools = await client.listTools()
      t.ok(tools.includes('echo'), 'tools/list reaches the client')
      t.ok(tools.includes('trigger-long-running-operation'))

      const echo = await client.callTool('echo', { message: `hello from ${sdk}.x via ${server}` })
      t.same(echo.content, [{ type: 'text', text: `Echo: hello from ${sdk}.x via ${server}` }], 'tools/call result arrives unchanged')

      const started = Date.now()
      const progressAt: number[] = []
      const result = await client.callTool('trigger-long-running-operation', { duration: 1.2, steps: 4 },
        () => { progressAt.push(Date.now() - started) })
      const resultAt = Date.now() - started
      t.equal(progressAt.length, 4, 'every progress notification arrives')
      t.ok((progressAt[0] ?? Infinity) < resultAt - 600, `the first progress (${progressAt[0]} ms) arrives long before the result (${resultAt} ms): streamed, not buffered`)
      t.ok((progressAt[1] ?? 0) - (progressAt[0] ?? 0) >= 150, 'progress notifications arrive as they happen, spread over the operation')
      t.notOk(result.isError)
    })
  }
}
