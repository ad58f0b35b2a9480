/**
 * A tiny OTLP/HTTP collector stand-in for the telemetry run of `npm run bench` (features.ts), run
 * as its own process so it can be pinned with the load (CPU 0): `node test/bench/otlp-sink.ts PORT`.
 *   POST /v1/traces, /v1/metrics, /v1/logs → 200, an empty body (an empty Export…ServiceResponse
 *                                            is valid protobuf and valid JSON `{}` is sent for JSON)
 *   GET  /stats → {"posts": {path: n}, "bytes": {path: n}, "contentTypes": {type: n}}
 * Bodies are read and counted, never decoded.
 */
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'

export function startSink (port: number, host = '127.0.0.1'): Promise<() => Promise<void>> {
  const posts: Record<string, number> = {}
  const bytes: Record<string, number> = {}
  const contentTypes: Record<string, number> = {}
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (req.method === 'POST' && path.startsWith('/v1/')) {
      let n = 0
      req.on('data', (chunk: Buffer) => { n += chunk.length })
      req.on('end', () => {
        posts[path] = (posts[path] ?? 0) + 1
        bytes[path] = (bytes[path] ?? 0) + n
        const type = (req.headers['content-type'] ?? '').split(';')[0]!
        contentTypes[type] = (contentTypes[type] ?? 0) + 1
        if (type === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
        else res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end()
      })
      return
    }
    if (req.method === 'GET' && path === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ posts, bytes, contentTypes }))
      return
    }
    res.writeHead(404).end()
  })
  server.keepAliveTimeout = 120_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2])
  if (!Number.isInteger(port) || port <= 0) {
    console.error('usage: node test/bench/otlp-sink.ts PORT')
    process.exit(2)
  }
  const stop = await startSink(port)
  console.log(`bench OTLP sink listening on 127.0.0.1:${port}`)
  const quit = (): void => { void stop().then(() => process.exit(0)) }
  process.once('SIGTERM', quit)
  process.once('SIGINT', quit)
}
