import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server'
import { z } from 'zod'
import type { RecordedRequest } from './recording-upstream.ts'

export interface ModernUpstream {
  readonly url: string
  readonly requests: RecordedRequest[]
  close (): Promise<void>
}

/**
 * A real MCP server on the official SDK 2.x serving entry (`createMcpHandler`), which speaks
 * 2026-07-28 (stateless, Mcp-Method/Mcp-Name headers) and falls back to stateless 2025 serving.
 * Records every request it receives.
 */
export async function startModernUpstream (): Promise<ModernUpstream> {
  const requests: RecordedRequest[] = []
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'modern-upstream', version: '2.0.0' })
    server.registerTool('echo', { description: 'echo', inputSchema: z.object({ message: z.string() }) },
      async ({ message }) => ({ content: [{ type: 'text', text: message }] }))
    server.registerTool('secret', { description: 'hidden by policy later' },
      async () => ({ content: [{ type: 'text', text: 'the secret' }] }))
    return server
  })
  const http: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req)
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: body.toString('utf8') })
      const headers = new Headers()
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
      }
      const response = await handler.fetch(new Request(`http://127.0.0.1${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(body.length > 0 ? { body } : {}),
      }))
      res.writeHead(response.status, Object.fromEntries(response.headers))
      if (response.body !== null) for await (const chunk of response.body) res.write(chunk)
      res.end()
    })().catch((err: unknown) => { if (!res.headersSent) res.writeHead(500).end(String(err)) })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    async close () {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

async function readAll (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
