// Resource URIs past the resource rules (percent-encoding, dot segments, case, ambiguous bytes) and
// the policy gaps around them — completion/complete refs, resources/templates/list — each row a
// hostile request to the real gateway in front of recording upstreams: the exact HTTP status and
// JSON-RPC answer, and the upstream untouched (or, for the controls, sent exactly what was judged).
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { LEAK, POST_HEADERS, dropClientConnections, send, type HttpResult } from '../helpers/mcp-http.ts'

/** A stateless JSON upstream offering templates and completions; it records each body it gets. */
async function startTemplateUpstream (): Promise<{ url: string, bodies: string[], close: () => Promise<void> }> {
  const bodies: string[] = []
  const answers: Record<string, unknown> = {
    'resources/templates/list': {
      resourceTemplates: [
        { uriTemplate: 'file:///public/docs/{name}', name: 'docs' },
        { uriTemplate: 'file:///public/{path}', name: 'anything-public' }, // can expand into public/private/
        { uriTemplate: 'file:///secret/{name}', name: 'secret' },
        { uriTemplate: 'FILE:///public/docs/{name}', name: 'upper' },
        { uriTemplate: 'file:///public/docs/%7E{name}', name: 'encoded' },
        { uriTemplate: 'file:///public/docs/{name', name: 'broken' },
        { uriTemplate: 42, name: 'not-a-string' },
      ],
      nextCursor: 'c2',
    },
    'resources/list': {
      resources: [
        { uri: 'file:///public/readme.txt', name: 'readme' },
        { uri: 'file:///public/%70rivate/key', name: 'encoded-private' },
        { uri: 'file:///public/private/key', name: 'private' },
        { uri: 'FILE:///public/readme.txt', name: 'upper' },
        { uri: 'file:///public//private/key', name: 'double-slash' },
      ],
    },
    'completion/complete': { completion: { values: ['alpha', 'beta'], hasMore: false } },
  }
  const http = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      bodies.push(body)
      const msg = JSON.parse(body) as { id?: number | string, method: string }
      if (msg.id === undefined) { res.writeHead(202).end(); return }
      const result = answers[msg.method] ?? {}
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }))
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    bodies,
    close: async () => { http.closeAllConnections(); await new Promise<void>((resolve) => http.close(() => resolve())) },
  }
}

const recording = await startRecordingUpstream({ mode: 'stateless', json: true, promptsAndResources: true })
const templates = await startTemplateUpstream()
const RULES = `
    auth: none
    tools: [{ allow: ["*"] }]
    prompts:
      - allow: [greet]
    resources:
      - allow: ["file:///public/*"]
        id: public
      - deny: ["file:///public/private/*"]
        id: private`
const gw = await startGateway(`
publicUrl: https://gw.example.test
servers:
  files:
    upstream: { url: ${recording.url} }${RULES}
  denylist:
    upstream: { url: ${recording.url} }
    auth: none
    tools: [{ allow: ["*"] }]
    resources:
      - allow: ["*"]
      - deny: ["file:///secret/keys.txt"]
        id: no-keys
  templates:
    upstream: { url: ${templates.url} }${RULES}
`)
t.teardown(async () => {
  await dropClientConnections()
  await gw.close()
  await recording.close()
  await templates.close()
})

type Server = 'files' | 'denylist' | 'templates'
const post = (server: Server, body: object | string) => async (): Promise<HttpResult> =>
  await send(gw.mcpUrl(server), { headers: POST_HEADERS, body: typeof body === 'string' ? body : JSON.stringify(body) })
/** a request (id null: a notification) */
const rpc = (method: string, params: object, id: number | null = 1): object => ({ jsonrpc: '2.0', ...(id === null ? {} : { id }), method, params })
const read = (uri: string, server: Server = 'files'): ReturnType<typeof post> => post(server, rpc('resources/read', { uri }))
/** resources/read with raw JSON text for the uri (escapes a JS string can't show) */
const readRaw = (uriJson: string): ReturnType<typeof post> => post('files', `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":${uriJson}}}`)
const complete = (ref: object): ReturnType<typeof post> => post('templates', rpc('completion/complete', { ref, argument: { name: 'name', value: '' } }))

const notFound = (uri: string): object[] => [{ jsonrpc: '2.0', id: 1, error: { code: -32002, message: 'Resource not found', data: { uri } } }]
const unknownPrompt = (name: string): object[] => [{ jsonrpc: '2.0', id: 1, error: { code: -32602, message: `Unknown prompt: ${name}` } }]

