// The admin console (design §5a) in a real headless Chromium against a real gateway: the dev IdP,
// recording upstreams (real SDK servers), one server enforced and one in shadow mode, admin.token
// set. Checks each view and its JSON, that denials, would_deny and step-ups show up within 2 s,
// that the playground answers what `portcullis policy explain` answers, that no secret of the
// config is shown anywhere, that nothing outside the admin listener is loaded, that no page logs
// an error, and that axe-core finds nothing serious or critical. Screenshots of every view go to
// docs/console/ with PORTCULLIS_UPDATE_SCREENSHOTS=1.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { request } from 'undici'
import axe from 'axe-core'
import { chromium, type Page } from 'playwright-core'
import type { JWTPayload } from 'jose'
import { buildDevIdp, parseDevIdpConfig, type DevIdp } from '../../src/dev-idp/index.ts'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway } from '../../src/gateway.ts'
import { runPolicy } from '../../src/cli/policy.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { withFreePorts } from '../helpers/ports.ts'
import { POST_HEADERS, rawInitialize, readMessages, type RawSession } from '../helpers/raw-mcp.ts'
import { CHROMIUM, CHROMIUM_ARGS, launchChromium } from '../helpers/chromium.ts'
import { clientBasicAuth } from '../helpers/basic-auth.ts'

const SECRETS = {
  CLIENT_SECRET: `client-secret-${randomUUID()}`,
  UPSTREAM_KEY: `upstream-key-${randomUUID()}`,
  ADMIN_TOKEN: `admin-token-${randomUUID()}`,
  LOGIN_SECRET: `login-secret-${randomUUID()}`,
}
const CLIENT_ID = 'mcp-client'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const VIEWS = ['servers', 'decisions', 'playground', 'tokens', 'idps', 'keys', 'config', 'replicas'] as const
const PATHS: Record<typeof VIEWS[number], string> = {
  servers: '/', decisions: '/decisions', playground: '/playground', tokens: '/tokens', idps: '/idps', keys: '/keys', config: '/config', replicas: '/replicas',
}

const RULES = `
    scopes: [tools.read, tools.write]
    tools:
      - allow: ["echo", "add"]
        scopes: [tools.read]
        id: read-tools
      - allow: [slow]
        scopes: [tools.write]
        claims: { groups: [eng] }
        id: eng-slow
      - allow: [fail]
        scopes: [tools.write]
        id: writers-fail
      - deny: ["sec*"]
        id: no-secrets
    prompts:
      - allow: [greet]
        id: greet-only
    resources:
      - allow: ["file:///public/*"]
        id: public-files`

const upstream = await startRecordingUpstream({ promptsAndResources: true })
const shadowUpstream = await startRecordingUpstream()
const dir = await mkdtemp(join(tmpdir(), 'portcullis-console-'))

interface Stack { idp: DevIdp, gateway: Gateway, url: string, adminUrl: string, issuer: string, idpIssuer: string, yaml: string }

