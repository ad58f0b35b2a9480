import t, { type Test } from 'tap'
import { createClient } from 'redis'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway, type GatewayDeps } from '../../src/gateway.ts'
import { captureLogs } from '../helpers/log-capture.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { startGatewayProcess } from '../helpers/gateway-process.ts'
import { clientBasicAuth } from '../helpers/basic-auth.ts'

// Finding 5: /oauth/* rate limits per address and per client, and the registration quota, against
// the in-process gateway. The client address comes from X-Forwarded-For (the test is a trusted
// proxy), so one test process plays an attacker and a control user from different addresses.
const WEB_APP = { id: 'web-app', secret: 'web-app-secret-0123456789' }
const OTHER_APP = { id: 'other-app', secret: 'other-app-secret-0123456789' }
const ATTACKER = '203.0.113.7'
const CONTROL = '198.51.100.2'

interface Started {
  readonly gateway: Gateway
  readonly url: string
  readonly logs: Record<string, unknown>[]
  readonly rawLogs: string[]
  close (): Promise<void>
}

const config = (authorization: string, extra = ''): string => `
publicUrl: http://127.0.0.1:9
listen: { host: 127.0.0.1, port: 0, trustProxy: [127.0.0.1] }
admin: { host: 127.0.0.1, port: 0 }
authorization:
  clients:
    - { clientId: ${WEB_APP.id}, auth: client_secret_basic, secret: ${WEB_APP.secret}, redirectUris: ["http://localhost:9/cb"] }
    - { clientId: ${OTHER_APP.id}, auth: client_secret_basic, secret: ${OTHER_APP.secret}, redirectUris: ["http://localhost:9/cb"] }
  identityProviders:
    - issuer: http://127.0.0.1:9/idp
      algorithms: [ES256]
      login: { clientId: portcullis, clientSecret: login-secret-0123456789 }
${authorization}
servers:
  tools:
    upstream: { url: http://127.0.0.1:9/mcp }
    scopes: [tools.read]
    tools: [{ allow: ["*"] }]
${extra}
`

async function start (authorization: string, extra = '', deps: GatewayDeps = {}): Promise<Started> {
  const parsed = parseConfig(config(authorization, extra), { source: '<test>', env: {} })
  const { stream, logs, rawLogs } = captureLogs()
  const gateway = buildGateway(parsed, { ...deps, logger: { level: 'info', stream } })
  const { url } = await gateway.listen()
  return {
    gateway,
    url,
    logs,
    rawLogs,
    async close () {
      const closing = gateway.close()
      gateway.app.server.closeAllConnections()
      await closing
    },
  }
}

interface Answer { status: number, headers: Headers, body: Record<string, unknown> | string }

async function call (url: string, from: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, headers: { 'x-forwarded-for': from, ...init.headers as Record<string, string> } })
  const text = await res.text()
  let body: Answer['body'] = text
  try { body = JSON.parse(text) as Record<string, unknown> } catch {}
  return { status: res.status, headers: res.headers, body }
}

/** a token request as `client` (Basic) with a code that does not exist: processed → 400 invalid_grant, not 429 */
const tokenRequest = (gw: { url: string }, from: string, client = WEB_APP, secret = client.secret): Promise<Answer> =>
  call(`${gw.url}/oauth/token`, from, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(client.id, secret) },
    body: 'grant_type=authorization_code&code=nope&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&code_verifier=' + 'v'.repeat(43),
  })

const register = (gw: { url: string }, from: string, auth = 'client_secret_basic'): Promise<Answer> =>
  call(`${gw.url}/oauth/register`, from, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['http://localhost:9/cb'], token_endpoint_auth_method: auth }),
  })

async function limitedCount (gw: Started, limit: string): Promise<number> {
  const { values } = await gw.gateway.metrics.rateLimited.get()
  return values.find((v) => v.labels.server === '_oauth' && v.labels.limit === limit)?.value ?? 0
}

