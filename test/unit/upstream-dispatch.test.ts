import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { UpstreamRequest } from '../../src/upstream/dispatch.ts'

/** A real HTTP server whose routes misbehave on purpose, and a pool in front of it. */
const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/json': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}') },
  '/chunks': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: message\ndata: 1\n\n')
    setTimeout(() => { res.write('event: message\ndata: 2\n\n'); res.end() }, 30)
  },
  '/big': (_req, res) => { res.writeHead(200); res.end(Buffer.alloc(64 * 1024, 'x')) },
  '/slow-big': (_req, res) => {
    res.writeHead(200)
    res.write(Buffer.alloc(16, 'x'))
    setTimeout(() => res.end(Buffer.alloc(64 * 1024, 'y')), 20)
  },
  '/broken': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
    res.write('{"partial":')
    setTimeout(() => res.socket?.destroy(), 20)
  },
  '/hang': () => { /* never answers */ },
  '/stream-forever': (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    let written = 0
    const timer = setInterval(() => {
      const event = `data: ${'z'.repeat(16 * 1024)}\n\n`
      res.write(event)
      written += event.length
      onStreamed?.(written)
    }, 1)
    req.socket.once('close', () => clearInterval(timer))
    res.once('close', () => clearInterval(timer))
  },
}
/** told how many bytes /stream-forever has written so far, after each write */
let onStreamed: ((bytes: number) => void) | undefined
const server = createServer((req, res) => { (routes[req.url ?? ''] ?? ((_q, r) => r.writeHead(404).end()))(req, res) })
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const pool = new Pool(origin, { connections: 16, bodyTimeout: 2_000, headersTimeout: 2_000 })
t.teardown(async () => {
  await pool.destroy()
  server.closeAllConnections()
  server.close()
})

const send = (path: string): UpstreamRequest => new UpstreamRequest(pool, { path, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
const tooLarge = (): Error => new Error('too large')

t.test('a complete body is collected; head fields are the upstream\'s', async (t) => {
  const res = await send('/json').response()
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/json')
  t.equal((await res.bytes(1024, tooLarge)).toString(), '{"ok":true}')
})

t.test('a body that already ended before it is asked for is still delivered', async (t) => {
  const res = await send('/json').response()
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal((await res.bytes(1024, tooLarge)).toString(), '{"ok":true}')
})

t.test('a body past the limit rejects and the request is aborted', async (t) => {
  for (const path of ['/big', '/slow-big']) {
    const res = await send(path).response()
    await t.rejects(res.bytes(1024, tooLarge), { message: 'too large' }, path)
  }
})

t.test('a body cut short rejects with undici\'s error, whether it was asked for before or after', async (t) => {
  const early = await send('/broken').response()
  await t.rejects(early.bytes(1024, tooLarge), /other side closed|closed/i)
  const late = await send('/broken').response()
  await new Promise((resolve) => setTimeout(resolve, 60))
  await t.rejects(late.bytes(1024, tooLarge), /other side closed|closed/i)
  const dumped = await send('/broken').response()
  await dumped.dump() // resolves: a body nobody wants may fail quietly
})

t.test('a failure before the head rejects response()', async (t) => {
  const dead = new Pool('http://127.0.0.1:1', { connect: { timeout: 500 } })
  t.teardown(() => dead.destroy())
  await t.rejects(new UpstreamRequest(dead, { path: '/', method: 'GET', headers: {}, body: undefined }).response(), { code: 'ECONNREFUSED' })
})

t.test('abort() before the head: response() rejects and the caller can tell it was aborted', async (t) => {
  const req = send('/hang')
  setTimeout(() => req.abort(new Error('client went away')), 20)
  await t.rejects(req.response())
  t.equal(req.aborted, true)
})

t.test('a body is consumed once', async (t) => {
  const res = await send('/json').response()
  await res.bytes(1024, tooLarge)
  t.throws(() => { res.pipeTo({ data: () => true, end: () => {}, error: () => {} }) }, /already consumed/)
  t.throws(() => { void res.dump() }, /already consumed/)
})

t.test('a sink gets chunks as they arrive, not buffered until the end', async (t) => {
  const res = await send('/chunks').response()
  const seen: string[] = []
  await new Promise<void>((resolve, reject) => res.pipeTo({ data: (c) => { seen.push(String(c)); return true }, end: resolve, error: reject }))
  t.match(seen.join(''), /data: 1\n\n.*data: 2\n\n/s)
  t.ok(seen.length >= 2, 'the second event arrived as its own chunk, 30 ms after the first')
})

t.test('a sink gets chunks as they arrive; saying stop pauses the upstream until resume()', async (t) => {
  const req = send('/stream-forever')
  const res = await req.response()
  let received = 0
  let paused = true
  let onFlowing: (() => void) | undefined
  const ended = new Promise<void>((resolve) => {
    res.pipeTo({
      data: (chunk) => { received += chunk.length; if (!paused) onFlowing?.(); return !paused },
      end: () => resolve(),
      error: () => resolve(),
    })
  })
  // The first chunk says stop. Not a wait for time to pass but for the server to have written
  // 3 MiB: a sink that had not said stop would have most of it by now (~3 MB in 200 ms).
  const SERVED = 3 * 1024 * 1024
  await new Promise<void>((resolve) => { onStreamed = (bytes) => { if (bytes >= SERVED) resolve() } })
  onStreamed = undefined
  const whilePaused = received
  t.ok(whilePaused <= 256 * 1024, `received ${whilePaused} B while the sink had said stop (the server wrote ${SERVED} B)`)
  const flowing = new Promise<void>((resolve) => { onFlowing = resolve })
  paused = false
  res.resume()
  await flowing
  t.ok(received > whilePaused, 'resume() lets the chunks flow again')
  res.abort(new Error('enough'))
  await ended
  t.equal(req.aborted, true)
})

t.test('a sink taken after the body ended gets every chunk, then end', async (t) => {
  const res = await send('/json').response()
  await new Promise((resolve) => setTimeout(resolve, 30))
  const chunks: Buffer[] = []
  await new Promise<void>((resolve, reject) => res.pipeTo({ data: (c) => { chunks.push(c); return true }, end: resolve, error: reject }))
  t.equal(Buffer.concat(chunks).toString(), '{"ok":true}')
})

t.test('a sink gets the error of a body cut short', async (t) => {
  const res = await send('/broken').response()
  const err = await new Promise<Error | undefined>((resolve) => res.pipeTo({ data: () => true, end: () => resolve(undefined), error: resolve }))
  t.match(err?.message, /closed/i)
})
