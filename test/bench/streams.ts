/**
 * The load generator of the memory section (memory.ts), run as its own process so it can be
 * pinned with the load (CPU 0): `node test/bench/streams.ts PORT`. Told what to do over HTTP:
 *   POST /posts?url=U&n=N&c=C  → N POSTs of the bench's tools/call to U, C at a time on keep-alive
 *                                connections; answers {"ok", "statuses", "ms"} when all are done
 *   POST /open?url=U&n=N&c=C   → N idle GET streams (Accept: text/event-stream), each on a socket
 *                                of its own, C being opened at a time; answers {"open", "statuses",
 *                                "firstError", "ms"} once every response head is in
 *   POST /close                → destroys every stream's socket; answers {"closed"}
 *   GET  /ready                → 200
 * Node raises its own soft RLIMIT_NOFILE to the hard limit at start, so N is bounded by that.
 */
import { Agent, createServer, request, type ClientRequest } from 'node:http'
import { fileURLToPath } from 'node:url'

const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}'

interface Outcome { statuses: Record<string, number>; firstError?: string }

function count (o: Outcome, key: string, err?: string): void {
  o.statuses[key] = (o.statuses[key] ?? 0) + 1
  if (err !== undefined) o.firstError ??= err
}

/** Run `n` tasks, `c` at a time. */
async function pool (n: number, c: number, task: () => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(c, n) }, async () => {
    while (next < n) {
      next++
      await task()
    }
  }))
}

async function posts (url: string, n: number, c: number): Promise<Outcome & { ok: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: c })
  const o: Outcome & { ok: number } = { ok: 0, statuses: {} }
  await pool(n, c, () => new Promise<void>((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
      res.resume()
      res.once('end', () => {
        if (res.statusCode === 200) o.ok++
        count(o, String(res.statusCode))
        resolve()
      })
    })
    req.once('error', (err) => { count(o, 'error', err.message); resolve() })
    req.end(BODY)
  }))
  agent.destroy()
  return o
}

const held = new Set<ClientRequest>()

async function open (url: string, n: number, c: number): Promise<Outcome & { open: number }> {
  const o: Outcome & { open: number } = { open: 0, statuses: {} }
  await pool(n, c, () => new Promise<void>((resolve) => {
    const req = request(url, { method: 'GET', agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      const type = res.headers['content-type'] ?? ''
      if (res.statusCode === 200 && type.startsWith('text/event-stream')) {
        o.open++
        count(o, '200')
        res.resume() // idle: nothing comes, and whatever does is dropped
      } else {
        count(o, String(res.statusCode), `${res.statusCode} ${type}`)
        res.resume()
        req.destroy()
      }
      resolve()
    })
    held.add(req)
    req.once('close', () => held.delete(req))
    req.once('error', (err) => { count(o, 'error', err.message); resolve() })
    req.end()
  }))
  return o
}

function close (): number {
  const n = held.size
  for (const req of held) req.destroy()
  held.clear()
  return n
}

export function startStreams (port: number): Promise<void> {
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const reply = (body: unknown): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
    const fail = (err: unknown): void => { res.writeHead(500).end(String(err)) }
    const n = Number(u.searchParams.get('n'))
    const c = Number(u.searchParams.get('c') ?? '10')
    const target = u.searchParams.get('url') ?? ''
    const t0 = Date.now()
    if (req.method === 'POST' && u.pathname === '/posts') posts(target, n, c).then((o) => reply({ ...o, ms: Date.now() - t0 }), fail)
    else if (req.method === 'POST' && u.pathname === '/open') open(target, n, c).then((o) => reply({ ...o, ms: Date.now() - t0 }), fail)
    else if (req.method === 'POST' && u.pathname === '/close') reply({ closed: close() })
    else if (req.method === 'GET' && u.pathname === '/ready') reply({})
    else res.writeHead(404).end()
  })
  server.requestTimeout = 0
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2])
  if (!Number.isInteger(port) || port <= 0) {
    console.error('usage: node test/bench/streams.ts PORT')
    process.exit(2)
  }
  await startStreams(port)
  console.log(`bench stream client listening on 127.0.0.1:${port}`)
  process.once('SIGTERM', () => { close(); process.exit(0) })
  process.once('SIGINT', () => { close(); process.exit(0) })
}
