// servers.*.rateLimits (design §4, §5; issue 17 item 3) against the real gateway with alice's and
// bob's real access tokens, in front of recording upstreams (real SDK servers): per subject, per
// client, per server, tool globs, batches, a shadow-mode server and a 1-second window. Every
// refusal is 429 + Retry-After with -31029 and the request's id; the upstream never sees it;
// portcullis_rate_limited_total{server,limit} and the request's audit line record it.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { CLIENT, JWT_BEARER, startEmaStack } from '../helpers/ema.ts'
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts'
import { USERS, type User } from '../helpers/policy-users.ts'
import { POST_HEADERS, dropClientConnections, send, type HttpResult } from '../helpers/mcp-http.ts'

const SERVERS = {
  subject: '[{ per: subject, rate: 3/min }]',
  client: '[{ per: client, rate: 2/min }]',
  server: '[{ per: server, rate: 4/min }]',
  globs: '[{ per: subject, rate: 2/min, tools: ["create_*", "delete_issue"] }]',
  batch: '[{ per: subject, rate: 3/min }]',
  shadow: '[{ per: subject, rate: 1/min }]',
  second: '[{ per: subject, rate: 2/s }]',
} as const
type Server = keyof typeof SERVERS

const upstreams = {} as Record<Server, RecordingUpstream>
for (const name of Object.keys(SERVERS) as Server[]) {
  upstreams[name] = await startRecordingUpstream({ mode: 'stateless', json: true, extraTools: ['create_issue', 'create_pr', 'delete_issue'] })
}
const stack = await startEmaStack(Object.entries(SERVERS).map(([name, limits]) => `
  ${name}:
    upstream: { url: ${upstreams[name as Server].url} }
    scopes: [tools.read, tools.write]
    tools: [{ allow: ["*"] }, { deny: [secret] }]
    mode: ${name === 'shadow' ? 'shadow' : 'enforce'}
    rateLimits: ${limits}`).join(''))
t.teardown(async () => {
  await dropClientConnections()
  await stack.close()
  for (const u of Object.values(upstreams)) await u.close()
})

/** a token for `user` at `server`, issued to `client` (mcp-client by Basic, post-client in the body) */
async function token (user: User, server: Server, client: 'mcp-client' | 'post-client' = 'mcp-client'): Promise<string> {
  const u = USERS[user]
  const assertion = await stack.mintIdJag({
    sub: u.sub, email: u.email, groups: [...u.groups], scope: u.scope, client_id: client, resource: `${stack.issuer}/mcp/${server}`,
  })
  const { status, body } = await stack.redeem({ grant_type: JWT_BEARER, assertion }, client === CLIENT.id ? 'basic' : 'post')
  if (status !== 200 || typeof body.access_token !== 'string') throw new Error(`redeem ${user}@${server} as ${client}: ${status} ${JSON.stringify(body)}`)
  return body.access_token
}

let nextId = 1
const call = (name: string, id: number = nextId++): Record<string, unknown> =>
  ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: name === 'echo' ? { message: 'hi' } : {} } })

async function post (server: Server, bearer: string, body: unknown): Promise<HttpResult> {
  return await send(stack.gw.mcpUrl(server), { headers: { ...POST_HEADERS, authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) })
}

/** the tools/call requests (each element of a batch) the upstream received, by tool name */
function upstreamCalls (server: Server): string[] {
  return upstreams[server].requests.flatMap((r) => {
    if (r.method !== 'POST') return []
    const parsed = JSON.parse(r.body) as unknown
    return (Array.isArray(parsed) ? parsed : [parsed]).filter((m) => m.method === 'tools/call').map((m) => m.params.name as string)
  })
}

async function limitedCount (server: Server, limit: string): Promise<number> {
  const { values } = await stack.gw.gateway.metrics.rateLimited.get()
  return values.find((v) => v.labels.server === server && v.labels.limit === limit)?.value ?? 0
}

function auditOf (id: number): Record<string, unknown> | undefined {
  return stack.gw.logs.find((l) => l['log.type'] === 'audit' && l['jsonrpc.request.id'] === String(id))
}

