/**
 * The MCP SDK pieces a bridged upstream needs (its server transport towards the client, the stdio
 * and legacy SSE client transports towards the upstream), loaded on first use: the SDK with zod
 * and hono is tens of megabytes a gateway with only Streamable HTTP upstreams never needs.
 * A registry with a bridged upstream starts loading it at once, so no request waits for it.
 */
export type Sdk = Awaited<ReturnType<typeof importSdk>>

let loading: Promise<Sdk> | undefined

export function loadSdk (): Promise<Sdk> {
  loading ??= importSdk()
  return loading
}

async function importSdk () {
  const [server, stdio, sse] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/client/sse.js'),
  ])
  return {
    StreamableHTTPServerTransport: server.StreamableHTTPServerTransport,
    StdioClientTransport: stdio.StdioClientTransport,
    getDefaultEnvironment: stdio.getDefaultEnvironment,
    SSEClientTransport: sse.SSEClientTransport,
  }
}
