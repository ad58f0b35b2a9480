import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { RecyclingPool } from '../../src/upstream/recycling-pool.ts'
import { UpstreamRequest } from '../../src/upstream/dispatch.ts'

/** /hold answers a head and then nothing until told (held), /json answers at once. */
const held = new Set<ServerResponse>()
const server = createServer((req, res) => {
  if (req.url === '/hold') {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    held.add(res)
    res.once('close', () => held.delete(res))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
t.teardown(() => {
  server.closeAllConnections()
  server.close()
})

const IDLE = 4
const newPool = (): RecyclingPool => new RecyclingPool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 }, IDLE)
const get = (pool: RecyclingPool, path: string): UpstreamRequest => new UpstreamRequest(pool, { path, method: 'GET', headers: {}, body: undefined })
const json = async (pool: RecyclingPool): Promise<number> => {
  const res = await get(pool, '/json').response()
  await res.dump()
  return res.statusCode
}
interface Held { readonly request: UpstreamRequest; ended?: 'end' | Error }
/** `n` requests to /hold, each with its response head in, its body read as it comes */
const hold = async (pool: RecyclingPool, n: number): Promise<Held[]> => {
  const out = Array.from({ length: n }, (): Held => ({ request: get(pool, '/hold') }))
  for (const h of out) {
    (await h.request.response()).pipeTo({ data: () => true, end: () => { h.ended = 'end' }, error: (err) => { h.ended = err } })
  }
  return out
}
const until = async (what: string, check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10)
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

t.test('a steady stream of requests reuses its connections and never recycles', async (t) => {
  const pool = newPool()
  t.teardown(() => pool.destroy())
  for (let i = 0; i < 20; i++) t.equal(await json(pool), 200)
  await Promise.all(Array.from({ length: IDLE }, async () => { t.equal(await json(pool), 200) }))
  t.equal(pool.recycles, 0)
})

t.test('more than idleClients Clients that lost their connection: new requests go to a new pool, the old one closes', async (t) => {
  const pool = newPool()
  t.teardown(() => pool.destroy())
  const streams = await hold(pool, IDLE + 2)
  t.equal(held.size, IDLE + 2)
  t.equal(pool.recycles, 0, 'connected Clients are not idle ones')
  // the clients go away: each upstream request is aborted, its connection closed
  for (const s of streams) s.request.abort(new Error('client gone'))
  await until('the recycle', () => pool.recycles === 1)
  await until('the old pool to close', () => pool.retiring === 0)
  await until('the upstream to see every stream closed', () => held.size === 0)
  t.equal(await json(pool), 200, 'requests work on the new pool')
  t.equal(pool.recycles, 1)
})

t.test('the requests a recycled pool still carries finish on it; close() waits for them', async (t) => {
  const pool = newPool()
  const streams = await hold(pool, IDLE + 2)
  const last = streams.pop()!
  for (const s of streams) s.request.abort(new Error('client gone'))
  await until('the recycle', () => pool.recycles === 1)
  t.equal(pool.retiring, 1, 'the old pool waits for its last stream')
  t.equal(last.ended, undefined)
  let closed = false
  const closing = pool.close().then(() => { closed = true })
  await sleep(50)
  t.equal(closed, false, 'close() waits for the stream still open on the recycled pool')
  for (const res of held) res.end()
  await closing
  t.equal(pool.retiring, 0)
})

t.test('destroy() ends the requests of recycled pools too', async (t) => {
  const pool = newPool()
  const streams = await hold(pool, IDLE + 2)
  const last = streams.pop()!
  for (const s of streams) s.request.abort(new Error('client gone'))
  await until('the recycle', () => pool.recycles === 1)
  t.equal(pool.retiring, 1)
  await pool.destroy()
  await until('the last stream to fail', () => last.ended !== undefined)
  t.type(last.ended, Error, 'the stream on the recycled pool failed')
  t.equal(pool.retiring, 0)
  await until('the upstream to see every stream closed', () => held.size === 0)
})