/** a 429 refusal of the single request `id`, with Retry-After within (0, windowSeconds] */
function check429 (t: Test, res: HttpResult, id: number, windowSeconds: number): void {
  t.equal(res.status, 429, `request ${id}: 429`)
  const retry = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retry) && retry >= 1 && retry <= windowSeconds, `Retry-After ${retry} s within the ${windowSeconds} s window`)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.messages, [{ jsonrpc: '2.0', id, error: { code: -31029, message: /^Too Many Requests.*per / } }])
}

t.test('per subject: alice reaches her limit, bob is unaffected; metric and audit line', async (t) => {
  const alice = await token('alice', 'subject')
  const bob = await token('bob', 'subject')
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await post('subject', alice, call('echo'))).status)
  t.same(statuses, [200, 200, 200])
  const refusedId = nextId++
  const refused = await post('subject', alice, call('echo', refusedId))
  check429(t, refused, refusedId, 60)
  t.ok(Number(refused.headers['retry-after']) >= 58, 'a 1-minute window begun seconds ago: close to 60 s left')
  t.equal((await post('subject', alice, call('add'))).status, 429, 'any request of hers, whatever the tool')
  t.same((await Promise.all([0, 1, 2].map(async () => (await post('subject', bob, call('echo'))).status))), [200, 200, 200], 'bob has his own 3')
  t.same(upstreamCalls('subject'), ['echo', 'echo', 'echo', 'echo', 'echo', 'echo'], 'the upstream saw 3 of alice, 3 of bob, none of the refused')
  t.equal(await limitedCount('subject', 'rate_subject'), 2, 'portcullis_rate_limited_total{server="subject",limit="rate_subject"}')
  t.match(auditOf(refusedId), {
    'event.name': 'mcp.tool_call',
    'gen_ai.tool.name': 'echo',
    'portcullis.server': 'subject',
    'enduser.pseudo.id': /./,
    outcome: 'invalid_request',
    'error.type': 'PORTCULLIS_ERR_RATE_LIMITED',
    'http.response.status_code': 429,
  }, 'the refused request has its audit line')
  const warned = stack.gw.logs.filter((l) => l['event.name'] === 'mcp.rate_limited' && l['portcullis.server'] === 'subject')
  t.equal(warned.length, 1, 'one warning per key and window, not one per refusal')
})

t.test('per client: one client id shares a limit across users, another client has its own', async (t) => {
  const aliceApp = await token('alice', 'client')
  const bobApp = await token('bob', 'client')
  const alicePost = await token('alice', 'client', 'post-client')
  t.equal((await post('client', aliceApp, call('echo'))).status, 200)
  t.equal((await post('client', bobApp, call('echo'))).status, 200)
  const id = nextId++
  check429(t, await post('client', bobApp, call('echo', id)), id, 60)
  t.equal((await post('client', alicePost, call('echo'))).status, 200, 'the same user through post-client is not limited')
  t.equal(upstreamCalls('client').length, 3)
  t.equal(await limitedCount('client', 'rate_client'), 1)
})

