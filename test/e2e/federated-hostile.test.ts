// The federated authorization-code login against hostile requests. Every case names the exact
// error (and the bounded reason the gateway logs) and checks that nothing was issued: no code
// reached the client, no access token left the token endpoint. Redirect URIs are compared as
// exact strings; errors before the client and redirect URI are validated are a page, never a
// redirect; a bad IdP answer at the callback is access_denied back to the validated client.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.ts'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { PUBLIC_APP, WEB_APP, startFederatedStack, webAppAuth, type FederatedStack } from '../helpers/federated.ts'
import { FEDERATED_CASES, ID_TOKEN_CASES } from '../helpers/federated-hostile-cases.ts'
import { startFakeOidc } from '../helpers/fake-oidc.ts'
import { startGateway } from '../helpers/gateway.ts'
import { withFreePorts } from '../helpers/ports.ts'

const stack = await startFederatedStack()
t.teardown(() => stack.close())

const issuedCount = (s: FederatedStack): number => s.gw.logs.filter((l) => l['event.name'] === 'oauth.token' && l.outcome === 'issued').length
const lastReason = (s: FederatedStack, event: string): unknown => s.gw.logs.filter((l) => l['event.name'] === event && l.outcome === 'rejected').at(-1)?.['portcullis.auth.reason']

t.test('authorization endpoint: a bad client or redirect URI is a page, never a redirect', async (t) => {
  for (const c of FEDERATED_CASES.page) {
    const res = await fetch(stack.authorizeUrl(c.client ?? PUBLIC_APP, { override: c.override }) + (c.append ?? ''), { redirect: 'manual' })
    const body = await res.json() as Record<string, unknown>
    t.equal(res.status, 400, `${c.name}: 400`)
    t.equal(res.headers.get('location'), null, `${c.name}: no redirect`)
    t.equal(body.error, c.error, `${c.name}: ${c.error}`)
    t.equal(lastReason(stack, 'oauth.authorize'), c.reason, `${c.name}: reason ${c.reason}`)
  }
})

t.test('authorization endpoint: other errors go back to the validated redirect URI', async (t) => {
  for (const c of FEDERATED_CASES.redirect) {
    const res = await fetch(stack.authorizeUrl(PUBLIC_APP, { override: c.override, ...(c.scope === undefined ? {} : { scope: c.scope }) }), { redirect: 'manual' })
    t.equal(res.status, 302, `${c.name}: 302`)
    const back = new URL(res.headers.get('location') ?? 'invalid:')
    t.equal(`${back.origin}${back.pathname}`, PUBLIC_APP.redirectUri, `${c.name}: to the registered redirect URI`)
    t.equal(back.searchParams.get('error'), c.error, `${c.name}: ${c.error}`)
    t.equal(back.searchParams.get('state'), 'client-state-1', `${c.name}: state echoed`)
    t.equal(back.searchParams.get('iss'), stack.issuer, `${c.name}: iss`)
    t.notOk(back.searchParams.has('code'), `${c.name}: no code`)
    t.equal(lastReason(stack, 'oauth.authorize'), c.reason, `${c.name}: reason ${c.reason}`)
  }
})

t.test('callback: forged, replayed or cross-browser IdP answers', async (t) => {
  const forged = await fetch(`${stack.issuer}/oauth/callback?code=x&state=forged-state&iss=${encodeURIComponent(stack.idp.issuer)}`, { redirect: 'manual' })
  t.equal(forged.status, 400, 'an unknown state: a page')
  t.equal(forged.headers.get('location'), null, 'and no redirect')
  t.match(await forged.json(), { error: 'invalid_request' })
  t.equal(lastReason(stack, 'oauth.authorize'), 'unknown_state')

  // One real login, stopped at the IdP's redirect to our callback.
  const browser = new Browser()
  const atCallback = await signIn(browser, stack.authorizeUrl(PUBLIC_APP), 'alice', (url) => url.startsWith(`${stack.issuer}/oauth/callback`))
  const stranger = await fetch(atCallback.href, { redirect: 'manual' })
  const back = new URL(stranger.headers.get('location') ?? 'invalid:')
  t.equal(back.searchParams.get('error'), 'access_denied', 'the callback opened in another browser (no login cookie): access_denied')
  t.notOk(back.searchParams.has('code'))
  t.equal(lastReason(stack, 'oauth.authorize'), 'browser_mismatch')
  const replay = await browser.get(atCallback.href)
  t.equal(replay.status, 400, 'the same callback again, from the right browser: the login is spent, a page')
  t.equal(replay.headers.get('location'), null)
  t.equal(lastReason(stack, 'oauth.authorize'), 'unknown_state')

  for (const c of FEDERATED_CASES.callback) {
    const b = new Browser()
    const cb = await signIn(b, stack.authorizeUrl(PUBLIC_APP), 'alice', (url) => url.startsWith(`${stack.issuer}/oauth/callback`))
    for (const [name, value] of Object.entries(c.tamper)) {
      if (value === undefined) cb.searchParams.delete(name)
      else cb.searchParams.set(name, value)
    }
    const res = await b.get(cb.href)
    const to = new URL(res.headers.get('location') ?? 'invalid:')
    t.equal(to.searchParams.get('error'), 'access_denied', `${c.name}: access_denied`)
    t.equal(to.searchParams.get('state'), 'client-state-1', `${c.name}: with the client's state`)
    t.notOk(to.searchParams.has('code'), `${c.name}: no code`)
    t.equal(lastReason(stack, 'oauth.authorize'), c.reason, `${c.name}: reason ${c.reason}`)
  }
})

