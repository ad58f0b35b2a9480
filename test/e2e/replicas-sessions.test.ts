// Sessions across replicas (design §7, issue 15): three real gateway processes with one config,
// one key file and one environment, sharing a real Redis, behind a round-robin balancer that
// sends every request to the next replica (no affinity, not even per connection). Both official
// SDK clients work over all three upstream transports; older revisions with sessions work; a
// bridged session's GET stream and Last-Event-ID resumption work from any replica; another
// principal's token with a session id is 404 at every replica whatever the version header says.
import t from 'tap'
import { request } from 'undici'
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Client as Client2, CrossAppAccessProvider, StreamableHTTPClientTransport as Transport2, discoverAndRequestJwtAuthGrant } from '@modelcontextprotocol/client'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { EMA_CLIENT, EXCHANGE_CLIENT, SERVERS, startReplicaCluster, type ServerName } from '../helpers/replica-cluster.ts'
import { POST_HEADERS, readMessages, sseEvents, type RpcMessage } from '../helpers/raw-mcp.ts'
import { KNOWN_PROTOCOL_VERSIONS } from '../../src/mcp/exchange.ts'

const cluster = await startReplicaCluster(3)
t.teardown(() => cluster.close())
const tokens = new Map<string, string>()
async function token (user: 'alice' | 'bob', server: ServerName): Promise<string> {
  const key = `${user} ${server}`
  let value = tokens.get(key)
  if (value === undefined) tokens.set(key, value = await cluster.accessToken(user, server))
  return value
}

/** Requests the balancer sent to each replica since `before`. */
const spread = (before: number[]): number[] => cluster.balancer.requestsPerTarget().map((n, i) => n - (before[i] ?? 0))

async function rawInit (url: string, bearer: string, protocolVersion: string): Promise<string> {
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  })
  const sessionId = res.headers['mcp-session-id']
  const messages = await readMessages(res)
  if (res.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize: ${res.statusCode} ${JSON.stringify(messages)}`)
  const ack = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  })
  await ack.body.dump()
  if (ack.statusCode !== 202) throw new Error(`notifications/initialized: ${ack.statusCode}`)
  return sessionId
}

async function rawCall (url: string, bearer: string, sessionId: string, protocolVersion: string, id: number, message: string): Promise<{ status: number, messages: RpcMessage[] }> {
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
  })
  return { status: res.statusCode, messages: await readMessages(res) }
}

for (const server of SERVERS) {
  t.test(`SDK 1.x × ${server} upstream through three replicas`, async (t) => {
    const before = cluster.balancer.requestsPerTarget()
    const client = new Client1({ name: 'replicas-1x', version: '1.0.0' })
    await client.connect(new Transport1(new URL(cluster.mcpUrl(server)), { requestInit: { headers: { authorization: `Bearer ${await token('alice', server)}` } } }))
    t.teardown(() => client.close())
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), 'tools/list')
    for (let i = 0; i < 6; i++) {
      const echo = await client.callTool({ name: 'echo', arguments: { message: `1.x ${server} ${i}` } })
      t.same(echo.content, [{ type: 'text', text: `Echo: 1.x ${server} ${i}` }], `call ${i}`)
    }
    t.ok(spread(before).every((n) => n >= 2), `every replica served the session (${spread(before).join('/')})`)
  })

  t.test(`SDK 2.x with its CrossAppAccessProvider × ${server} upstream through three replicas`, async (t) => {
    const before = cluster.balancer.requestsPerTarget()
    const { idp } = cluster
    const idToken = await (await request(`${idp.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(EXCHANGE_CLIENT.id, EXCHANGE_CLIENT.secret) },
      body: new URLSearchParams({ grant_type: 'password', username: 'bob', password: 'bob-pw', scope: 'openid' }).toString(),
    })).body.json() as { id_token: string }
    const provider = new CrossAppAccessProvider({
      assertion: async (ctx) => (await discoverAndRequestJwtAuthGrant({
        idpUrl: idp.issuer,
        audience: ctx.authorizationServerUrl,
        resource: ctx.resourceUrl,
        idToken: idToken.id_token,
        clientId: EXCHANGE_CLIENT.id,
        clientSecret: EXCHANGE_CLIENT.secret,
        ...(ctx.scope === undefined ? {} : { scope: ctx.scope }),
        fetchFn: ctx.fetchFn,
      })).jwtAuthGrant,
      clientId: EMA_CLIENT.id,
      clientSecret: EMA_CLIENT.secret,
      expectedIssuer: cluster.publicUrl,
    })
    const client = new Client2({ name: 'replicas-2x', version: '2.0.0' })
    await client.connect(new Transport2(new URL(cluster.mcpUrl(server)), { authProvider: provider }))
    t.teardown(() => client.close())
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), 'tools/list')
    for (let i = 0; i < 6; i++) {
      const echo = await client.callTool({ name: 'echo', arguments: { message: `2.x ${server} ${i}` } })
      t.same(echo.content, [{ type: 'text', text: `Echo: 2.x ${server} ${i}` }], `call ${i}`)
    }
    const progress: number[] = []
    const long = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      { onprogress: (p) => { progress.push(p.progress) }, timeout: 20_000 })
    t.notOk(long.isError)
    t.same(progress, [1, 2, 3], 'progress notifications stream back from whichever replica holds the upstream')
    t.ok(spread(before).every((n) => n >= 2), `every replica served the client (${spread(before).join('/')})`)
  })
}