function check429 (t: Test, answer: Answer, who: RegExp): void {
  t.equal(answer.status, 429)
  const retry = Number(answer.headers.get('retry-after'))
  t.ok(Number.isInteger(retry) && retry >= 1 && retry <= 3600, `Retry-After ${retry}`)
  t.equal(answer.headers.get('cache-control'), 'no-store')
  t.match(answer.body, { error: 'temporarily_unavailable', error_description: who })
}

t.test('an address flood at /oauth/token: 429 for the flood, the control user is served throughout', async (t) => {
  const gw = await start('  rateLimits: [{ per: address, rate: 30/min }, { per: client, rate: 100000/min }]')
  t.teardown(() => gw.close())
  const started = performance.now()
  const flood: Answer[] = []
  const control: Answer[] = []
  for (let round = 0; round < 20; round++) {
    flood.push(...await Promise.all(Array.from({ length: 50 }, () => tokenRequest(gw, ATTACKER, WEB_APP, 'wrong-secret'))))
    control.push(await tokenRequest(gw, CONTROL))
  }
  const seconds = (performance.now() - started) / 1000
  t.comment(`1000 flood requests in ${seconds.toFixed(2)} s: ${flood.filter((a) => a.status === 429).length} × 429; control: ${[...new Set(control.map((a) => a.status))].join(', ')}`)
  t.equal(flood.filter((a) => a.status === 401).length, 30, 'the first 30 were processed (wrong secret: 401)')
  t.equal(flood.filter((a) => a.status === 429).length, 970, 'the rest: 429')
  const first429 = flood.find((a) => a.status === 429)
  if (first429 !== undefined) check429(t, first429, /from this address/)
  t.equal(first429?.headers.get('access-control-allow-origin'), '*', 'a browser client can read the refusal')
  t.ok(control.every((a) => a.status === 400 && (a.body as Record<string, unknown>).error === 'invalid_grant'), 'every control request was processed')
  t.equal(await limitedCount(gw, 'address'), 970, 'portcullis_rate_limited_total{server="_oauth",limit="address"}')
  const audit = gw.logs.filter((l) => l['event.name'] === 'oauth.rate_limited')
  t.equal(audit.length, 1, 'one audit line per key and window, not one per refusal')
  t.match(audit[0], { 'log.type': 'audit', 'portcullis.limit': 'address', 'client.address': ATTACKER, 'portcullis.oauth.endpoint': 'token' })
})