t.test('per server: everyone together; GET and DELETE are not counted', async (t) => {
  const alice = await token('alice', 'server')
  const bob = await token('bob', 'server')
  const answers = await Promise.all([alice, bob, alice, bob, alice, bob].map(async (bearer) => (await post('server', bearer, call('echo'))).status))
  t.same(answers.filter((s) => s === 200).length, 4, `4 of 6 concurrent calls served: ${answers.join(' ')}`)
  t.same(answers.filter((s) => s === 429).length, 2)
  // a GET opens a stream: its status is all we need
  const get = await request(stack.gw.mcpUrl('server'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${alice}` } })
  get.body.destroy()
  t.equal(get.statusCode, 200, 'GET opens its stream: not counted')
  const del = await send(stack.gw.mcpUrl('server'), { method: 'DELETE', headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': 'x' } })
  t.not(del.status, 429, `DELETE is not rate-limited (${del.status})`)
  t.equal(upstreamCalls('server').length, 4)
  t.equal(await limitedCount('server', 'rate_server'), 2)
})

t.test('tool globs: create_* and delete_issue are limited, other tools and lists are not', async (t) => {
  const alice = await token('alice', 'globs')
  t.equal((await post('globs', alice, call('create_issue'))).status, 200)
  t.equal((await post('globs', alice, call('create_pr'))).status, 200)
  const id = nextId++
  check429(t, await post('globs', alice, call('delete_issue', id)), id, 60)
  t.equal((await post('globs', alice, call('create_issue'))).status, 429)
  for (let i = 0; i < 5; i++) t.equal((await post('globs', alice, call('echo'))).status, 200, `echo ${i + 1}`)
  t.equal((await post('globs', alice, { jsonrpc: '2.0', id: nextId++, method: 'tools/list' })).status, 200, 'tools/list')
  t.equal((await post('globs', await token('bob', 'globs'), call('create_issue'))).status, 200, 'bob creates')
  t.same(upstreamCalls('globs'), ['create_issue', 'create_pr', 'echo', 'echo', 'echo', 'echo', 'echo', 'create_issue'])
  t.equal(await limitedCount('globs', 'rate_subject'), 2)
})

t.test('batches: every request counts; over the limit the batch is refused whole', async (t) => {
  const alice = await token('alice', 'batch')
  const first = await post('batch', alice, [call('echo'), call('add'), { jsonrpc: '2.0', method: 'notifications/initialized' }])
  t.equal(first.status, 200, 'two requests and a notification: 2 of 3 used')
  const [a, b] = [nextId++, nextId++]
  const second = await post('batch', alice, [call('echo', a), call('echo', b)])
  t.equal(second.status, 429)
  t.ok(Number(second.headers['retry-after']) >= 1)
  t.match(second.messages, [
    { id: a, error: { code: -32600, message: /another request in this batch was refused/ } },
    { id: b, error: { code: -31029 } },
  ], 'the request over the limit gets -31029; the other was not processed')
  t.match(auditOf(a), { outcome: 'invalid_request', 'error.type': 'batch_refused', 'http.response.status_code': 429 })
  t.match(auditOf(b), { outcome: 'invalid_request', 'error.type': 'PORTCULLIS_ERR_RATE_LIMITED' })
  t.same(upstreamCalls('batch'), ['echo', 'add'], 'nothing of the refused batch reached the upstream')
  t.equal(await limitedCount('batch', 'rate_subject'), 1)
})

t.test('shadow mode: the policy only logs, the rate limits still hold', async (t) => {
  const alice = await token('alice', 'shadow')
  t.equal((await post('shadow', alice, call('secret'))).status, 200, 'a denied tool goes through in shadow mode, and counts')
  const id = nextId++
  check429(t, await post('shadow', alice, call('echo', id)), id, 60)
  t.same(upstreamCalls('shadow'), ['secret'])
})

t.test('a denied call is answered before the limits: it uses none of the share', async (t) => {
  const alice = await token('alice', 'subject')
  const bob = await token('bob', 'subject')
  // alice is over her limit on `subject` already: a call the policy denies is still the policy's answer
  const denied = await post('subject', alice, call('secret'))
  t.equal(denied.status, 200)
  t.match(denied.messages, [{ error: { code: -32602, message: 'Unknown tool: secret' } }])
  // bob used 3 of 3: a denied call neither counts nor gets 429
  t.equal((await post('subject', bob, call('secret'))).status, 200)
})

t.test('a 1-second window: Retry-After 1, then served again', async (t) => {
  const alice = await token('alice', 'second')
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push(await post('second', alice, call('echo')))
  t.same(statuses.map((s) => s.status), [200, 200, 429])
  t.equal(statuses[2]?.headers['retry-after'], '1')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await post('second', alice, call('echo'))).status, 200, 'the next window')
})

t.test('a reload keeps the counts of unchanged rules; a changed rule starts afresh', async (t) => {
  const gateway = stack.gw.gateway
  const alice = await token('alice', 'subject')
  const config = gateway.holder.current.config
  const subject = config.servers.subject!
  const copy = { ...subject, rateLimits: subject.rateLimits.map((r) => ({ ...r })) }
  t.equal((await gateway.reload({ ...config, servers: { ...config.servers, subject: copy } })).applied, true)
  t.equal((await post('subject', alice, call('echo'))).status, 429, 'the same rules, new objects: alice is still over')
  const wider = { ...subject, rateLimits: [{ ...subject.rateLimits[0]!, rate: '5/min', points: 5 }] }
  t.equal((await gateway.reload({ ...config, servers: { ...config.servers, subject: wider } })).applied, true)
  t.equal((await post('subject', alice, call('echo'))).status, 200, '5/min: a new count')
})