interface Row {
  readonly name: string
  readonly send: () => Promise<HttpResult>
  readonly status: number
  readonly same?: unknown
  readonly match?: unknown
  /** the upstream is sent this body (params compared); default: nothing reaches any upstream */
  readonly forwarded?: object
}

const rows: Row[] = [
  // --- percent-encoding (RFC 3986 §6.2.2.2): judged only in normal form, never forwarded otherwise
  { name: '%70 (an encoded unreserved "p") into a denied folder', send: read('file:///public/%70rivate/key'), status: 200, same: notFound('file:///public/%70rivate/key') },
  { name: '%2f: an encoded "/" past the deny', send: read('file:///public/private%2fkey'), status: 200, same: notFound('file:///public/private%2fkey') },
  { name: '%2F', send: read('file:///public/private%2Fkey'), status: 200, same: notFound('file:///public/private%2Fkey') },
  { name: '%5c: an encoded "\\"', send: read('file:///public/private%5ckey'), status: 200, same: notFound('file:///public/private%5ckey') },
  { name: 'a raw "\\"', send: read('file:///public/private\\key'), status: 200, same: notFound('file:///public/private\\key') },
  { name: '..%2f out of the allowed prefix', send: read('file:///public/..%2fsecret/keys.txt'), status: 200, same: notFound('file:///public/..%2fsecret/keys.txt') },
  { name: '%2e%2e/ out of the allowed prefix', send: read('file:///public/%2e%2e/secret/keys.txt'), status: 200, same: notFound('file:///public/%2e%2e/secret/keys.txt') },
  { name: 'double encoding %252f', send: read('file:///public/private%252fkey'), status: 200, same: notFound('file:///public/private%252fkey') },
  { name: 'overlong UTF-8 %C0%AF', send: read('file:///public/private%C0%AFkey'), status: 200, same: notFound('file:///public/private%C0%AFkey') },
  { name: 'Latin-1 %E9 (not UTF-8)', send: read('file:///public/caf%E9'), status: 200, same: notFound('file:///public/caf%E9') },
  { name: 'lowercase hex %c3%a9 (normal form is %C3%A9)', send: read('file:///public/caf%c3%a9'), status: 200, same: notFound('file:///public/caf%c3%a9') },
  { name: 'invalid percent-encoding %zz', send: read('file:///public/%zz'), status: 200, same: notFound('file:///public/%zz') },
  { name: 'truncated percent-encoding %4', send: read('file:///public/readme.txt%4'), status: 200, same: notFound('file:///public/readme.txt%4') },
  // --- control characters and non-URI characters
  { name: '%00', send: read('file:///public/readme.txt%00'), status: 200, same: notFound('file:///public/readme.txt%00') },
  { name: 'a raw NUL (\\u0000)', send: readRaw('"file:///public/readme.txt\\u0000"'), status: 200, same: notFound('file:///public/readme.txt\u0000') },
  { name: '%0a', send: read('file:///public/readme.txt%0a'), status: 200, same: notFound('file:///public/readme.txt%0a') },
  { name: 'a raw tab', send: read('file:///public/read\tme.txt'), status: 200, same: notFound('file:///public/read\tme.txt') },
  { name: 'raw unicode (an IRI, not a URI)', send: read('file:///public/caf\u00e9'), status: 200, same: notFound('file:///public/caf\u00e9') },
  { name: 'fullwidth solidus', send: read('file:///public/private\uff0fkey'), status: 200, same: notFound('file:///public/private\uff0fkey') },
  { name: 'a space', send: read('file:///public/read me.txt'), status: 200, same: notFound('file:///public/read me.txt') },
  // --- dot segments and empty segments (RFC 3986 §5.2.4)
  { name: '/./', send: read('file:///public/./private/key'), status: 200, same: notFound('file:///public/./private/key') },
  { name: '/../ out of the allowed prefix', send: read('file:///public/../secret/keys.txt'), status: 200, same: notFound('file:///public/../secret/keys.txt') },
  { name: '/x/../ back into the denied folder', send: read('file:///public/x/../private/key'), status: 200, same: notFound('file:///public/x/../private/key') },
  { name: '// (an empty segment)', send: read('file:///public//private/key'), status: 200, same: notFound('file:///public//private/key') },
  { name: 'trailing /.', send: read('file:///public/private/.'), status: 200, same: notFound('file:///public/private/.') },
  { name: 'trailing /..', send: read('file:///public/private/key/..'), status: 200, same: notFound('file:///public/private/key/..') },
  // --- case and authority (§6.2.2.1)
  { name: 'scheme in capitals', send: read('FILE:///public/readme.txt'), status: 200, same: notFound('FILE:///public/readme.txt') },
  { name: 'scheme in mixed case', send: read('File:///public/readme.txt'), status: 200, same: notFound('File:///public/readme.txt') },
  { name: 'host "localhost"', send: read('file://localhost/public/private/key'), status: 200, same: notFound('file://localhost/public/private/key') },
  { name: 'host in capitals', send: read('file://LOCALHOST/public/readme.txt'), status: 200, same: notFound('file://LOCALHOST/public/readme.txt') },
  // --- query and fragment
  { name: 'a fragment', send: read('file:///public/readme.txt#x'), status: 200, same: notFound('file:///public/readme.txt#x') },
  { name: 'a fragment hiding a dot segment', send: read('file:///public/readme.txt#/../../secret/keys.txt'), status: 200, same: notFound('file:///public/readme.txt#/../../secret/keys.txt') },
  { name: 'denylist: an empty query after a denied URI', send: read('file:///secret/keys.txt?', 'denylist'), status: 200, same: notFound('file:///secret/keys.txt?') },
  { name: 'denylist: a query after a denied URI', send: read('file:///secret/keys.txt?v=2', 'denylist'), status: 200, same: notFound('file:///secret/keys.txt?v=2') },
  { name: 'denylist: an empty fragment after a denied URI', send: read('file:///secret/keys.txt#', 'denylist'), status: 200, same: notFound('file:///secret/keys.txt#') },
  { name: 'denylist: the denied URI itself', send: read('file:///secret/keys.txt', 'denylist'), status: 200, same: notFound('file:///secret/keys.txt') },
  // --- every method that carries a URI the policy judges
  { name: 'resources/subscribe %70rivate', send: post('files', rpc('resources/subscribe', { uri: 'file:///public/%70rivate/key' })), status: 200, same: notFound('file:///public/%70rivate/key') },
  { name: 'resources/unsubscribe of a denied URI', send: post('files', rpc('resources/unsubscribe', { uri: 'file:///public/private/key' })), status: 200, same: notFound('file:///public/private/key') },
  { name: 'resources/subscribe notification with ..%2f', send: post('files', rpc('resources/subscribe', { uri: 'file:///public/..%2fsecret' }, null)), status: 202 },
  // --- controls: a URI in normal form is forwarded exactly as judged
  { name: 'control: the allowed URI', send: read('file:///public/readme.txt'), status: 200, match: [{ id: 1, result: { contents: [{ uri: 'file:///public/readme.txt', text: 'public' }] } }], forwarded: { method: 'resources/read', params: { uri: 'file:///public/readme.txt' } } },
  { name: 'control: denylist, an allowed URI with a query (the upstream\'s own answer)', send: read('file:///public/readme.txt?v=2', 'denylist'), status: 200, match: [{ id: 1 }], forwarded: { method: 'resources/read', params: { uri: 'file:///public/readme.txt?v=2' } } },

  // --- completion/complete: judged by what its ref names
  { name: 'completion of an allowed prompt', send: complete({ type: 'ref/prompt', name: 'greet' }), status: 200, match: [{ id: 1, result: { completion: { values: ['alpha', 'beta'] } } }], forwarded: { method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'greet' } } } },
  { name: 'completion of a hidden prompt', send: complete({ type: 'ref/prompt', name: 'internal-prompt' }), status: 200, same: unknownPrompt('internal-prompt') },
  { name: 'completion of a prompt case variant', send: complete({ type: 'ref/prompt', name: 'Greet' }), status: 200, same: unknownPrompt('Greet') },
  { name: 'completion of an allowed template', send: complete({ type: 'ref/resource', uri: 'file:///public/docs/{name}' }), status: 200, match: [{ id: 1, result: { completion: {} } }], forwarded: { method: 'completion/complete', params: { ref: { type: 'ref/resource', uri: 'file:///public/docs/{name}' } } } },
  { name: 'completion of a template overlapping the denied folder', send: complete({ type: 'ref/resource', uri: 'file:///public/{path}' }), status: 200, same: notFound('file:///public/{path}') },
  { name: 'completion of a template outside the allowed prefix', send: complete({ type: 'ref/resource', uri: 'file:///secret/{name}' }), status: 200, same: notFound('file:///secret/{name}') },
  { name: 'completion of a template in capitals', send: complete({ type: 'ref/resource', uri: 'FILE:///public/docs/{name}' }), status: 200, same: notFound('FILE:///public/docs/{name}') },
  { name: 'completion of a template with ..', send: complete({ type: 'ref/resource', uri: 'file:///public/docs/../private/{name}' }), status: 200, same: notFound('file:///public/docs/../private/{name}') },
  { name: 'completion of a denied plain URI', send: complete({ type: 'ref/resource', uri: 'file:///public/private/key' }), status: 200, same: notFound('file:///public/private/key') },
  { name: 'completion without a ref', send: post('templates', rpc('completion/complete', { argument: { name: 'a', value: '' } })), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
  { name: 'completion with a ref of an unknown type', send: complete({ type: 'ref/tool', name: 'echo' }), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
  { name: 'completion ref/prompt carrying a uri instead of a name', send: complete({ type: 'ref/prompt', uri: 'greet' }), status: 400, match: [{ id: 1, error: { code: -32602 } }] },
]

for (const row of rows) {
  t.test(row.name, async (t) => {
    const before = [recording.requests.length, templates.bodies.length, recording.reads.length]
    const result = await row.send()
    t.equal(result.status, row.status, `HTTP ${row.status}`)
    if (row.same !== undefined) t.same(result.messages, row.same, 'the exact answer')
    if (row.match !== undefined) t.match(result.messages, row.match, 'the answer')
    if (row.status === 202) t.equal(result.text, '', 'no body')
    t.notMatch(result.text.replace(/"uri":"[^"]*"/g, '"uri":""').replace(/file:\/\/\/[^\s"]*/g, ''), LEAK, 'no stack trace or internal path')
    const bodies = [...recording.requests.slice(before[0]).map((r) => r.body), ...templates.bodies.slice(before[1]!)].filter((b) => b !== '')
    if (row.forwarded === undefined) {
      t.same(bodies, [], 'nothing reached an upstream')
      t.same(recording.reads.slice(before[2]), [], 'nothing was read')
    } else {
      t.match(bodies.map((b) => JSON.parse(b) as unknown), [row.forwarded], 'forwarded exactly as judged')
    }
  })
}