const stack = await withFreePorts(2, async (gwPort, idpPort): Promise<Stack> => {
  const issuer = `http://127.0.0.1:${gwPort}`
  const idpIssuer = `http://127.0.0.1:${idpPort}`
  const idp = await buildDevIdp(parseDevIdpConfig(`
issuer: ${idpIssuer}
listen: { host: 127.0.0.1, port: ${idpPort} }
users:
  - { username: alice, password: alice-pw, email: alice@example.com, groups: [eng] }
clients:
  - { clientId: idp-client, secret: idp-client-secret-0123456789, idJagClientId: ${CLIENT_ID} }
policy:
  - { audience: ${issuer}, resources: [${issuer}/mcp/tools], scopes: [tools.read, tools.write] }
`, { source: '<test idp>', env: {} }), { logger: false })
  await idp.listen()
  const yaml = `
publicUrl: ${issuer}
listen: { host: 127.0.0.1, port: ${gwPort} }
admin: { host: 127.0.0.1, port: 0, token: "\${ADMIN_TOKEN}" }
authorization:
  accessTokenTtlSeconds: 300
  clients:
    - { clientId: ${CLIENT_ID}, auth: client_secret_basic, secret: "\${CLIENT_SECRET}" }
  identityProviders:
    - issuer: ${idpIssuer}
      jwksUri: ${idpIssuer}/jwks
      algorithms: [ES256]
      claims: { groups: groups, email: email }
      login: { clientId: gateway-login, clientSecret: "\${LOGIN_SECRET}" }
servers:
  tools:
    upstream: { url: ${upstream.url}, headers: { X-Upstream-Key: "\${UPSTREAM_KEY}" } }${RULES}
  shadow:
    upstream: { url: ${shadowUpstream.url}, headers: { X-Upstream-Key: "\${UPSTREAM_KEY}" } }
    mode: shadow${RULES}
`
  try {
    const gateway = buildGateway(parseConfig(yaml, { source: '<test>', env: SECRETS }), { logger: false })
    const { url, adminUrl } = await gateway.listen()
    return { idp, gateway, url, adminUrl, issuer, idpIssuer, yaml }
  } catch (err) {
    await idp.close()
    throw err
  }
})
const configPath = join(dir, 'portcullis.yaml')
await writeFile(configPath, stack.yaml)
const ADMIN = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` }

const browser = await launchChromium({ headers: ADMIN })
t.teardown(async () => {
  await browser.close()
  await stack.gateway.close()
  await stack.idp.close()
  await upstream.close()
  await shadowUpstream.close()
  await rm(dir, { recursive: true, force: true })
})

/** A gateway access token for bob (sales) with `scope`, through a real ID-JAG and the real token endpoint. */
async function token (server: string, scope: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const assertion = await stack.idp.signIdJag({
    iss: stack.idpIssuer,
    sub: 'bob-sub',
    aud: stack.issuer,
    client_id: CLIENT_ID,
    jti: randomUUID(),
    iat: now,
    exp: now + 300,
    resource: `${stack.issuer}/mcp/${server}`,
    scope,
    email: 'bob@example.com',
    groups: ['sales'],
  } as JWTPayload)
  const res = await request(`${stack.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(CLIENT_ID, SECRETS.CLIENT_SECRET) },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
  })
  const body = await res.body.json() as { access_token?: string }
  if (body.access_token === undefined) throw new Error(`redeem failed: ${res.statusCode} ${JSON.stringify(body)}`)
  return body.access_token
}

