// The shared store goes away and comes back (design §7, issue 15), with three gateway processes
// on one real redis-server behind a round-robin balancer: while Redis is killed, every grant,
// registration and login fails closed and fast (503 temporarily_unavailable, never a token, never
// a hang) while MCP calls with issued tokens — in existing sessions and new ones, over all three
// upstream transports — keep working at every replica, /readyz stays 200 and portcullis_store_up
// is 0; when Redis is back, grants work again without a restart. A paused (hung) Redis is
// refused as fast.
import t from 'tap'
import { request } from 'undici'
import { SERVERS, startReplicaCluster, type ServerName } from '../helpers/replica-cluster.ts'
import { POST_HEADERS, readMessages } from '../helpers/raw-mcp.ts'

const cluster = await startReplicaCluster(3)
t.teardown(() => cluster.close())

async function init (server: ServerName, bearer: string, base = cluster.publicUrl): Promise<string> {
  const url = cluster.mcpUrl(server, base)
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  })
  await res.body.dump()
  const sessionId = res.headers['mcp-session-id']
  if (res.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize ${server}: ${res.statusCode}`)
  const ack = await request(url, { method: 'POST', headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  await ack.body.dump()
  return sessionId
}

async function echo (server: ServerName, bearer: string, sessionId: string, message: string, base = cluster.publicUrl): Promise<string | undefined> {
  const res = await request(cluster.mcpUrl(server, base), {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
  })
  const messages = await readMessages(res)
  const result = messages.find((m) => m.id === 7)?.result as { content?: Array<{ text?: string }> } | undefined
  return result?.content?.[0]?.text
}

async function storeUp (base: string): Promise<string | undefined> {
  const text = await (await request(`${base}/metrics`)).body.text()
  return /^portcullis_store_up (\d)$/m.exec(text)?.[1]
}

async function eventually (what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('Redis killed: grants, registrations and logins fail closed and fast; MCP traffic carries on; Redis back: grants again', async (t) => {
  // before: tokens and sessions on every transport
  const tokens = new Map<ServerName, string>()
  const sessions = new Map<ServerName, string>()
  for (const server of SERVERS) {
    tokens.set(server, await cluster.accessToken('alice', server))
    sessions.set(server, await init(server, tokens.get(server)!))
  }
  const assertions = await Promise.all([1, 2, 3].map(async () => await cluster.idJag('alice', 'http')))

  await cluster.redis.kill()
  for (const replica of cluster.replicas) await eventually('store_up 0', async () => await storeUp(replica.adminUrl) === '0')
  t.pass('portcullis_store_up is 0 at every replica')

  for (const [i, replica] of cluster.replicas.entries()) {
    const started = Date.now()
    const grant = await cluster.redeem(assertions[i]!, replica.url)
    const took = Date.now() - started
    t.equal(grant.status, 503, `replica ${i}: the jwt-bearer grant fails closed`)
    t.equal(grant.body.error, 'temporarily_unavailable')
    t.equal(grant.body.access_token, undefined, 'no token')
    t.ok(took < 2_500, `and fast: ${took} ms`)

    const registration = await request(`${replica.url}/oauth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' }),
    })
    t.equal(registration.statusCode, 503, `replica ${i}: registration 503`)
    t.match(await registration.body.json(), { error: 'temporarily_unavailable' })

    const ready = await request(`${replica.adminUrl}/readyz`)
    await ready.body.dump()
    t.equal(ready.statusCode, 200, `replica ${i}: /readyz stays 200`)

    for (const server of SERVERS) {
      t.equal(await echo(server, tokens.get(server)!, sessions.get(server)!, `existing ${i}`, replica.url), `Echo: existing ${i}`, `replica ${i}: ${server} existing session works`)
      const fresh = await init(server, tokens.get(server)!, replica.url)
      t.equal(await echo(server, tokens.get(server)!, fresh, `new ${i}`), `Echo: new ${i}`, `replica ${i}: ${server} new session works (its next call at another replica)`)
    }
  }
  const login = await request(`${cluster.publicUrl}/oauth/authorize?response_type=code&client_id=dyn-${'a'.repeat(22)}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&state=s&resource=${encodeURIComponent(cluster.mcpUrl('http'))}`)
  await login.body.dump()
  t.equal(login.statusCode, 503, 'a login cannot even find its dynamic client: 503, no redirect')
  t.equal(login.headers.location, undefined)

  // a replica starting while Redis is down cannot read the shared sets: it waits for them up to
  // 2 s, then joins anyway (MCP traffic does not need the store) and serves issued tokens
  const late = await cluster.startExtra({ waitReady: false })
  const readyAt = async (): Promise<number> => await request(`${late.adminUrl}/readyz`).then(async (r) => { await r.body.dump(); return r.statusCode })
  t.equal(await readyAt(), 503, 'a replica started while Redis is down is not ready at once')
  const waited = Date.now()
  await eventually('the late replica to be ready', async () => await readyAt() === 200, 5000)
  t.ok(Date.now() - waited < 3000, `ready after the bounded wait (${Date.now() - waited} ms)`)
  t.equal(await echo('http', tokens.get('http')!, await init('http', tokens.get('http')!, late.url), 'late', late.url), 'Echo: late', 'it serves issued tokens')

  await cluster.redis.restart()
  for (const replica of cluster.replicas) await eventually('store_up 1', async () => await storeUp(replica.adminUrl) === '1')
  t.pass('portcullis_store_up is 1 again at every replica, without a restart')
  for (const [i, replica] of cluster.replicas.entries()) {
    const grant = await cluster.redeem(await cluster.idJag('bob', 'stdio'), replica.url)
    t.equal(grant.status, 200, `replica ${i}: grants work again`)
  }
  const replayed = await cluster.redeem(assertions[0]!)
  t.equal(replayed.status, 200, 'an assertion refused while the store was down was never recorded as used')
  const again = await cluster.redeem(assertions[0]!)
  t.equal(again.status, 400, 'and is single-use from then on')
  t.equal(again.body.error, 'invalid_grant')
})

t.test('a hung Redis (SIGSTOP) is refused as fast as a dead one, and forgiven when it wakes', async (t) => {
  const assertion = await cluster.idJag('alice', 'http')
  const token = await cluster.accessToken('alice', 'http')
  cluster.redis.pause()
  t.teardown(() => cluster.redis.resume())
  const started = Date.now()
  const grant = await cluster.redeem(assertion)
  t.equal(grant.status, 503, 'fails closed')
  t.ok(Date.now() - started < 2_500, `within the command timeout (${Date.now() - started} ms)`)
  const sessionId = await init('http', token)
  t.equal(await echo('http', token, sessionId, 'while hung'), 'Echo: while hung', 'MCP traffic carries on')
  cluster.redis.resume()
  await eventually('grants again', async () => (await cluster.redeem(await cluster.idJag('alice', 'http'))).status === 200)
  t.pass('grants work again once Redis answers')
})