t.test('resources/templates/list is filtered by the resource rules', async (t) => {
  const result = await post('templates', rpc('resources/templates/list', {}))()
  t.equal(result.status, 200)
  t.same(result.messages, [{ jsonrpc: '2.0', id: 1, result: { resourceTemplates: [{ uriTemplate: 'file:///public/docs/{name}', name: 'docs' }], nextCursor: 'c2' } }],
    'only the template an allow rule covers whole; the cursor kept')
})

t.test('resources/list hides what a read would refuse: denied, or not in normal form', async (t) => {
  const result = await post('templates', rpc('resources/list', {}))()
  t.equal(result.status, 200)
  t.same(result.messages, [{ jsonrpc: '2.0', id: 1, result: { resources: [{ uri: 'file:///public/readme.txt', name: 'readme' }] } }])
})

t.test('the audit line names the completion ref and its decision', async (t) => {
  await complete({ type: 'ref/prompt', name: 'internal-prompt' })()
  const prompt = gw.logs.filter((l) => l['mcp.method.name'] === 'completion/complete').at(-1)
  t.match(prompt, { 'gen_ai.prompt.name': 'internal-prompt', 'portcullis.policy.decision': 'deny', 'portcullis.policy.reason': 'no_matching_rule', outcome: 'denied' })
  await complete({ type: 'ref/resource', uri: 'file:///public/{path}' })()
  const resource = gw.logs.filter((l) => l['mcp.method.name'] === 'completion/complete').at(-1)
  t.match(resource, { 'mcp.resource.uri': 'file:///public/{path}', 'portcullis.policy.rule_id': 'private', 'portcullis.policy.reason': 'denied_by_rule' })
  const read = gw.logs.filter((l) => l['mcp.method.name'] === 'resources/read' && l['mcp.resource.uri'] === 'file:///public/%70rivate/key').at(-1)
  t.match(read, { 'portcullis.policy.decision': 'deny', 'portcullis.policy.reason': 'non_canonical_uri' })
})