async function rpc (server: string, bearer: string, session: RawSession, id: number, method: string, params: unknown): Promise<{ status: number, messages: Awaited<ReturnType<typeof readMessages>> }> {
  const res = await request(`${stack.url}/mcp/${server}`, {
    method: 'POST',
    headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}`, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
  })
  return { status: res.statusCode, messages: await readMessages(res) }
}

/** Every request any page makes must go to the admin listener. */
const external: string[] = []
const consoleErrors: string[] = []
browser.context.on('request', (req) => { if (!req.url().startsWith(`${stack.adminUrl}/`)) external.push(req.url()) })
browser.context.on('page', watch)
function watch (page: Page): void {
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(`${page.url()}: ${msg.text()}`) })
  page.on('pageerror', (err) => { consoleErrors.push(`${page.url()}: ${err.message}`) })
}
const page = browser.context.pages()[0] ?? await browser.context.newPage()
watch(page)

async function open (view: typeof VIEWS[number]): Promise<void> {
  const res = await page.goto(`${stack.adminUrl}${PATHS[view]}`)
  if (res?.status() !== 200) throw new Error(`${view}: HTTP ${res?.status()}`)
}

/** Into docs/console/ with PORTCULLIS_UPDATE_SCREENSHOTS=1 (the README's), else a temporary directory: a run leaves the tree clean. */
async function screenshot (view: typeof VIEWS[number]): Promise<void> {
  const path = process.env.PORTCULLIS_UPDATE_SCREENSHOTS === '1' ? new URL(`../../docs/console/${view}.png`, import.meta.url).pathname : join(dir, `${view}.png`)
  await page.screenshot({ path, fullPage: false })
}

const bobRead = await token('tools', 'tools.read')
const bobShadow = await token('shadow', 'tools.read')
const session = await rawInitialize(`${stack.url}/mcp/tools`, { authorization: `Bearer ${bobRead}` })
const shadowSession = await rawInitialize(`${stack.url}/mcp/shadow`, { authorization: `Bearer ${bobShadow}` })

const token401 = async (path: string, headers: Record<string, string> = {}): Promise<number> => (await request(`${stack.adminUrl}${path}`, { headers })).statusCode

t.test('admin.token: the console and /api/ answer 401 without it; the probes do not need it', async (t) => {
  for (const path of ['/', '/decisions', '/playground', '/api/servers', '/api/decisions', '/api/config', '/assets/console.js']) {
    t.equal(await token401(path), 401, `${path} without the token`)
    t.equal(await token401(path, { authorization: 'Bearer wrong-token-wrong-token-wrong-token' }), 401, `${path} with a wrong token`)
  }
  t.equal(await token401('/healthz'), 200)
  t.equal(await token401('/readyz'), 200)
  t.equal(await token401('/', ADMIN), 200, 'with the token')
})

t.test('admin.token in a plain browser: the Basic prompt, answered with the token as password, opens the console', async (t) => {
  const plain = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  t.teardown(async () => { await plain.close() })
  const anonymous = await (await plain.newContext()).newPage()
  // headless, nobody answers the prompt: Chromium gives up on the challenge it was offered
  await t.rejects(anonymous.goto(`${stack.adminUrl}/`), /ERR_INVALID_AUTH_CREDENTIALS/, 'no credentials: asked for them')
  // Playwright answers a Basic challenge with these, as a user answers the prompt
  const context = await plain.newContext({ httpCredentials: { username: 'ops', password: SECRETS.ADMIN_TOKEN } })
  const errors: string[] = []
  const page = await context.newPage()
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()) })
  const failed: string[] = []
  page.on('response', (res) => { if (res.status() !== 200) failed.push(`${res.status()} ${res.url()}`) })
  t.equal((await page.goto(`${stack.adminUrl}/decisions`))?.status(), 200, 'the decisions view')
  const started = Date.now()
  // its script refreshes the table from /api/decisions with the same credentials
  while (!(await page.locator('#updated').innerText()).startsWith('Updated ') && Date.now() - started < 3_000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(await page.locator('#updated').innerText(), /^Updated /, 'the table refreshed itself through the API')
  t.same(failed.filter((f) => !f.startsWith('401 ')), [], 'everything else it loaded: 200')
  t.same(errors.filter((e) => !/401/.test(e)), [], 'no console error')
})

t.test('servers: every server, its upstream without credentials, and its health', async (t) => {
  t.equal((await rpc('tools', bobRead, session, 1, 'tools/list', {})).status, 200)
  t.equal((await rpc('shadow', bobShadow, shadowSession, 1, 'tools/list', {})).status, 200)
  await open('servers')
  for (const name of ['tools', 'shadow']) {
    const row = page.locator(`tr[data-server="${name}"]`)
    t.equal(await row.count(), 1, `${name} is listed`)
    t.match(await row.locator('td').nth(4).innerText(), /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, `${name}: last success shown`)
  }
  t.match(await page.locator('tr[data-server="tools"]').innerText(), /echo read-tools[\s\S]*secret no-secrets/, 'the tools it listed, with the rules naming them')
  const api = await (await request(`${stack.adminUrl}/api/servers`, { headers: ADMIN })).body.json() as { servers: Array<Record<string, unknown>> }
  t.same(api.servers.map((s) => s.name), ['tools', 'shadow'])
  const tools = api.servers[0] as { url: string, mode: string, auth: string, transport: string, health: { lastSuccessAt?: string }, tools: string[] }
  t.match(tools, { transport: 'streamable-http', url: upstream.url, mode: 'enforce', auth: 'required' })
  t.ok(tools.health.lastSuccessAt, 'lastSuccessAt')
  t.same(tools.tools, ['echo', 'add', 'slow', 'fail', 'secret'])
  t.equal((api.servers[1] as { mode: string }).mode, 'shadow')
  await screenshot('servers')
})

t.test('decisions: a denial, a step-up and a would_deny appear within 2 s with their rule ids', async (t) => {
  await open('decisions')
  const started = Date.now()
  const denied = await rpc('tools', bobRead, session, 2, 'tools/call', { name: 'secret', arguments: {} })
  t.equal(denied.messages[0]?.error?.code, -32602, 'denied: answered like an unknown tool')
  const stepUp = await rpc('tools', bobRead, session, 3, 'tools/call', { name: 'fail', arguments: {} })
  t.equal(stepUp.status, 403, 'step-up: 403 insufficient_scope')
  const shadow = await rpc('shadow', bobShadow, shadowSession, 2, 'tools/call', { name: 'secret', arguments: {} })
  t.equal(shadow.status, 200, 'shadow: forwarded')
  const rows = page.locator('#decisions tbody tr')
  // polled from here: the page's CSP (rightly) refuses the string evaluation waitForFunction uses
  while (await rows.count() < 3 && Date.now() - started < 2_000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(Date.now() - started < 2_000, `shown ${Date.now() - started} ms after the first call (at most 2 s)`)
  const texts = await rows.allInnerTexts()
  const find = (re: RegExp): string | undefined => texts.find((r) => re.test(r))
  t.ok(find(/\btools\b[\s\S]*\bsecret\b[\s\S]*\bdeny\b[\s\S]*no-secrets[\s\S]*denied_by_rule/), 'the denial, rule no-secrets')
  t.ok(find(/\btools\b[\s\S]*\bfail\b[\s\S]*step_up[\s\S]*writers-fail[\s\S]*insufficient_scope/), 'the step-up, rule writers-fail')
  t.ok(find(/\bshadow\b[\s\S]*\bsecret\b[\s\S]*would_deny[\s\S]*no-secrets/), 'the would_deny, rule no-secrets')
  t.ok(find(/mcp-client/), 'the client id')
  t.notOk(texts.some((r) => r.includes('bob-sub')), 'users are pseudonyms, never the subject')
  const api = await (await request(`${stack.adminUrl}/api/decisions?limit=2`, { headers: ADMIN })).body.json() as { decisions: Array<Record<string, unknown>> }
  t.equal(api.decisions.length, 2, 'limit')
  t.match(api.decisions[0], { server: 'shadow', kind: 'tool', name: 'secret', decision: 'would_deny', ruleId: 'no-secrets', reason: 'denied_by_rule', clientId: CLIENT_ID }, 'newest first')
  t.match(api.decisions[1], { server: 'tools', name: 'fail', decision: 'step_up', ruleId: 'writers-fail' })
  t.type(api.decisions[0]?.user, 'string')
  await screenshot('decisions')
})

/** What `portcullis policy explain` prints, as {decision, ruleId, reason}. */
async function explainCli (server: string, kind: string, name: string, scope: string, claims: Record<string, unknown>): Promise<{ decision: string, ruleId: string, reason: string }> {
  let out = ''
  const stdout = new Writable({ write (chunk, _enc, done) { out += String(chunk); done() } })
  const stderr = new Writable({ write (_chunk, _enc, done) { done() } })
  await runPolicy(['explain', '--config', configPath, '--server', server, '--kind', `${kind}s`, '--tool', name, '--scope', scope, '--claims', JSON.stringify(claims)], { stdout, stderr, env: SECRETS })
  const verdict = out.startsWith('allow') ? 'allow' : out.includes('would_deny') ? 'would_deny' : out.includes('step-up:') ? 'step_up' : 'deny'
  return { decision: verdict, ruleId: /rule: +(\S+)/.exec(out)?.[1] ?? '?', reason: /reason: +(\S+)/.exec(out)?.[1] ?? '?' }
}

const IDENTITIES = [
  { name: 'alice (eng, read+write)', scope: 'tools.read tools.write', claims: { sub: 'alice', groups: ['eng'] } },
  { name: 'bob (sales, read)', scope: 'tools.read', claims: { sub: 'bob', groups: ['sales'] } },
  { name: 'carol (eng, read)', scope: 'tools.read', claims: { sub: 'carol', groups: ['eng'], client_id: CLIENT_ID } },
  { name: 'nobody (no scope)', scope: '', claims: {} },
]
/** `file:///public/*` names it as a string; the request path refuses it: not in normal form */
const DOTTED = 'file:///public/../secret/keys.txt'
const CASES: Array<{ server: string, kind: 'tool' | 'prompt' | 'resource', name: string }> = [
  { server: 'tools', kind: 'tool', name: 'echo' },
  { server: 'tools', kind: 'tool', name: 'slow' },
  { server: 'tools', kind: 'tool', name: 'fail' },
  { server: 'tools', kind: 'tool', name: 'secret' },
  { server: 'tools', kind: 'tool', name: 'nope' },
  { server: 'tools', kind: 'prompt', name: 'greet' },
  { server: 'shadow', kind: 'tool', name: 'secret' },
  { server: 'shadow', kind: 'tool', name: 'fail' },
  { server: 'tools', kind: 'resource', name: 'file:///public/readme.txt' },
  { server: 'tools', kind: 'resource', name: DOTTED },
  { server: 'shadow', kind: 'resource', name: 'file:///public/%72eadme.txt' },
]

t.test('playground: the same answers as `portcullis policy explain`, in the page and at /api/explain', async (t) => {
  await open('playground')
  let compared = 0
  for (const identity of IDENTITIES) {
    for (const c of CASES) {
      const expected = await explainCli(c.server, c.kind, c.name, identity.scope, identity.claims)
      const label = `${identity.name} × ${c.server}/${c.kind} ${c.name}`
      // the page, through its form (fetch, no reload)
      await page.selectOption('#server', c.server)
      await page.fill('#scopes', identity.scope)
      await page.fill('#claims', JSON.stringify(identity.claims))
      await page.selectOption('#kind', c.kind)
      await page.fill('#name', c.name)
      await page.evaluate('document.querySelector("#results tbody").replaceChildren()')
      await page.click('button[type=submit]')
      const row = page.locator('#results tbody tr').first()
      await row.waitFor({ timeout: 2_000 })
      const cells = await row.locator('td, th').allInnerTexts()
      t.same({ decision: cells[2], ruleId: cells[3], reason: cells[4] }, expected, `page: ${label}`)
      // the JSON API
      const res = await request(`${stack.adminUrl}/api/explain`, {
        method: 'POST',
        headers: { ...ADMIN, 'content-type': 'application/json' },
        body: JSON.stringify({ server: c.server, [c.kind]: c.name, scopes: identity.scope.split(' ').filter(Boolean), claims: identity.claims }),
      })
      t.match(await res.body.json(), expected, `api: ${label}`)
      compared++
    }
  }
  t.ok(compared >= 10, `${compared} identity × tool cases compared`)
  // for the screenshot: bob on the enforced server, every item it knows of
  await page.selectOption('#server', 'tools')
  await page.fill('#scopes', 'tools.read')
  await page.fill('#claims', '{"sub":"bob","groups":["sales"]}')
  await page.selectOption('#kind', 'tool')
  await page.fill('#name', '')
  await page.evaluate('document.querySelector("#results tbody").replaceChildren()')
  await page.click('button[type=submit]')
  await page.locator('#results tbody tr').first().waitFor({ timeout: 2_000 })
  t.ok(await page.locator('#results tbody tr').count() >= 6, 'every tool and prompt known for the server')
  await screenshot('playground')
})

t.test('a resource URI not in normal form: denied by the playground and by `policy explain`, as the request path denies it', async (t) => {
  const alice = IDENTITIES[0] ?? { scope: '', claims: {} }
  for (const [name, ruleId, reason] of [
    ['file:///public/readme.txt', 'public-files', 'allowed_by_rule'],
    [DOTTED, 'default', 'non_canonical_uri'],
    ['file:///public/%72eadme.txt', 'default', 'non_canonical_uri'],
    ['FILE:///public/readme.txt', 'default', 'non_canonical_uri'],
  ] as const) {
    const decision = reason === 'allowed_by_rule' ? 'allow' : 'deny'
    t.same(await explainCli('tools', 'resource', name, alice.scope, alice.claims), { decision, ruleId, reason }, `policy explain: ${name}`)
    const res = await request(`${stack.adminUrl}/api/explain`, {
      method: 'POST',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ server: 'tools', resource: name, scopes: alice.scope.split(' '), claims: alice.claims }),
    })
    t.match(await res.body.json(), { decision, ruleId, reason }, `playground: ${name}`)
  }
  const session = await rawInitialize(`${stack.url}/mcp/tools`, { authorization: `Bearer ${bobRead}` })
  const read = await rpc('tools', bobRead, session, 9, 'resources/read', { uri: DOTTED })
  t.equal(read.messages[0]?.error?.code, -32002, 'and the request path: resources/read of it is "Resource not found"')
})

