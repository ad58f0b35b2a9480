// The console's replicas view (design §5a) with store.url: two gateways sharing a real Redis each
// announce themselves and list both, as JSON and in the page; the store's URL shows no password.
import t from 'tap'
import { request } from 'undici'
import { startRedis } from '../helpers/redis-server.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'

const redis = await startRedis()
const upstream = await startRecordingUpstream()
const yaml = `
publicUrl: http://127.0.0.1:8080
store: { url: "redis://user:\${REDIS_PASSWORD}@127.0.0.1:${redis.port}" }
servers:
  a:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: [{ allow: ["*"] }]
`
// The test Redis has no users: the two replicas connect without credentials
const env = { REDIS_PASSWORD: 'redis-password-canary-3f9c' }
const first = await startGateway(yaml.replace('user:${REDIS_PASSWORD}@', ''), env)
const second = await startGateway(yaml.replace('user:${REDIS_PASSWORD}@', ''), env)
t.teardown(async () => {
  await first.close()
  await second.close()
  await upstream.close()
  await redis.stop()
})

t.test('each replica lists both within a few seconds', async (t) => {
  const urls = [first.url, second.url].sort()
  for (const gw of [first, second]) {
    let replicas: Array<{ advertiseUrl: string, self: boolean, version: string }> = []
    for (let i = 0; i < 50 && replicas.length < 2; i++) {
      replicas = ((await (await request(`${gw.adminUrl}/api/replicas`)).body.json()) as { replicas: typeof replicas }).replicas
      if (replicas.length < 2) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.same(replicas.map((r) => r.advertiseUrl), urls, `${gw.url} hears both`)
    t.same(replicas.filter((r) => r.self).map((r) => r.advertiseUrl), [gw.url], 'and knows which one it is')
    const page = await (await request(`${gw.adminUrl}/replicas`)).body.text()
    for (const url of urls) t.match(page, url)
  }
})

t.test('the store URL in the config view has no credentials', async (t) => {
  // this one's store refuses the made-up credentials: it stays down, which the console does not need
  const gw = await startGateway(yaml, env)
  t.teardown(() => gw.close())
  const config = await (await request(`${gw.adminUrl}/api/config`)).body.text()
  t.notMatch(config, env.REDIS_PASSWORD)
  t.match(config, `redis://redacted@127.0.0.1:${redis.port}`)
})
