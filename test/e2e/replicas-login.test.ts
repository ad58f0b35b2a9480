// The federated login across replicas (design §7, issue 15): registration, authorization,
// the IdP's callback and the token request each land on another gateway process (a round-robin
// balancer without affinity, three replicas, one Redis) and the official SDK client still logs
// in; a replayed code revokes its token at every replica within 3 s; after every replica is
// restarted, a dynamically registered client still logs in and issued tokens still work.
import t from 'tap'
import { request } from 'undici'
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Browser, signIn } from '../helpers/browser.ts'
import { pkcePair } from '../helpers/federated.ts'
import { MemoryOAuthProvider } from '../helpers/oauth-provider.ts'
import { startReplicaCluster } from '../helpers/replica-cluster.ts'
import { POST_HEADERS } from '../helpers/raw-mcp.ts'

const cluster = await startReplicaCluster(3)
t.teardown(() => cluster.close())
const REDIRECT = 'http://127.0.0.1:9/app/callback'

/** Which replica wrote a log line matching `match` (indexes in cluster.replicas). */
function replicasThatLogged (match: (line: Record<string, unknown>) => boolean): number[] {
  return cluster.replicas.flatMap((r, i) => r.logs.some(match) ? [i] : [])
}

/**
 * Every replica has written out every line it logged before this call: each is sent a request
 * it refuses (401, one audit line), and each one's log is awaited for that line. A replica's log
 * destination writes in order, so a step it ran earlier is in its log by then.
 */
async function logsWrittenOut (): Promise<void> {
  await Promise.all(cluster.replicas.map(async (replica) => {
    const earlier = new Set(replica.logs)
    const res = await request(cluster.mcpUrl('http', replica.url), { method: 'POST', headers: POST_HEADERS, body: '{}' })
    await res.body.dump()
    if (res.statusCode !== 401) throw new Error(`an unauthenticated request: HTTP ${res.statusCode}`)
    await replica.waitForLog((l) => !earlier.has(l) && l['log.type'] === 'audit' && l['http.response.status_code'] === 401)
  }))
}