t.test('a client-id flood from many addresses: 429 for that client id, other clients served', async (t) => {
  const gw = await start('  rateLimits: [{ per: address, rate: 100000/min }, { per: client, rate: 40/min }]')
  t.teardown(() => gw.close())
  const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => tokenRequest(gw, `10.0.${i >> 8}.${i & 255}`, WEB_APP, 'wrong-secret')))
  t.equal(flood.filter((a) => a.status === 429).length, 160)
  const refused = flood.find((a) => a.status === 429)
  if (refused !== undefined) check429(t, refused, /for this client/)
  const control = await tokenRequest(gw, CONTROL, OTHER_APP)
  t.match(control, { status: 400, body: { error: 'invalid_grant' } }, 'another client is served')
  // The key is what the request claims (before authentication): every way of naming a client counts.
  const viaPost = await call(`${gw.url}/oauth/token`, CONTROL, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=authorization_code&client_id=${WEB_APP.id}&client_secret=x&code=nope`,
  })
  t.equal(viaPost.status, 429, 'client_id in the body counts for the same client')
  const assertion = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: WEB_APP.id, sub: WEB_APP.id })).toString('base64url')}.c2ln`
  const viaAssertion = await call(`${gw.url}/oauth/token`, CONTROL, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=authorization_code&code=nope&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=${assertion}`,
  })
  t.equal(viaAssertion.status, 429, 'so does a client assertion naming it')
  t.equal(await limitedCount(gw, 'client'), 162)
})

t.test('hostile keys: oversized and odd client ids are bounded keys, never a 500', async (t) => {
  const gw = await start('  rateLimits: [{ per: address, rate: 100000/min }, { per: client, rate: 1/min }]')
  t.teardown(() => gw.close())
  const long = 'c'.repeat(8000)
  const rows: Array<[string, () => Promise<Answer>]> = [
    ['an 8000-character Basic user', () => tokenRequest(gw, CONTROL, { id: long, secret: 'x' })],
    ['the same, with a different tail past the bound', () => tokenRequest(gw, CONTROL, { id: `${long}d`, secret: 'x' })],
    ['a 60 KiB client_id in the body', () => call(`${gw.url}/oauth/token`, CONTROL, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=x&client_id=${'z'.repeat(60_000)}` })],
    ['Basic that is not base64', () => call(`${gw.url}/oauth/token`, CONTROL, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic %%%' }, body: 'grant_type=x' })],
    ['a client assertion that is not a JWT', () => call(`${gw.url}/oauth/token`, CONTROL, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=x&client_assertion=a.b.c' })],
    ['a client_id of %00 bytes at authorize', () => call(`${gw.url}/oauth/authorize?client_id=%00%00%00`, CONTROL)],
  ]
  const statuses = []
  for (const [name, send] of rows) {
    const answer = await send()
    statuses.push(answer.status)
    t.ok(answer.status < 500, `${name}: ${answer.status}`)
  }
  t.equal(statuses[1], 429, 'ids equal up to the bound share one bucket (1/min): the second is refused')
})

t.test('registration: 429 per address on /oauth/register, other addresses still register', async (t) => {
  const gw = await start(`  registration: { dynamic: true }
  rateLimits: [{ per: address, rate: 1000/min }, { per: address, rate: 3/h, endpoints: [register] }]`)
  t.teardown(() => gw.close())
  const answers = []
  for (let i = 0; i < 6; i++) answers.push(await register(gw, ATTACKER))
  t.same(answers.map((a) => a.status), [201, 201, 201, 429, 429, 429])
  check429(t, answers[3]!, /from this address/)
  t.equal((await register(gw, CONTROL)).status, 201, 'another address registers')
  t.equal((await tokenRequest(gw, ATTACKER)).status, 400, 'the register limit counts only /oauth/register')
})

t.test('the browser endpoints: an HTML page with 429 for people, JSON for programs', async (t) => {
  const gw = await start('  rateLimits: [{ per: address, rate: 2/min, endpoints: [authorize, callback] }, { per: client, rate: 3/min, endpoints: [authorize] }]')
  t.teardown(() => gw.close())
  const authorize = `${gw.url}/oauth/authorize?client_id=${WEB_APP.id}&response_type=code`
  await call(authorize, ATTACKER)
  await call(authorize, ATTACKER)
  const page = await call(authorize, ATTACKER, { headers: { accept: 'text/html' } })
  t.equal(page.status, 429)
  t.ok(Number(page.headers.get('retry-after')) >= 1)
  t.match(page.headers.get('content-type'), /text\/html/)
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/)
  t.match(page.body, /<h1>Too many requests<\/h1>/)
  const json = await call(`${gw.url}/oauth/callback?state=x&code=y`, ATTACKER, { headers: { accept: 'application/json' } })
  t.match(json, { status: 429, body: { error: 'temporarily_unavailable' } })
  // per client at authorize: the client_id of the query, from any address (the refused page did not count)
  t.not((await call(authorize, CONTROL)).status, 429, 'the third for this client')
  const fromElsewhere = await call(authorize, CONTROL)
  t.equal(fromElsewhere.status, 429, `the client ${WEB_APP.id} used its 3/min at authorize`)
  t.not((await call(`${gw.url}/oauth/authorize?client_id=${OTHER_APP.id}&response_type=code`, '192.0.2.9')).status, 429, 'another client is not')
})