t.test('token endpoint: the code is bound to its client, redirect URI, verifier and resource', async (t) => {
  for (const c of FEDERATED_CASES.token) {
    const login = await stack.codeFor(c.client ?? PUBLIC_APP)
    const form: Record<string, string | undefined> = {
      grant_type: 'authorization_code',
      code: login.code,
      redirect_uri: (c.client ?? PUBLIC_APP).redirectUri,
      code_verifier: login.verifier,
      client_id: (c.client ?? PUBLIC_APP).id,
      resource: stack.resource,
      ...c.form(login, stack),
    }
    const before = issuedCount(stack)
    const res = await stack.token(Object.fromEntries(Object.entries(form).filter((e): e is [string, string] => e[1] !== undefined)), c.auth?.())
    t.equal(res.status, c.status, `${c.name}: ${c.status}`)
    t.equal(res.body.error, c.error, `${c.name}: ${c.error}`)
    t.equal(res.body.access_token, undefined, `${c.name}: no access token`)
    t.equal(issuedCount(stack), before, `${c.name}: nothing issued`)
    t.equal(lastReason(stack, 'oauth.token'), c.reason, `${c.name}: reason ${c.reason}`)
    if (c.stillRedeemable === true) {
      const good = await stack.token({ grant_type: 'authorization_code', code: login.code, redirect_uri: PUBLIC_APP.redirectUri, code_verifier: login.verifier, client_id: PUBLIC_APP.id })
      t.equal(good.status, 200, `${c.name}: the refusal did not burn the code for its rightful client`)
    }
  }
})

t.test('a replayed code is refused and revokes the token it issued', async (t) => {
  const login = await stack.codeFor(PUBLIC_APP)
  const form = { grant_type: 'authorization_code', code: login.code, redirect_uri: PUBLIC_APP.redirectUri, code_verifier: login.verifier, client_id: PUBLIC_APP.id }
  const first = await stack.token(form)
  t.equal(first.status, 200)
  const token = String(first.body.access_token)
  t.equal(await mcpStatus(token), 200, 'the token works')
  const before = issuedCount(stack)
  const replay = await stack.token(form)
  t.match(replay, { status: 400, body: { error: 'invalid_grant' } })
  t.equal(replay.body.access_token, undefined)
  t.equal(issuedCount(stack), before, 'nothing issued')
  t.equal(lastReason(stack, 'oauth.token'), 'replayed_code')
  t.equal(await mcpStatus(token), 401, 'the token it issued stopped working')
  const other = await stack.codeFor(PUBLIC_APP)
  const fresh = await stack.token({ ...form, code: other.code, code_verifier: other.verifier })
  t.equal(await mcpStatus(String(fresh.body.access_token)), 200, 'other tokens of the same client keep working')
})

t.test('confidential clients authenticate; public clients cannot use jwt-bearer', async (t) => {
  const login = await stack.codeFor(WEB_APP)
  const form = { grant_type: 'authorization_code', code: login.code, redirect_uri: WEB_APP.redirectUri, code_verifier: login.verifier }
  t.match(await stack.token({ ...form, client_id: WEB_APP.id }), { status: 401, body: { error: 'invalid_client' } }, 'naming a confidential client is not authenticating it')
  t.match(await stack.token(form, clientBasicAuth(WEB_APP.id, 'wrong')), { status: 401, body: { error: 'invalid_client' } }, 'wrong secret')
  t.match(await stack.token(form, webAppAuth()), { status: 200, body: { token_type: 'Bearer' } }, 'the right secret redeems it')
  const jwtBearer = await stack.token({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'a.b.c', client_id: PUBLIC_APP.id })
  t.match(jwtBearer, { status: 401, body: { error: 'invalid_client' } }, 'a public client may not present an ID-JAG')
})

