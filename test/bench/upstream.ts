/**
 * The minimal mock MCP upstream of performance.md (Protocol P), run as its own process so it can
 * be pinned: `node test/bench/upstream.ts PORT`.
 *   POST /mcp      → a fixed ~190-byte JSON-RPC tools/call result, application/json
 *   POST /mcp-sse  → the same result as one `event: message`, text/event-stream, chunked
 *   GET  /mcp      → an idle GET stream (Accept: text/event-stream): the 200 text/event-stream head,
 *                    then nothing until the client goes (the memory section holds thousands)
 *   GET  /stats    → {"posts": N, "streams": open GET streams, "streamsOpened": M} (the bench checks
 *                    proxies really forward, and that the streams it opened and closed reached here)
 * Keep-alive idles out after 120 s, longer than nginx's upstream keepalive_timeout (60 s), so a
 * pooled connection is never closed by the upstream while a proxy is about to reuse it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'

const RESULT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  result: { content: [{ type: 'text', text: 'Paris: sunny, 21 °C, wind 12 km/h from the south-west; no rain expected until Friday evening (18:00).' }], isError: false },
})
export const JSON_BODY = Buffer.from(RESULT)
export const SSE_BODY = Buffer.from(`event: message\ndata: ${RESULT}\n\n`)

export function startUpstream (port: number, host = '127.0.0.1'): Promise<() => Promise<void>> {
  let posts = 0
  let streams = 0
  let streamsOpened = 0
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && (req.url === '/mcp' || req.url === '/mcp-sse')) {
      const sse = req.url === '/mcp-sse'
      req.on('end', () => {
        posts++
        if (sse) {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
          res.end(SSE_BODY) // no content-length: Transfer-Encoding chunked
        } else {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length })
          res.end(JSON_BODY)
        }
      })
      req.resume()
      return
    }
    if (req.method === 'GET' && req.url === '/mcp') {
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        res.writeHead(406).end()
        return
      }
      streams++
      streamsOpened++
      res.once('close', () => { streams-- })
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      // the head now, the body never: an idle stream
      res.flushHeaders()
      return
    }
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ posts, streams, streamsOpened }))
      return
    }
    res.writeHead(404).end()
  })
  server.keepAliveTimeout = 120_000
  server.headersTimeout = 125_000
  server.requestTimeout = 0
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2])
  if (!Number.isInteger(port) || port <= 0) {
    console.error('usage: node test/bench/upstream.ts PORT')
    process.exit(2)
  }
  const stop = await startUpstream(port)
  console.log(`bench upstream listening on 127.0.0.1:${port} (JSON result ${JSON_BODY.length} B, SSE event ${SSE_BODY.length} B)`)
  const quit = (): void => { void stop().then(() => process.exit(0)) }
  process.once('SIGTERM', quit)
  process.once('SIGINT', quit)
}
