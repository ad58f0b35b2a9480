// The federated authorization-code login with the official MCP SDK clients, unmodified: SDK 1.x
// (@modelcontextprotocol/sdk) and 2.x (@modelcontextprotocol/client) each meet the gateway's
// 401, discover its metadata, register dynamically (RFC 7591), and send the browser to
// /oauth/authorize. The test is the browser: it follows the redirects to the dev IdP, posts its
// user picker, comes back through /oauth/callback to the client's redirect URI, and hands the
// code to the SDK's finishAuth. The SDK redeems it (PKCE, resource) and calls tools — under the
// same tool rules as EMA, with the identity claims of the IdP's ID token.
import t, { type Test } from 'tap'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Client as Client2, StreamableHTTPClientTransport as Transport2, UnauthorizedError as Unauthorized2 } from '@modelcontextprotocol/client'
import { Browser, signIn } from '../helpers/browser.ts'
import { startFederatedStack, LOGIN_CLIENT } from '../helpers/federated.ts'
import { MemoryOAuthProvider } from '../helpers/oauth-provider.ts'

const stack = await startFederatedStack()
t.teardown(() => stack.close())
const secrets: string[] = [LOGIN_CLIENT.secret]

/** Run the browser part: from the URL the SDK wanted to open to the redirect back to it. */
async function browse (provider: MemoryOAuthProvider, user: string): Promise<URL> {
  const start = provider.authorizationUrl
  if (start === undefined) throw new Error('the SDK did not ask for a browser redirect')
  const callback = await signIn(new Browser(), start.href, user, (url) => url.startsWith(provider.redirectUrl))
  const code = callback.searchParams.get('code')
  if (code !== null) secrets.push(code)
  return callback
}

function checkToken (t: Test, provider: MemoryOAuthProvider, expected: { scope: string, groups: string[] }): void {
  const token = provider.saved?.access_token
  if (token === undefined) { t.fail('no access token saved'); return }
  secrets.push(token)
  t.equal(decodeProtectedHeader(token).typ, 'at+jwt', 'the same RFC 9068 access token as the ID-JAG path')
  t.match(decodeJwt(token), {
    iss: stack.issuer,
    aud: stack.resource,
    client_id: provider.registered?.client_id,
    scope: expected.scope,
    idp_iss: stack.idp.issuer,
    groups: expected.groups,
  }, 'audience-bound to the one resource, with the scopes of the server and the IdP\'s identity claims')
  t.equal(provider.saved?.refresh_token, undefined, 'no refresh token')
}

t.test('SDK 1.x: DCR as a public client, browser login as alice (eng), tool calls', async (t) => {
  const provider = new MemoryOAuthProvider('http://127.0.0.1:9/sdk1/callback', 'none')
  const first = new Client1({ name: 'sdk1-federated', version: '1.0.0' })
  const transport = new Transport1(new URL(stack.gw.mcpUrl('tools')), { authProvider: provider })
  await t.rejects(first.connect(transport), { message: /Unauthorized/ }, 'the first connect needs the browser')
  t.match(provider.registered, { client_id: /^dyn-/, token_endpoint_auth_method: 'none' }, 'registered dynamically, with a generated client_id')
  t.equal(provider.authorizationUrl?.origin + (provider.authorizationUrl?.pathname ?? ''), `${stack.issuer}/oauth/authorize`)
  const callback = await browse(provider, 'alice')
  t.equal(callback.searchParams.get('state'), provider.lastState, 'the client\'s state comes back')
  t.equal(callback.searchParams.get('iss'), stack.issuer, 'with our iss (RFC 9207)')
  await transport.finishAuth(callback.searchParams.get('code') ?? '')
  checkToken(t, provider, { scope: 'tools.read tools.write', groups: ['eng'] })

  const client = new Client1({ name: 'sdk1-federated', version: '1.0.0' })
  await client.connect(new Transport1(new URL(stack.gw.mcpUrl('tools')), { authProvider: provider }))
  t.teardown(() => client.close())
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['add', 'echo', 'secret'], 'alice (eng) sees the eng-only tool')
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'federated 1.x' } })).content, [{ type: 'text', text: 'federated 1.x' }])
  t.notOk((await client.callTool({ name: 'secret', arguments: {} })).isError, 'the claim rule admits alice')
  t.ok(stack.upstream.calls.includes('echo') && stack.upstream.calls.includes('secret'), 'the calls reached the upstream')
})

t.test('SDK 2.x: DCR as a confidential client, browser login as bob (sales), tool rules apply', async (t) => {
  const provider = new MemoryOAuthProvider('http://localhost:9/sdk2/callback', 'client_secret_basic')
  const first = new Client2({ name: 'sdk2-federated', version: '2.0.0' })
  const transport = new Transport2(new URL(stack.gw.mcpUrl('tools')), { authProvider: provider })
  await t.rejects(first.connect(transport), Unauthorized2, 'the first connect needs the browser')
  t.match(provider.registered, { client_id: /^dyn-/, token_endpoint_auth_method: 'client_secret_basic', client_secret: /^[A-Za-z0-9_-]{43}$/ })
  if (typeof provider.registered?.client_secret === 'string') secrets.push(provider.registered.client_secret)
  const callback = await browse(provider, 'bob')
  await transport.finishAuth(callback.searchParams)
  checkToken(t, provider, { scope: 'tools.read tools.write', groups: ['sales'] })

  const client = new Client2({ name: 'sdk2-federated', version: '2.0.0' })
  await client.connect(new Transport2(new URL(stack.gw.mcpUrl('tools')), { authProvider: provider }))
  t.teardown(() => client.close())
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['add', 'echo'], 'bob (sales) does not see the eng-only tool')
  t.same((await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).content, [{ type: 'text', text: '5' }])
  const before = stack.upstream.calls.filter((c) => c === 'secret').length
  const denied = await client.callTool({ name: 'secret', arguments: {} }).then(() => undefined, (err: unknown) => err)
  t.match(denied, { code: -32602, message: /Unknown tool: secret/ }, 'the claim rule denies bob, as for EMA')
  t.equal(stack.upstream.calls.filter((c) => c === 'secret').length, before, 'and the upstream was not called')
})

t.test('nothing secret crosses to the upstream or into a log line', async (t) => {
  t.ok(secrets.length >= 6)
  for (const r of stack.upstream.requests) {
    t.equal(r.headers.authorization, undefined)
    const seen = JSON.stringify(r.headers) + r.body
    for (const secret of secrets) if (seen.includes(secret)) t.fail('the upstream received a credential')
  }
  for (const line of stack.gw.rawLogs) {
    for (const secret of secrets) if (line.includes(secret)) t.fail(`a log line leaks a credential: ${line.slice(0, 200)}`)
  }
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.token' && l['oauth.grant_type'] === 'authorization_code' && l.outcome === 'issued'), 'code redemptions are audited')
})
