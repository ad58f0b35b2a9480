// servers.*.rateLimits shared by replicas (issue 17 item 3): two gateways on one real
// redis-server count together — 20/min per server allows 20 ± 2 over both, whichever replica a
// call reaches; with Redis killed each replica counts alone in its memory (still limited, the
// whole limit each) and logs the fallback with its count.
import t from 'tap'
import { createClient } from '@redis/client'
import { startRedis } from '../helpers/redis-server.ts'
import { startGateway, type StartedGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { POST_HEADERS, dropClientConnections, send } from '../helpers/mcp-http.ts'

const LIMIT = 20
const redis = await startRedis()
const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
const yaml = `
publicUrl: http://127.0.0.1:8080
store: { url: "${redis.url}", keyPrefix: "rl-srv:" }
servers:
  shared:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
    rateLimits: [{ per: server, rate: ${LIMIT}/min }]
`
const a = await startGateway(yaml)
const b = await startGateway(yaml)
t.teardown(async () => {
  await dropClientConnections()
  await a.close()
  await b.close()
  await upstream.close()
  await redis.stop()
})
for (let i = 0; i < 50 && !(a.gateway.store.up && b.gateway.store.up); i++) await new Promise((resolve) => setTimeout(resolve, 100))

let nextId = 1
async function echo (gw: StartedGateway): Promise<number> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } })
  return (await send(gw.mcpUrl('shared'), { headers: POST_HEADERS, body })).status
}

const upstreamCalls = (): number => upstream.requests.filter((r) => r.method === 'POST' && r.body.includes('"tools/call"')).length

async function limitedCount (gw: StartedGateway): Promise<number> {
  const { values } = await gw.gateway.metrics.rateLimited.get()
  return values.find((v) => v.labels.server === 'shared' && v.labels.limit === 'rate_server')?.value ?? 0
}

t.test('two replicas, one Redis: the limit holds over both', async (t) => {
  t.ok(a.gateway.store.up && b.gateway.store.up, 'both replicas reach Redis')
  // 30 at each replica at once: 60 calls against 20/min
  const statuses = await Promise.all(Array.from({ length: 60 }, async (_, i) => await echo(i % 2 === 0 ? a : b)))
  const served = statuses.filter((s) => s === 200).length
  t.comment(`60 concurrent calls over two replicas: ${served} served, ${statuses.filter((s) => s === 429).length} × 429`)
  t.ok(served >= LIMIT - 2 && served <= LIMIT + 2, `${served} served: ${LIMIT} ± 10 %`)
  t.equal(served + statuses.filter((s) => s === 429).length, 60, 'the rest: 429')
  t.equal(upstreamCalls(), served, 'the upstream saw only the served ones')
  t.equal(await limitedCount(a) + await limitedCount(b), 60 - served, 'portcullis_rate_limited_total over both replicas')
  const inspect = createClient({ url: redis.url })
  await inspect.connect()
  const keys = await inspect.keys('rl-srv:rl:server:shared:*')
  await inspect.close()
  t.same(keys, ['rl-srv:rl:server:shared:0:server'], 'one counter, in Redis, under the store prefix')
  t.notOk([...a.logs, ...b.logs].some((l) => l['event.name'] === 'ratelimit.fallback'), 'no fallback while Redis answers')
})

t.test('Redis killed: each replica limits alone, and says so', async (t) => {
  await redis.kill()
  const before = upstreamCalls()
  const served = { a: 0, b: 0 }
  for (let i = 0; i < LIMIT + 5; i++) {
    if (await echo(a) === 200) served.a++
    if (await echo(b) === 200) served.b++
  }
  t.comment(`Redis down, ${LIMIT + 5} calls at each replica: ${served.a} and ${served.b} served`)
  t.same(served, { a: LIMIT, b: LIMIT }, 'each replica allows the whole limit, and no more')
  t.equal(upstreamCalls() - before, 2 * LIMIT)
  for (const [name, gw] of [['a', a], ['b', b]] as const) {
    t.ok(gw.logs.some((l) => l['event.name'] === 'ratelimit.fallback' && typeof l.count === 'number'), `replica ${name} logs the fallback with its count`)
  }
})