t.test('playground without JavaScript: a plain form POST answers with the page', async (t) => {
  const res = await request(`${stack.adminUrl}/playground`, {
    method: 'POST',
    headers: { ...ADMIN, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ server: 'tools', scopes: 'tools.read', claims: '{"groups":["sales"]}', kind: 'tool', name: 'fail' }).toString(),
  })
  t.equal(res.statusCode, 200)
  const text = await res.body.text()
  t.match(text, /<code>fail<\/code><\/th><td><span class="verdict step_up">step_up<\/span><\/td>\s*<td><code>writers-fail<\/code>/)
  t.match(text, /value="tools.read"/, 'the form keeps what was typed')
})

t.test('every view: no secret, no external request, no console error, nothing serious for axe', async (t) => {
  // make a token failure and a JWKS fetch show up in their views
  await request(`${stack.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' }).then((r) => r.body.dump())
  for (const view of VIEWS) {
    await open(view)
    const html = await page.content()
    for (const [name, secret] of Object.entries(SECRETS)) t.notOk(html.includes(secret), `${view}: no ${name}`)
    await page.evaluate(axe.source)
    const results = await page.evaluate<axe.AxeResults>('axe.run(document, { resultTypes: ["violations"] })')
    const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    t.same(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], `${view}: axe finds nothing serious or critical`)
    if (view !== 'servers' && view !== 'decisions' && view !== 'playground') await screenshot(view)
  }
  for (const path of ['/api/servers', '/api/decisions', '/api/tokens', '/api/idps', '/api/keys', '/api/config', '/api/replicas']) {
    const res = await request(`${stack.adminUrl}${path}`, { headers: ADMIN })
    t.equal(res.statusCode, 200, path)
    const text = await res.body.text()
    for (const [name, secret] of Object.entries(SECRETS)) t.notOk(text.includes(secret), `${path}: no ${name}`)
  }
  const config = await (await request(`${stack.adminUrl}/api/config`, { headers: ADMIN })).body.json() as { config: { servers: { tools: { upstream: { headers: Record<string, string> } } } } }
  t.same(config.config.servers.tools.upstream.headers, { 'X-Upstream-Key': '[redacted]' }, 'header names stay, values go')
  const keys = await (await request(`${stack.adminUrl}/api/keys`, { headers: ADMIN })).body.json() as { keys: Array<Record<string, unknown>> }
  t.equal(keys.keys.length, 1)
  t.notOk(JSON.stringify(keys).includes('"d"'), 'no key material')
  const tokens = await (await request(`${stack.adminUrl}/api/tokens`, { headers: ADMIN })).body.json() as { tokens: Array<Record<string, unknown>> }
  t.ok(tokens.tokens.some((r) => r.outcome === 'issued'), 'token requests by outcome')
  const idps = await (await request(`${stack.adminUrl}/api/idps`, { headers: ADMIN })).body.json() as { idps: Array<{ kids: string[], lastFetchAt?: string }> }
  t.ok(idps.idps[0]?.lastFetchAt, 'the IdP\'s JWKS: last fetch')
  t.ok((idps.idps[0]?.kids.length ?? 0) > 0, 'and its kids')
  t.same(external, [], 'no request left the admin listener')
  t.same(consoleErrors, [], 'no console error on any page')
})