t.test('dynamic registration: the server picks the id, and only allowed redirect hosts', async (t) => {
  for (const c of FEDERATED_CASES.registration) {
    const res = await fetch(`${stack.issuer}/oauth/register`, { method: 'POST', headers: { 'content-type': c.contentType ?? 'application/json' }, body: JSON.stringify(c.body) })
    const body = await res.json() as Record<string, unknown>
    t.equal(res.status, 400, `${c.name}: 400`)
    t.equal(body.error, c.error, `${c.name}: ${c.error}`)
    t.equal(body.client_id, undefined, `${c.name}: no client registered`)
    t.equal(lastReason(stack, 'oauth.register'), c.reason, `${c.name}: reason ${c.reason}`)
  }
  const login = await stack.codeFor(PUBLIC_APP)
  t.ok(login.code, 'the configured client whose id was asked for is untouched')
})

t.test('client ID metadata documents at private addresses are never fetched', async (t) => {
  for (const c of FEDERATED_CASES.cimd) {
    const res = await fetch(stack.authorizeUrl({ id: c.clientId, redirectUri: 'http://127.0.0.1:9/cimd' }), { redirect: 'manual' })
    t.equal(res.status, 400, `${c.name}: a page`)
    t.equal(res.headers.get('location'), null, `${c.name}: no redirect`)
    t.match(await res.json(), { error: 'invalid_client' }, `${c.name}: invalid_client`)
    t.equal(lastReason(stack, 'oauth.authorize'), c.reason, `${c.name}: reason ${c.reason}`)
  }
})

t.test('ID tokens: only from the trusted issuer, for us, for this login, signed, fresh', async (t) => {
  const fake = await startFakeOidc('fake-login')
  // publicUrl names the gateway's own port
  const gw = await withFreePorts(1, async (port) => await startGateway(`
publicUrl: http://127.0.0.1:${port}
authorization:
  clients: [{ clientId: ${PUBLIC_APP.id}, auth: none, redirectUris: ["${PUBLIC_APP.redirectUri}"] }]
  identityProviders:
    - { issuer: "${fake.issuer}", algorithms: [ES256], claims: { groups: groups }, login: { clientId: fake-login } }
servers:
  tools: { upstream: { url: "http://127.0.0.1:9/mcp" }, scopes: [tools.read], tools: [{ allow: ["*"] }] }
`, {}, { port }))
  t.teardown(async () => {
    const closing = gw.close()
    gw.gateway.app.server.closeAllConnections()
    await closing
    await fake.close()
  })
  const login = async (): Promise<URL> => await signIn(new Browser(), `${gw.url}/oauth/authorize?${new URLSearchParams({
    response_type: 'code',
client_id: PUBLIC_APP.id,
redirect_uri: PUBLIC_APP.redirectUri,
code_challenge: 'a'.repeat(43),
    code_challenge_method: 'S256',
state: 's-1',
resource: `${gw.url}/mcp/tools`,
  }).toString()}`, 'nobody', (url) => url.startsWith(PUBLIC_APP.redirectUri))
  t.ok((await login()).searchParams.get('code'), 'control: a valid ID token gives a code')
  for (const c of ID_TOKEN_CASES) {
    fake.mint = c.mint
    const back = await login()
    t.equal(back.searchParams.get('error'), 'access_denied', `${c.name}: access_denied`)
    t.notOk(back.searchParams.has('code'), `${c.name}: no code`)
    t.equal(back.searchParams.get('state'), 's-1', `${c.name}: to the client, with its state`)
    const reason = gw.logs.filter((l) => l['event.name'] === 'oauth.authorize' && l.outcome === 'rejected').at(-1)?.['portcullis.auth.reason']
    t.equal(reason, c.reason, `${c.name}: reason ${c.reason}`)
  }
})

t.test('no code, token, secret or verifier in any log line', async (t) => {
  t.ok(stack.seen.length > 20)
  for (const line of stack.gw.rawLogs) {
    for (const secret of stack.seen) if (line.includes(secret)) t.fail(`log line leaks a credential: ${line.slice(0, 200)}`)
    if (/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(line)) t.fail(`log line carries a JWT: ${line.slice(0, 200)}`)
  }
  t.ok(issuedCount(stack) > 0)
})

async function mcpStatus (token: string): Promise<number> {
  const res = await fetch(stack.gw.mcpUrl('tools'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'h', version: '1' } } }),
  })
  await res.arrayBuffer()
  return res.status
}