t.test('older revisions with sessions: initialize, calls and DELETE land on different replicas', async (t) => {
  for (const server of SERVERS) {
    for (const version of ['2025-03-26', '2025-06-18', '2025-11-25']) {
      const bearer = await token('alice', server)
      const url = cluster.mcpUrl(server)
      const sessionId = await rawInit(url, bearer, version)
      const before = cluster.balancer.requestsPerTarget()
      for (let i = 1; i <= 6; i++) {
        const { status, messages } = await rawCall(url, bearer, sessionId, version, i, `${version} ${i}`)
        t.equal(status, 200, `${server} ${version} call ${i}`)
        t.match(messages.find((m) => m.id === i)?.result, { content: [{ text: `Echo: ${version} ${i}` }] })
      }
      t.same(spread(before), [2, 2, 2], `${server} ${version}: the six calls were spread evenly`)
      const del = await request(url, { method: 'DELETE', headers: { authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': version } })
      await del.body.dump()
      t.ok(del.statusCode === 200 || del.statusCode === 204, `${server} ${version}: DELETE ${del.statusCode}`)
      // Every replica hears of the DELETE through the store within 3 s (stdio and sse: at once — the process is gone)
      for (const [i, replica] of cluster.replicas.entries()) {
        const deadline = Date.now() + 3_000
        let after = await rawCall(cluster.mcpUrl(server, replica.url), bearer, sessionId, version, 10 + i, 'after delete')
        while (after.status !== 404 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50))
          after = await rawCall(cluster.mcpUrl(server, replica.url), bearer, sessionId, version, 10 + i, 'after delete')
        }
        t.equal(after.status, 404, `${server} ${version}: the ended session is 404 at replica ${i}`)
        t.equal(after.messages[0]?.error?.code, -32001)
      }
    }
  }
})

t.test('another principal\'s token with a session id is 404 at every replica, whatever the version header', async (t) => {
  for (const server of SERVERS) {
    const aliceSession = await rawInit(cluster.mcpUrl(server), await token('alice', server), '2025-11-25')
    const bob = await token('bob', server)
    const alice = await token('alice', server)
    for (const [i, replica] of cluster.replicas.entries()) {
      for (const version of [undefined, ...KNOWN_PROTOCOL_VERSIONS]) {
        const res = await request(cluster.mcpUrl(server, replica.url), {
          method: 'POST',
          headers: {
            ...POST_HEADERS,
            authorization: `Bearer ${bob}`,
            'mcp-session-id': aliceSession,
            ...(version === undefined ? {} : { 'mcp-protocol-version': version }),
            ...(version === '2026-07-28' ? { 'mcp-method': 'tools/call', 'mcp-name': 'echo' } : {}),
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, ...(version === '2026-07-28' ? { _meta: { 'io.modelcontextprotocol/protocolVersion': version } } : {}) } }),
        })
        const [answer] = await readMessages(res)
        t.equal(res.statusCode, 404, `${server}, replica ${i}, version ${version ?? 'none'}: bob gets 404`)
        t.equal(answer?.error?.code, -32001)
      }
      for (const forged of ['x'.repeat(64), aliceSession.slice(0, -2), `${aliceSession.slice(0, 20)}${aliceSession[20] === 'A' ? 'B' : 'A'}${aliceSession.slice(21)}`]) {
        const res = await request(cluster.mcpUrl(server, replica.url), {
          method: 'POST',
          headers: { ...POST_HEADERS, authorization: `Bearer ${alice}`, 'mcp-session-id': forged, 'mcp-protocol-version': '2025-11-25' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        })
        await res.body.dump()
        t.equal(res.statusCode, 404, `${server}, replica ${i}: a forged or altered id is 404`)
      }
      // control: alice's own id works at this replica
      const own = await rawCall(cluster.mcpUrl(server, replica.url), alice, aliceSession, '2025-11-25', 2, `alice at ${i}`)
      t.equal(own.status, 200, `${server}, replica ${i}: alice's own session works there`)
    }
  }
})