async function register (): Promise<string> {
  const res = await request(`${cluster.publicUrl}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'replica test app' }),
  })
  const body = await res.body.json() as { client_id?: string }
  if (res.statusCode !== 201 || body.client_id === undefined) throw new Error(`registration: ${res.statusCode} ${JSON.stringify(body)}`)
  return body.client_id
}

/** authorize → IdP → callback in a browser, then the code at `tokenBase`: the code, its verifier and the token answer. */
async function login (clientId: string, tokenBase = cluster.publicUrl): Promise<{ code: string, verifier: string, status: number, body: Record<string, unknown> }> {
  const { verifier, challenge } = pkcePair()
  const authorize = new URL(`${cluster.publicUrl}/oauth/authorize`)
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'app-state',
    resource: cluster.mcpUrl('http'),
    scope: 'tools.read',
  })) authorize.searchParams.set(k, v)
  const callback = await signIn(new Browser(), authorize.href, 'alice', (url) => url.startsWith(REDIRECT))
  const code = callback.searchParams.get('code')
  if (code === null) throw new Error(`no code: ${callback.href}`)
  const { status, body } = await redeemCode(code, verifier, clientId, tokenBase)
  return { code, verifier, status, body }
}

async function redeemCode (code: string, verifier: string, clientId: string, base: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId, resource: cluster.mcpUrl('http') }).toString(),
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

async function listToolsAt (base: string, token: string): Promise<number> {
  const res = await request(cluster.mcpUrl('http', base), {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } }),
  })
  await res.body.dump()
  return res.statusCode
}

let sdkProvider: MemoryOAuthProvider | undefined

t.test('SDK 1.x: registration, authorize, callback and token on different replicas', async (t) => {
  const provider = new MemoryOAuthProvider('http://127.0.0.1:9/sdk/callback', 'none')
  sdkProvider = provider
  const first = new Client1({ name: 'replicas-federated', version: '1.0.0' })
  const transport = new Transport1(new URL(cluster.mcpUrl('http')), { authProvider: provider })
  await t.rejects(first.connect(transport), { message: /Unauthorized/ }, 'the first connect needs the browser')
  t.match(provider.registered, { client_id: /^dyn-/ }, 'registered dynamically')
  const start = provider.authorizationUrl
  if (start === undefined) throw new Error('no authorization URL')
  const callback = await signIn(new Browser(), start.href, 'alice', (url) => url.startsWith(provider.redirectUrl))
  await transport.finishAuth(callback.searchParams.get('code') ?? '')
  t.type(provider.saved?.access_token, 'string', 'the SDK redeemed the code')

  // the log destination writes out every 200 ms: wait until every replica has written out all it
  // logged so far, so that a step run twice would show
  await logsWrittenOut()
  const steps = {
    register: replicasThatLogged((l) => l['event.name'] === 'oauth.register' && l.outcome === 'registered'),
    authorize: replicasThatLogged((l) => l['event.name'] === 'oauth.authorize' && l.outcome === 'login_started'),
    callback: replicasThatLogged((l) => l['event.name'] === 'oauth.authorize' && l.outcome === 'code_issued'),
    token: replicasThatLogged((l) => l['event.name'] === 'oauth.token' && l['oauth.grant_type'] === 'authorization_code' && l.outcome === 'issued'),
  }
  t.ok(Object.values(steps).every((s) => s.length === 1), `each step ran once, on one replica: ${JSON.stringify(steps)}`)
  t.ok(new Set(Object.values(steps).flat()).size >= 2, 'the steps ran on different replicas')
  t.not(steps.authorize[0], steps.callback[0], 'the callback reached another replica than the one that started the login')

  const client = new Client1({ name: 'replicas-federated', version: '1.0.0' })
  await client.connect(new Transport1(new URL(cluster.mcpUrl('http')), { authProvider: provider }))
  t.teardown(() => client.close())
  for (let i = 0; i < 4; i++) {
    t.same((await client.callTool({ name: 'echo', arguments: { message: `federated ${i}` } })).content, [{ type: 'text', text: `Echo: federated ${i}` }])
  }
})

t.test('a replayed code revokes its token at every replica within 3 s', async (t) => {
  const [first, second] = cluster.replicas
  if (first === undefined || second === undefined) throw new Error('replicas')
  const clientId = await register()
  const { code, verifier, status, body } = await login(clientId, first.url)
  t.equal(status, 200, 'the code is redeemed at the first replica')
  const token = String(body.access_token)
  for (const replica of cluster.replicas) t.equal(await listToolsAt(replica.url, token), 200, 'the token works at every replica')
  const replay = await redeemCode(code, verifier, clientId, second.url)
  t.equal(replay.status, 400, 'the replay at another replica is refused')
  t.equal(replay.body.error, 'invalid_grant')
  const started = Date.now()
  for (const [i, replica] of cluster.replicas.entries()) {
    let answer = await listToolsAt(replica.url, token)
    while (answer !== 401 && Date.now() - started < 3_000) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      answer = await listToolsAt(replica.url, token)
    }
    t.equal(answer, 401, `replica ${i} refuses the revoked token (${Date.now() - started} ms after the replay)`)
  }
})

t.test('every replica restarted: registered clients still log in, issued tokens still work, revocations still hold', async (t) => {
  const clientId = await register()
  const before = await login(clientId)
  t.equal(before.status, 200)
  const token = String(before.body.access_token)
  const revoked = await login(clientId)
  t.equal((await redeemCode(revoked.code, revoked.verifier, clientId, cluster.publicUrl)).status, 400, 'a replay revokes the second token')

  const codes = await cluster.restartAll()
  t.same(codes, [0, 0, 0], 'every replica stopped cleanly (SIGTERM → exit 0)')

  const after = await login(clientId)
  t.equal(after.status, 200, 'the client registered before the restart logs in after it')
  const sdk = sdkProvider?.registered?.client_id
  t.type(sdk, 'string')
  for (const replica of cluster.replicas) {
    t.equal(await listToolsAt(replica.url, token), 200, 'a token issued before the restart works at every new replica')
    t.equal(await listToolsAt(replica.url, String(revoked.body.access_token)), 401, 'a token revoked before the restart stays revoked (resync from the store)')
  }
  if (sdkProvider !== undefined) {
    const client = new Client1({ name: 'replicas-federated', version: '1.0.0' })
    await client.connect(new Transport1(new URL(cluster.mcpUrl('http')), { authProvider: sdkProvider }))
    t.teardown(() => client.close())
    t.same((await client.callTool({ name: 'echo', arguments: { message: 'after restart' } })).content, [{ type: 'text', text: 'Echo: after restart' }],
      'the SDK client carries on with the token it got before the restart')
  }
})
