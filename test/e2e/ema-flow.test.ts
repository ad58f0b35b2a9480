// Enterprise-Managed Authorization end to end: the official SDK 2.x client with its
// CrossAppAccessProvider, unmodified, meets the gateway's 401, discovers the protected-resource
// and authorization-server metadata, gets an ID-JAG from the dev IdP (a real OpenID Provider over
// HTTP with real keys), redeems it at the gateway and calls a tool. The upstream never sees the
// client's token, and no token, assertion or secret appears in any log line.
import t from 'tap'
import { request } from 'undici'
import { Client, CrossAppAccessProvider, StreamableHTTPClientTransport, discoverAndRequestJwtAuthGrant } from '@modelcontextprotocol/client'
import { CLIENT, IDP_CLIENT, startEmaStack } from '../helpers/ema.ts'
import { POST_HEADERS, rawInitialize } from '../helpers/raw-mcp.ts'

const stack = await startEmaStack()
t.teardown(() => stack.close())

const secrets: string[] = [CLIENT.secret, IDP_CLIENT.secret]

t.test('the SDK 2.x CrossAppAccessProvider reaches a tool through the gateway', async (t) => {
  const idToken = await stack.idToken('alice')
  secrets.push(idToken)
  const provider = new CrossAppAccessProvider({
    assertion: async (ctx) => {
      t.equal(ctx.authorizationServerUrl.replace(/\/$/, ''), stack.issuer, 'discovered the gateway as the authorization server')
      t.equal(ctx.resourceUrl, stack.resource, 'discovered the resource id from the protected-resource metadata')
      const { jwtAuthGrant } = await discoverAndRequestJwtAuthGrant({
        idpUrl: stack.idp.issuer,
        audience: ctx.authorizationServerUrl,
        resource: ctx.resourceUrl,
        idToken,
        clientId: IDP_CLIENT.id,
        clientSecret: IDP_CLIENT.secret,
        ...(ctx.scope === undefined ? {} : { scope: ctx.scope }),
        fetchFn: ctx.fetchFn,
      })
      secrets.push(jwtAuthGrant)
      return jwtAuthGrant
    },
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
    expectedIssuer: stack.issuer,
  })
  const client = new Client({ name: 'ema-client', version: '2.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.gw.mcpUrl('tools')), { authProvider: provider }))
  t.teardown(() => client.close())
  const token = (await provider.tokens())?.access_token
  t.type(token, 'string', 'the provider holds a gateway access token')
  if (token !== undefined) secrets.push(token)

  const { tools } = await client.listTools()
  t.ok(tools.some((tool) => tool.name === 'echo'))
  const result = await client.callTool({ name: 'echo', arguments: { message: 'authorized' } })
  t.same(result.content, [{ type: 'text', text: 'authorized' }])
  t.ok(stack.upstream.calls.includes('echo'), 'the call reached the upstream')
})

t.test('the upstream never receives the client\'s token or any credential', async (t) => {
  t.ok(stack.upstream.requests.length > 0)
  for (const r of stack.upstream.requests) {
    t.equal(r.headers.authorization, undefined, `${r.method} without Authorization`)
    const seen = JSON.stringify(r.headers) + r.body
    for (const secret of secrets) t.notOk(seen.includes(secret), 'no token, assertion or secret in what the upstream received')
  }
})

t.test('a session is bound to the principal that opened it', async (t) => {
  const alice = await stack.accessToken('alice')
  const bob = await stack.accessToken('bob')
  secrets.push(alice, bob)
  const session = await rawInitialize(stack.gw.mcpUrl('tools'), { authorization: `Bearer ${alice}` })
  const before = stack.upstream.requests.length
  const res = await request(stack.gw.mcpUrl('tools'), {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bob}`, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  })
  t.equal(res.statusCode, 404, 'bob presenting alice\'s session id is told it does not exist')
  await res.body.dump()
  t.equal(stack.upstream.requests.length, before, 'and nothing reached the upstream')
  const own = await request(stack.gw.mcpUrl('tools'), {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${alice}`, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  })
  t.equal(own.statusCode, 200, 'alice keeps using it')
  await own.body.dump()
})

t.test('no log line contains a token, assertion or secret', async (t) => {
  t.ok(stack.gw.rawLogs.length > 10)
  for (const line of stack.gw.rawLogs) {
    for (const secret of secrets) {
      if (line.includes(secret)) t.fail(`log line leaks a credential: ${line.slice(0, 200)}`)
    }
  }
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.token' && l.outcome === 'issued'), 'token issuance is audited')
})