t.test('a bridged session\'s stream resumes with Last-Event-ID at another replica than the one holding it', async (t) => {
  const [owner, other, third] = cluster.replicas
  if (owner === undefined || other === undefined || third === undefined) throw new Error('three replicas')
  const bearer = await token('alice', 'stdio')
  const sessionId = await rawInit(cluster.mcpUrl('stdio', owner.url), bearer, '2025-11-25')
  const session = { authorization: `Bearer ${bearer}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
  // the long call at a replica that does not hold the process
  const res = await request(cluster.mcpUrl('stdio', other.url), {
    method: 'POST',
    headers: { ...POST_HEADERS, ...session },
    body: JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 3 }, _meta: { progressToken: 'p42' } } }),
  })
  t.match(res.headers['content-type'], /text\/event-stream/)
  let lastEventId: string | undefined
  for await (const event of sseEvents(res)) {
    if (event.id !== undefined) lastEventId = event.id
    if (event.message?.method === 'notifications/progress') break
  }
  res.body.destroy() // the connection breaks after the first progress event
  t.ok(lastEventId, 'events carry ids')
  // clients reconnect after a backoff; the owner sees the old stream close through the peer's relay first
  await new Promise((resolve) => setTimeout(resolve, 300))
  // resumed at the third replica
  const resumed = await request(cluster.mcpUrl('stdio', third.url), {
    method: 'GET',
    headers: { accept: 'text/event-stream', ...session, 'last-event-id': String(lastEventId) },
  })
  t.equal(resumed.statusCode, 200)
  const progress: number[] = []
  let result: RpcMessage | undefined
  for await (const event of sseEvents(resumed)) {
    if (event.message?.method === 'notifications/progress') progress.push((event.message.params as { progress: number }).progress)
    if (event.message?.id === 42) { result = event.message; break }
  }
  resumed.body.destroy()
  t.same(progress, [2, 3], 'the missed progress is replayed through the third replica, nothing twice')
  t.match(JSON.stringify(result?.result), 'Long running operation completed')

  // a plain GET stream at a replica that does not hold the session opens and stays open
  const abort = new AbortController()
  const stream = await request(cluster.mcpUrl('stdio', third.url), { method: 'GET', headers: { accept: 'text/event-stream', ...session }, signal: abort.signal })
  t.equal(stream.statusCode, 200)
  t.match(stream.headers['content-type'], /text\/event-stream/)
  abort.abort()
  await stream.body.dump().catch(() => {})
})

t.test('a peer request without the replicas\' signature is refused, and no client credential crosses between replicas', async (t) => {
  const [owner] = cluster.replicas
  if (owner === undefined) throw new Error('no replica')
  const bearer = await token('alice', 'stdio')
  const sessionId = await rawInit(cluster.mcpUrl('stdio', owner.url), bearer, '2025-11-25')
  for (const headers of [
    {},
    { 'portcullis-peer': 'Bearer x' },
    { 'portcullis-peer': `t=${Math.floor(Date.now() / 1000)},s=${'A'.repeat(43)}` },
    { authorization: `Bearer ${bearer}` },
  ]) {
    const res = await request(`${owner.url}/_portcullis/peer/stdio`, {
      method: 'POST',
      headers: { ...POST_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bypass' } } }),
    })
    const [answer] = await readMessages(res)
    t.equal(res.statusCode, 403, `refused: ${JSON.stringify(headers).slice(0, 60)}`)
    t.notOk(JSON.stringify(answer).includes('bypass'))
  }
})

t.test('every replica ran the shared session key: no ephemeral-key warning, and the store is up', async (t) => {
  for (const replica of cluster.replicas) {
    t.notOk(replica.rawLogs.some((l) => l.includes('PORTCULLIS_SESSION_KEY is not set')))
    t.match(await replica.metrics(), /^portcullis_store_up 1$/m)
  }
})