t.test('a registration flood: the quota holds, registered clients are never evicted', async (t) => {
  // No rate limits here: the quota alone (the defaults would stop this flood at 20 per address).
  // The real gateway process: the flood's client and the gateway do not share an event loop.
  const gw = await startGatewayProcess({
    yaml: config(`  registration: { dynamic: true, maxClients: 100 }
  rateLimits: []`)
  })
  t.teardown(() => gw.stop())
  const control = await register(gw, CONTROL)
  const controlClient = control.body as { client_id: string, client_secret: string }
  t.equal(control.status, 201)
  const started = performance.now()
  const statuses = new Map<number, number>()
  const controlMs: number[] = []
  const controlStatuses = new Set<number>()
  for (let round = 0; round < 100; round++) {
    const controlStarted = performance.now()
    const [answers, controlAnswer] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, (_, i) => register(gw, `10.1.${round}.${i}`))),
      tokenRequest(gw, CONTROL, { id: controlClient.client_id, secret: controlClient.client_secret }).then((a) => { controlMs.push(performance.now() - controlStarted); return a }),
    ])
    controlStatuses.add(controlAnswer.status)
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
  }
  const seconds = (performance.now() - started) / 1000
  controlMs.sort((x, y) => x - y)
  t.comment(`10,000 registrations in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(statuses))}; ` +
    `control token requests during it: ${[...controlStatuses].join(', ')}, median ${controlMs[50]?.toFixed(0)} ms, max ${controlMs.at(-1)?.toFixed(0)} ms`)
  t.same([...controlStatuses], [400], 'the control client was served (invalid_grant) throughout')
  t.equal(statuses.get(201), 99, 'exactly up to the quota (100, the control client included)')
  t.equal(statuses.get(503), 9901, 'then 503')
  const refused = await register(gw, ATTACKER)
  t.match(refused, { status: 503, body: { error: 'temporarily_unavailable', error_description: /as many registered clients/ } })
  const login = await tokenRequest(gw, CONTROL, { id: controlClient.client_id, secret: controlClient.client_secret })
  t.match(login, { status: 400, body: { error: 'invalid_grant' } }, 'the control client still authenticates (invalid_grant for the made-up code, not invalid_client)')
})

t.test('with Redis: replicas share the counts; Redis down → local counts, logged', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const limits = '  rateLimits: [{ per: address, rate: 10/min }]'
  const store = `store: { url: "${redis.url}", keyPrefix: "rl-test:" }`
  const a = await start(limits, store)
  const b = await start(limits, store)
  t.teardown(async () => { await a.close(); await b.close() })
  await t.resolves(async () => { for (let i = 0; i < 50 && !(a.gateway.store.up && b.gateway.store.up); i++) await new Promise((resolve) => setTimeout(resolve, 100)) })
  const statuses = []
  for (let i = 0; i < 12; i++) statuses.push((await tokenRequest(i % 2 === 0 ? a : b, ATTACKER)).status)
  t.same(statuses, [400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 429, 429], 'ten in all, whichever replica')
  t.equal((await tokenRequest(b, CONTROL)).status, 400, 'the control address is served')
  // a client id longer than the bound is cut to it before it becomes a key
  await tokenRequest(a, CONTROL, { id: 'k'.repeat(5000), secret: 'x' })
  const inspect = createClient({ url: redis.url })
  await inspect.connect()
  const keys = await inspect.keys('rl-test:rl:oauth:*')
  await inspect.close()
  t.ok(keys.length >= 2, `the counters are in Redis under the store's prefix: ${keys.length} keys`)
  t.ok(keys.every((k: string) => k.length <= 'rl-test:rl:oauth:0:'.length + 200), 'every key is bounded')
  await redis.kill()
  const local = []
  for (let i = 0; i < 12; i++) local.push((await tokenRequest(a, CONTROL)).status)
  t.same(local.filter((s) => s === 429).length, 2, 'Redis down: the limit still holds, counted in this replica (10 here)')
  t.ok(local.slice(0, 10).every((s) => s !== 429))
  t.ok(a.logs.some((l) => l['event.name'] === 'ratelimit.fallback'), 'the fallback is logged with its count')
})
