import t from 'tap'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { ConfigError, configWarnings, loadConfig, parseConfig } from '../../src/config/load.ts'
import { runCheck } from '../../src/cli/check.ts'

const SECRETS = { CLAUDE_CLIENT_SECRET: 's3cr3t-claude', OKTA_PORTCULLIS_SECRET: 's3cr3t-okta', GITHUB_MCP_TOKEN: 'ghp_s3cr3t' }

// design.md §4, verbatim apart from the comments
const FULL = `
publicUrl: https://mcp.example.com
listen: { host: 0.0.0.0, port: 8080, allowedOrigins: [] }
limits: { maxBodyBytes: 4194304 }
admin:  { host: 0.0.0.0, port: 9464 }
authorization:
  issuer: https://mcp.example.com
  signingKeys: /etc/portcullis/keys.json
  accessTokenTtlSeconds: 900
  assertion: { maxLifetimeSeconds: 600, clockSkewSeconds: 30 }
  clients:
    - clientId: claude
      auth: client_secret_basic
      secret: \${CLAUDE_CLIENT_SECRET}
  identityProviders:
    - issuer: https://acme.okta.com
      jwksUri: https://acme.okta.com/oauth2/v1/keys
      algorithms: [RS256, ES256]
      allowedClients: [claude]
      claims: { groups: groups, email: email }
      login:
        clientId: portcullis
        clientSecret: \${OKTA_PORTCULLIS_SECRET}
  registration: { dynamic: false, clientIdMetadataDocuments: false, allowedRedirectHosts: [localhost, 127.0.0.1] }
store: { url: redis://127.0.0.1:6379 }
servers:
  github:
    upstream:
      url: http://github-mcp.internal:3000/mcp
      headers:
        Authorization: Bearer \${GITHUB_MCP_TOKEN}
        X-Forwarded-User: "{{email}}"
    scopes: [github.read, github.write]
    tools:
      - allow: ["search_*", get_issue]
        scopes: [github.read]
      - allow: [create_issue]
        scopes: [github.write]
        claims: { groups: [eng, sre] }
      - deny: ["delete_*"]
        id: no-deletes
    mode: enforce
    auth: required
`

function problemsOf (text: string, env: Record<string, string> = {}): { path: string; message: string }[] {
  try {
    parseConfig(text, { source: '<test>', env })
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems]
    throw error
  }
  return []
}

t.test('the design.md example loads with its values, defaults and derived fields', async (t) => {
  const config = parseConfig(FULL, { source: '<full>', env: SECRETS })
  t.equal(config.source, '<full>')
  t.same(config.listen, { host: '0.0.0.0', port: 8080, allowedOrigins: [], drainTimeoutMs: 10000, advertiseUrl: undefined, trustProxy: [] })
  t.equal(config.authorization.clients[0]?.secret, 's3cr3t-claude')
  t.equal(config.authorization.identityProviders[0]?.login?.clientSecret, 's3cr3t-okta')
  t.same(config.store, { url: 'redis://127.0.0.1:6379', keyPrefix: 'portcullis:' })
  const github = config.servers['github']
  t.equal(github?.resource, 'https://mcp.example.com/mcp/github')
  t.same(github?.upstream, {
    transport: 'streamable-http',
    url: 'http://github-mcp.internal:3000/mcp',
    headers: { Authorization: 'Bearer ghp_s3cr3t', 'X-Forwarded-User': '{{email}}' },
    connectTimeoutMs: 5000,
    headersTimeoutMs: 30000,
    bodyTimeoutMs: 0,
    maxConnections: 1024,
    tlsVerify: true,
  })
  t.same(github?.tools?.map((rule) => [rule.id, rule.effect, rule.names]), [
    ['tools[0]', 'allow', ['search_*', 'get_issue']],
    ['tools[1]', 'allow', ['create_issue']],
    ['no-deletes', 'deny', ['delete_*']],
  ])
  t.same(github?.tools?.[1]?.claims, { groups: ['eng', 'sre'] })
  t.equal(github?.prompts, undefined)
  for (const value of [config, config.listen, config.authorization.clients, config.authorization.clients[0], config.servers, github, github?.upstream, github?.upstream.headers, github?.tools?.[0]?.names]) {
    t.ok(Object.isFrozen(value))
  }
  t.equal(Object.getPrototypeOf(config.servers), null, 'a request for server "constructor" finds nothing')
  t.throws(() => {
    ;(config.listen as { port: number }).port = 1
  }, TypeError)
  t.same(configWarnings(config), [
    'admin.host is 0.0.0.0 and admin.token is not set: anyone who reaches port 9464 reads the metrics and the console',
  ], 'the design example: an admin listener open to all, without a token, is warned about')
})

t.test('defaults fill a minimal file', async (t) => {
  const config = parseConfig(
    `publicUrl: https://gw.example.com/
servers:
  http: { upstream: { url: "https://up.example.com/mcp" } }
  old: { upstream: { transport: sse, url: "http://127.0.0.1:9/sse" }, tools: [{ allow: "*" }] }
  local: { upstream: { command: node }, auth: none, tools: [{ allow: echo }] }
`,
    { source: '<min>', env: {} }
  )
  t.equal(config.publicUrl, 'https://gw.example.com', 'trailing slash removed')
  t.same(config.limits, { maxBodyBytes: 4194304, maxStreamsPerPrincipal: 64, upstreamWaitMs: 5000, headersTimeoutMs: 10000, requestTimeoutMs: 30000, streamStallMs: 30000, maxStreamBufferBytes: 1048576 })
  t.same(config.admin, { host: '127.0.0.1', port: 9464, token: undefined, metricsRequireToken: false }, 'the admin listener is loopback unless said otherwise')
  const auth = config.authorization
  t.equal(auth.issuer, 'https://gw.example.com')
  t.same([auth.accessTokenTtlSeconds, auth.assertion, auth.clients, auth.identityProviders, auth.signingKeys], [900, { maxLifetimeSeconds: 600, clockSkewSeconds: 30 }, [], [], undefined])
  t.same(auth.registration, { dynamic: false, clientIdMetadataDocuments: false, allowedRedirectHosts: ['localhost', '127.0.0.1'], maxClients: 10000, unusedClientTtlSeconds: 2592000 })
  t.same(auth.consent, { rememberSeconds: 2592000 })
  t.same(auth.rateLimits, [
    { rate: '120/min', points: 120, durationSeconds: 60, per: 'address', endpoints: undefined },
    { rate: '600/min', points: 600, durationSeconds: 60, per: 'client', endpoints: undefined },
    { rate: '20/h', points: 20, durationSeconds: 3600, per: 'address', endpoints: ['register'] },
  ])
  const { http, old, local } = config.servers
  t.same(http?.rateLimits, [])
  t.same(http?.circuitBreaker, { consecutiveFailures: 5, halfOpenAfterMs: 10000 })
  t.same([http?.scopes, http?.mode, http?.auth, http?.tools], [[], 'enforce', 'required', undefined])
  t.same(old?.upstream, { transport: 'sse', url: 'http://127.0.0.1:9/sse', headers: {}, connectTimeoutMs: 5000, headersTimeoutMs: 30000, tlsVerify: true })
  t.same(local?.upstream, { transport: 'stdio', command: 'node', args: [], env: {}, cwd: undefined, headers: {}, maxSessions: 32, maxSessionsPerPrincipal: 8, idleTimeoutMs: 600000, requestTimeoutMs: 120000 })
  t.same(local?.tools?.[0], { id: 'tools[0]', effect: 'allow', names: ['echo'], scopes: [], claims: {} }, 'a single string is a list of one')
  t.same(configWarnings(config), [
    'authorization.signingKeys is not set: an ephemeral signing key is used, and tokens do not survive a restart',
    'servers.http.tools is absent: no tool is allowed',
    'servers.local.auth is none: requests are not authenticated',
  ])
})

t.test('${ENV} substitution', async (t) => {
  const text = (value: string): string => `publicUrl: https://gw.example.com
servers:
  s:
    upstream: { url: "http://127.0.0.1:1/mcp", headers: { X-Test: "${value}" } }
    tools: [{ allow: "*" }]
`
  const header = (value: string, env: Record<string, string> = {}): string | undefined =>
    parseConfig(text(value), { source: '<env>', env }).servers['s']?.upstream.headers['X-Test']
  t.equal(header('a ${A}-${B_2} b', { A: '1', B_2: '2' }), 'a 1-2 b')
  t.equal(header('$${NOT_A_VAR} and $$ and $'), '${NOT_A_VAR} and $$ and $', '$${ is a literal ${')
  t.equal(header('{{email}} {{groups}}'), '{{email}} {{groups}}', '{{claim}} templates are left for per-request expansion')
  t.equal(header('${EMPTY}x', { EMPTY: '' }), 'x', 'a variable set to the empty string is set')
  t.same(problemsOf(text('Bearer ${TOKEN}'), { OTHER: 'value-of-other' }), [
    { path: 'servers.s.upstream.headers.X-Test', message: 'environment variable TOKEN is not set' },
  ])
  t.match(problemsOf(text('${lower-case}'))[0], { path: 'servers.s.upstream.headers.X-Test', message: /not a \$\{NAME\} reference/ })
  t.match(problemsOf(text('${A'))[0], { message: /write \$\$\{ for a literal/ })
  const leaked = problemsOf(text('Bearer ${TOKEN}'), { TOKEN: 'tok\r\nX-Evil: 1' })
  t.same(leaked.map((p) => p.path), ['servers.s.upstream.headers.X-Test'])
  t.notMatch(JSON.stringify(leaked), /tok|Evil/, 'the value never appears in a message')
})

// Each row: what to change in a valid document, the exact problem path, and a fragment of its message.
type Change = Record<string, unknown>
const BAD: [title: string, change: Change, path: string, message: string | RegExp][] = [
  ['unknown top-level key', { foo: 1 }, 'foo', 'unknown key (expected one of: publicUrl, listen'],
  ['unknown nested key', { 'listen.hots': 'x' }, 'listen.hots', 'unknown key'],
  ['port as a string', { 'listen.port': '8080' }, 'listen.port', 'must be an integer'],
  ['boolean as a string', { 'authorization.registration.dynamic': 'yes' }, 'authorization.registration.dynamic', 'must be true or false'],
  ['the removed legacySse flag', { 'listen.legacySse': true }, 'listen.legacySse', 'unknown key'],
  ['rules not a list', { 'servers.s.tools': { allow: 'x' } }, 'servers.s.tools', 'must be a list'],
  ['publicUrl missing', { publicUrl: undefined }, 'publicUrl', 'is required'],
  ['publicUrl relative', { publicUrl: '/gateway' }, 'publicUrl', 'must be an absolute http(s) URL'],
  ['publicUrl with a query', { publicUrl: 'https://gw.example.com/?a=1' }, 'publicUrl', 'must not have a query'],
  ['publicUrl with a fragment', { publicUrl: 'https://gw.example.com/#x' }, 'publicUrl', 'must not have a fragment'],
  ['publicUrl ftp:', { publicUrl: 'ftp://gw.example.com' }, 'publicUrl', 'must be an http or https URL'],
  ['publicUrl not canonical', { publicUrl: 'https://GW.example.com:443' }, 'publicUrl', 'canonical form'],
  ['negative port', { 'listen.port': -1 }, 'listen.port', 'must be ≥ 0'],
  ['port above 65535', { 'admin.port': 70000 }, 'admin.port', 'must be ≤ 65535'],
  ['admin on the gateway port', { 'admin.port': 8080 }, 'admin.port', 'must differ from listen.port'],
  ['origin with a path', { 'listen.allowedOrigins': ['https://app.example.com/'] }, 'listen.allowedOrigins[0]', 'must be an origin'],
  ['clock skew above 60 s', { 'authorization.assertion.clockSkewSeconds': 61 }, 'authorization.assertion.clockSkewSeconds', 'must be ≤ 60'],
  ['issuer with a query', { 'authorization.issuer': 'https://gw.example.com?x' }, 'authorization.issuer', 'must not have a query'],
  ['http jwksUri off loopback', { 'authorization.identityProviders.0.jwksUri': 'http://idp.example.com/keys' }, 'authorization.identityProviders[0].jwksUri', 'must be https'],
  ['http issuer off loopback', { 'authorization.identityProviders.0.issuer': 'http://idp.example.com' }, 'authorization.identityProviders[0].issuer', 'must be https'],
  ['http client jwksUri', { 'authorization.clients.0': { clientId: 'claude', auth: 'private_key_jwt', jwksUri: 'http://10.0.0.1/jwks' } }, 'authorization.clients[0].jwksUri', 'must be https'],
  ['alg none', { 'authorization.identityProviders.0.algorithms': ['none'] }, 'authorization.identityProviders[0].algorithms[0]', 'none and HS* are refused'],
  ['alg HS256', { 'authorization.identityProviders.0.algorithms': ['ES256', 'HS256'] }, 'authorization.identityProviders[0].algorithms[1]', 'must be an asymmetric algorithm'],
  ['algorithms as a string', { 'authorization.identityProviders.0.algorithms': 'RS256' }, 'authorization.identityProviders[0].algorithms', 'must be a list'],
  ['client_secret_basic without secret', { 'authorization.clients.0.secret': undefined }, 'authorization.clients[0].secret', 'is required for client_secret_basic'],
  ['private_key_jwt without keys', { 'authorization.clients.0': { clientId: 'claude', auth: 'private_key_jwt' } }, 'authorization.clients[0]', 'exactly one of jwksUri or jwks'],
  ['private JWK member', { 'authorization.clients.0': { clientId: 'claude', auth: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'c' }] } } }, 'authorization.clients[0].jwks.keys[0].d', 'unknown key'],
  ['symmetric JWK', { 'authorization.clients.0': { clientId: 'claude', auth: 'private_key_jwt', jwks: { keys: [{ kty: 'oct' }] } } }, 'authorization.clients[0].jwks.keys[0].kty', 'public keys only'],
  ['duplicate clientId', { 'authorization.clients.1': { clientId: 'claude', secret: 'y' } }, 'authorization.clients[1].clientId', 'duplicates authorization.clients[0].clientId'],
  ['allowedClients names an unknown client', { 'authorization.identityProviders.0.allowedClients': ['claude', 'cursor'] }, 'authorization.identityProviders[0].allowedClients[1]', 'names no client'],
  ['IdP is our own issuer', { 'authorization.identityProviders.0.issuer': 'https://gw.example.com/' }, 'authorization.identityProviders[0].issuer', 'must not be our own issuer'],
  ['duplicate IdP issuer', { 'authorization.identityProviders.1': { issuer: 'https://idp.example.com' } }, 'authorization.identityProviders[1].issuer', 'duplicates'],
  ['IdP maps a reserved claim', { 'authorization.identityProviders.0.claims': { sub: 'email' } }, 'authorization.identityProviders[0].claims.sub', 'cannot be mapped'],
  ['store not redis', { store: { url: 'http://127.0.0.1:6379' } }, 'store.url', 'redis://'],
  ['store keyPrefix with a space', { store: { url: 'redis://127.0.0.1:6379', keyPrefix: 'a b' } }, 'store.keyPrefix', 'visible ASCII'],
  ['store keyPrefix too long', { store: { url: 'redis://127.0.0.1:6379', keyPrefix: 'p'.repeat(65) } }, 'store.keyPrefix', 'at most 64'],
  ['store with an unknown key', { store: { url: 'redis://127.0.0.1:6379', password: 'x' } }, 'store.password', 'unknown key'],
  ['advertiseUrl not http', { 'listen.advertiseUrl': 'redis://10.0.0.7:8080' }, 'listen.advertiseUrl', 'http(s) URL with a host and port only'],
  ['advertiseUrl with a path', { 'listen.advertiseUrl': 'http://10.0.0.7:8080/mcp' }, 'listen.advertiseUrl', 'host and port only'],
  ['advertiseUrl with credentials', { 'listen.advertiseUrl': 'http://u:p@10.0.0.7:8080' }, 'listen.advertiseUrl', 'host and port only'],
  ['advertiseUrl with a query', { 'listen.advertiseUrl': 'http://10.0.0.7:8080?x=1' }, 'listen.advertiseUrl', 'host and port only'],
  ['advertiseUrl relative', { 'listen.advertiseUrl': '10.0.0.7:8080' }, 'listen.advertiseUrl', 'http(s) URL'],
  ['trustProxy not an address', { 'listen.trustProxy': ['lb.example.com'] }, 'listen.trustProxy[0]', 'IP address or CIDR'],
  ['trustProxy prefix too long', { 'listen.trustProxy': ['10.0.0.0/33'] }, 'listen.trustProxy[0]', 'IP address or CIDR'],
  ['trustProxy bad IPv4', { 'listen.trustProxy': ['10.0.0.256'] }, 'listen.trustProxy[0]', 'IP address or CIDR'],
  ['admin token too short', { 'admin.token': 'short' }, 'admin.token', 'at least 32 characters'],
  ['trace URL without {traceId}', { 'admin.traceUrlTemplate': 'https://grafana.example.com/explore' }, 'admin.traceUrlTemplate', 'with {traceId}'],
  ['trace URL not http(s)', { 'admin.traceUrlTemplate': 'javascript:alert(1)//{traceId}' }, 'admin.traceUrlTemplate', 'must be an http(s) URL'],
  ['trace URL relative', { 'admin.traceUrlTemplate': '/explore?traceId={traceId}' }, 'admin.traceUrlTemplate', 'must be an http(s) URL'],
  ['trace URL with {traceId} in the host', { 'admin.traceUrlTemplate': 'https://{traceId}.example.com/' }, 'admin.traceUrlTemplate', 'in its path, query or fragment'],
  ['trace URL with credentials', { 'admin.traceUrlTemplate': 'https://u:p@grafana.example.com/?t={traceId}' }, 'admin.traceUrlTemplate', 'must be an http(s) URL'],
  ['trace URL with a space', { 'admin.traceUrlTemplate': 'https://grafana.example.com/explore?q=trace {traceId}' }, 'admin.traceUrlTemplate', 'must be an http(s) URL'],
  ['trace URL with a misspelt placeholder', { 'admin.traceUrlTemplate': 'https://grafana.example.com/?t={traceid}' }, 'admin.traceUrlTemplate', 'with {traceId}'],
  ['trace URL not a string', { 'admin.traceUrlTemplate': true }, 'admin.traceUrlTemplate', 'must be a string'],
  ['rate without unit', { 'servers.s.rateLimits': [{ per: 'subject', rate: '10' }] }, 'servers.s.rateLimits[0].rate', 'N/s, N/min or N/h'],
  ['rate of zero', { 'servers.s.rateLimits': [{ per: 'subject', rate: '0/min' }] }, 'servers.s.rateLimits[0].rate', 'N/s, N/min or N/h'],
  ['rate per unknown', { 'servers.s.rateLimits': [{ per: 'user', rate: '1/s' }] }, 'servers.s.rateLimits[0].per', 'must be one of'],
  ['oauth rate per subject', { 'authorization.rateLimits': [{ per: 'subject', rate: '1/s' }] }, 'authorization.rateLimits[0].per', 'must be one of'],
  ['oauth rate unknown endpoint', { 'authorization.rateLimits': [{ per: 'address', rate: '1/s', endpoints: ['jwks'] }] }, 'authorization.rateLimits[0].endpoints[0]', 'must be one of'],
  ['circuit breaker that never opens', { 'servers.s.circuitBreaker': { consecutiveFailures: 0 } }, 'servers.s.circuitBreaker.consecutiveFailures', 'must be ≥ 1'],
  ['circuit breaker half-open too soon', { 'servers.s.circuitBreaker': { halfOpenAfterMs: 10 } }, 'servers.s.circuitBreaker.halfOpenAfterMs', 'must be ≥ 100'],
  ['maxSessionsPerPrincipal on an HTTP upstream', { 'servers.s.upstream.maxSessionsPerPrincipal': 2 }, 'servers.s.upstream.maxSessionsPerPrincipal', 'is not used by streamable-http upstreams'],
  ['no servers', { servers: {} }, 'servers', 'must not be empty'],
  ['bad server name', { 'servers.bad name': { upstream: { url: 'http://127.0.0.1:1/mcp' } } }, 'servers["bad name"]', 'server name must match'],
  ['both url and command', { 'servers.s.upstream.command': 'node' }, 'servers.s.upstream', 'has both url and command'],
  ['neither url nor command', { 'servers.s.upstream': {} }, 'servers.s.upstream', 'needs url'],
  ['sse with a command', { 'servers.s.upstream': { transport: 'sse', command: 'node' } }, 'servers.s.upstream.transport', 'transport sse requires url'],
  ['stdio key on an HTTP upstream', { 'servers.s.upstream.maxSessions': 4 }, 'servers.s.upstream.maxSessions', 'is not used by streamable-http upstreams'],
  ['upstream url with credentials', { 'servers.s.upstream.url': 'http://u:p@127.0.0.1/mcp' }, 'servers.s.upstream.url', 'send them in headers'],
  ['NUL in a stdio argument', { 'servers.s.upstream': { command: 'node', args: ['a\u0000b'] } }, 'servers.s.upstream.args[0]', 'NUL'],
  ['upstream url not http', { 'servers.s.upstream.url': 'ws://127.0.0.1:1/mcp' }, 'servers.s.upstream.url', 'must be an absolute http(s) URL'],
  ['timer beyond setTimeout', { 'servers.s.upstream': { command: 'node', idleTimeoutMs: 2 ** 31 } }, 'servers.s.upstream.idleTimeoutMs', 'must be ≤ 2147483647'],
  ['CRLF in a header value', { 'servers.s.upstream.headers': { 'X-Test': 'a\r\nX-Evil: 1' } }, 'servers.s.upstream.headers.X-Test', 'control characters'],
  ['Host header', { 'servers.s.upstream.headers': { Host: 'example.com' } }, 'servers.s.upstream.headers.Host', 'is set by the gateway'],
  ['hop-by-hop header', { 'servers.s.upstream.headers': { Connection: 'close' } }, 'servers.s.upstream.headers.Connection', 'hop-by-hop'],
  ['invalid header name', { 'servers.s.upstream.headers': { 'X Test': 'a' } }, 'servers.s.upstream.headers["X Test"]', 'not a valid HTTP header name'],
  ['header named twice', { 'servers.s.upstream.headers': { 'X-A': '1', 'x-a': '2' } }, 'servers.s.upstream.headers.x-a', 'repeats header X-A'],
  ['bad claim template', { 'servers.s.upstream.headers': { 'X-User': '{{ email }}' } }, 'servers.s.upstream.headers.X-User', 'must name one claim'],
  ['rule with allow and deny', { 'servers.s.tools.0.deny': 'x' }, 'servers.s.tools[0]', 'has both allow and deny'],
  ['rule with neither', { 'servers.s.tools.0': { scopes: ['read'] } }, 'servers.s.tools[0]', 'needs allow or deny'],
  ['empty allow list', { 'servers.s.tools.0.allow': [] }, 'servers.s.tools[0].allow', 'must not be empty'],
  ['explicit id shaped like a derived one', { 'servers.s.tools.0.id': 'tools[1]' }, 'servers.s.tools[0].id', 'must match'],
  ['duplicate explicit rule id', { 'servers.s.tools': [{ id: 'r', allow: 'a' }, { id: 'r', deny: 'b' }] }, 'servers.s.tools[1].id', 'repeats the id of servers.s.tools[0]'],
  ['rule scope the server lacks', { 'servers.s.tools.0.scopes': ['write'] }, 'servers.s.tools[0].scopes[0]', 'is not in servers.s.scopes'],
  ['mode other than enforce/shadow', { 'servers.s.mode': 'audit' }, 'servers.s.mode', 'must be one of: enforce, shadow'],
  ['auth other than required/none', { 'servers.s.auth': 'optional' }, 'servers.s.auth', 'must be one of: required, none'],
  ['renamed upstream timeout', { 'servers.s.upstream.timeout': 5000 }, 'servers.s.upstream.timeout', 'unknown key; use headersTimeoutMs / bodyTimeoutMs'],
  ['servers.X.rules', { 'servers.s.rules': [] }, 'servers.s.rules', 'unknown key; use tools'],
  ['duration without its unit', { 'servers.s.upstream.connectTimeout': 1 }, 'servers.s.upstream.connectTimeout', 'did you mean connectTimeoutMs?'],
  ['snake_case key', { 'authorization.clients.0.client_id': 'x' }, 'authorization.clients[0].client_id', 'did you mean clientId?'],
]

function validDocument (): Record<string, unknown> {
  return {
    publicUrl: 'https://gw.example.com',
    authorization: {
      clients: [{ clientId: 'claude', secret: 'x' }],
      identityProviders: [{ issuer: 'https://idp.example.com', allowedClients: ['claude'], claims: { groups: 'groups' } }],
    },
    servers: { s: { upstream: { url: 'http://127.0.0.1:3000/mcp' }, scopes: ['read'], tools: [{ allow: '*', scopes: ['read'] }] } },
  }
}

/** Sets (or, with undefined, deletes) a dotted path, creating mappings on the way; numeric segments index lists. */
function change (document: Record<string, unknown>, edits: Change): Record<string, unknown> {
  for (const [path, value] of Object.entries(edits)) {
    const keys = path.split('.')
    let node: Record<string, unknown> = document
    for (const key of keys.slice(0, -1)) {
      const next = node[key] ?? (node[key] = {})
      if (typeof next !== 'object' || next === null) throw new Error(`no ${path}`)
      node = next as Record<string, unknown>
    }
    const last = keys.at(-1) ?? ''
    if (value === undefined) delete node[last]
    else node[last] = value
  }
  return document
}

t.test('the valid base document of the table loads', async (t) => {
  t.same(problemsOf(JSON.stringify(validDocument())), [])
})

t.test('bad configs name the exact path', async (t) => {
  for (const [title, edits, path, message] of BAD) {
    // JSON is YAML, so each case is written as data
    const problems = problemsOf(JSON.stringify(change(validDocument(), edits)))
    t.same(problems.map((p) => p.path), [path], `${title}: one problem, at ${path}`)
    t.match(problems[0]?.message, message, `${title}: message`)
  }
})

t.test('admin.traceUrlTemplate: http(s) URLs with {traceId} load as written', async (t) => {
  for (const template of [
    'https://grafana.example.com/explore?traceId={traceId}',
    'http://127.0.0.1:16686/trace/{traceId}',
    'https://grafana.example.com/explore?left=%7B%22queries%22%3A%5B%7B%22query%22%3A%22{traceId}%22%7D%5D%7D',
    'https://[::1]:3000/#/trace/{traceId}',
  ]) {
    const config = parseConfig(JSON.stringify(change(validDocument(), { 'admin.traceUrlTemplate': template })), { source: '<trace>', env: {} })
    t.equal(config.admin.traceUrlTemplate, template, template)
  }
  t.equal(parseConfig(JSON.stringify(validDocument()), { source: '<trace>', env: {} }).admin.traceUrlTemplate, undefined, 'absent: no links')
})

t.test('YAML-level problems', async (t) => {
  const base = 'publicUrl: https://gw.example.com\nservers:\n  s:\n    upstream: { url: "http://127.0.0.1:1/mcp" }\n'
  t.same(problemsOf(`${base}    mode: enforce\n    mode: shadow\n`), [{ path: 'servers.s.mode', message: 'duplicate key (line 6, col 5)' }])
  const syntax = problemsOf(`${base}    tools: [{ allow: x }\n`)
  t.equal(syntax.length, 1)
  t.match(syntax[0]?.path, /^<test>:\d+:\d+$/)
  t.match(problemsOf(`${base}---\na: 1\n`)[0]?.message, 'multiple documents')
  t.match(problemsOf('publicUrl: !secret x\n')[0]?.message, 'Unresolved tag')
  t.same(problemsOf(`${base}    tools:\n      - allow: a\n        allow: b\n`), [{ path: 'servers.s.tools[0].allow', message: 'duplicate key (line 7, col 9)' }])
  t.same(problemsOf('publicUrl: *nowhere\n'), [{ path: '<test>', message: 'Unresolved alias (the anchor must be set before the alias): nowhere' }])
  t.match(problemsOf('a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n')[0]?.message, 'resource exhaustion')
  t.same(problemsOf(''), [{ path: '(root)', message: 'must be a mapping' }])
  t.same(problemsOf('- a\n'), [{ path: '(root)', message: 'must be a mapping' }])
})

t.test('warnings for what is allowed but risky', async (t) => {
  const config = parseConfig(
    `publicUrl: http://gw.example.com
authorization: { signingKeys: keys.json }
servers:
  s:
    upstream: { url: "https://up.example.com/mcp", tlsVerify: false }
    tools: [{ allow: "*", claims: { team: a } }]
    mode: shadow
`,
    { source: '<warn>', env: {} }
  )
  t.same(configWarnings(config), [
    'publicUrl is http on a non-loopback host: tokens travel in clear text',
    'servers.s.mode is shadow: policy decisions are logged but not enforced',
    "servers.s.upstream.tlsVerify is false: the upstream's certificate is not verified",
    'servers.s.tools rule tools[0] needs claim team, which no identity provider maps: it never matches',
  ])
})

t.test('every problem of a file is reported at once', async (t) => {
  const text = `publicUrl: https://gw.example.com?x
colour: blue
listen: { port: 99999 }
authorization:
  clients: [{ clientId: a, auth: client_secret_post }]
servers:
  one:
    upstream: { url: "http://127.0.0.1:1/mcp", timeout: 5 }
    tools: [{ allow: a, deny: b }]
  two:
    upstream: { command: node, headers: { Host: x } }
    mode: loud
  three:
    upstream: { url: "\${UNSET_URL}" }
`
  const problems = problemsOf(text)
  t.same(problems.map((p) => p.path), [
    'servers.three.upstream.url',
    'colour',
    'listen.port',
    'servers.one.upstream.timeout',
    'servers.two.mode',
    'publicUrl',
    'authorization.clients[0].secret',
    'servers.two.upstream.headers.Host',
    'servers.one.tools[0]',
  ])
  const error = t.throws(() => parseConfig(text, { source: 'several.yaml', env: {} }))
  t.ok(error instanceof ConfigError)
  if (error instanceof ConfigError) {
    t.equal(error.code, 'PORTCULLIS_CONFIG_INVALID')
    const lines = error.message.split('\n')
    t.equal(lines[0], 'invalid configuration several.yaml (9 problems):')
    t.equal(lines[1], 'servers.three.upstream.url: environment variable UNSET_URL is not set')
    t.equal(lines.length, 10)
  }
})

t.test('examples/portcullis.yaml loads', async (t) => {
  const env = { ...SECRETS, PORTCULLIS_PUBLIC_URL: 'https://mcp.example.com' }
  const config = await loadConfig(new URL('../../examples/portcullis.yaml', import.meta.url).pathname, env)
  t.same(Object.values(config.servers).map((s) => [s.name, s.upstream.transport, s.auth]), [
    ['github', 'streamable-http', 'required'],
    ['everything', 'stdio', 'required'],
    ['legacy-tickets', 'sse', 'required'],
  ])
  const everything = config.servers['everything']?.upstream
  t.match(everything, { command: 'node', args: ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'] })
  t.ok(Object.values(config.servers).every((s) => (s.tools?.length ?? 0) > 0))
})

t.test('portcullis check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-check-'))
  const good = join(dir, 'good.yaml')
  const bad = join(dir, 'bad.yaml')
  await writeFile(good, 'publicUrl: https://gw.example.com\nservers:\n  s: { upstream: { url: "http://127.0.0.1:1/mcp" } }\n')
  await writeFile(bad, 'publicUrl: /relative\nservers:\n  s: { upstream: { command: node, url: "http://x" }, mode: loud }\n')
  const run = async (argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> => {
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    let out = ''
    let err = ''
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    const code = await runCheck(argv, { stdout, stderr, env })
    return { code, out, err }
  }
  const ok = await run(['--config', good])
  t.equal(ok.code, 0)
  t.equal(ok.out.split('\n')[0], `ok: ${good}: 1 server`)
  t.match(ok.out, 'warning: servers.s.tools is absent: no tool is allowed')
  t.equal(ok.err, '')
  t.equal((await run([], { PORTCULLIS_CONFIG: good })).code, 0, 'PORTCULLIS_CONFIG is the default')
  const invalid = await run(['-c', bad])
  t.equal(invalid.code, 1)
  t.same(invalid.err.trim().split('\n'), [
    'servers.s.mode: must be one of: enforce, shadow',
    'publicUrl: must be an absolute http(s) URL',
    'servers.s.upstream: has both url and command; give exactly one',
    `invalid: ${bad}: 3 problems`,
  ])
  t.equal(invalid.out, '')
  const missing = await run(['--config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 1)
  t.match(missing.err, 'cannot read the file (ENOENT)')
  for (const argv of [['--bogus'], ['extra'], ['--config']]) {
    const usage = await run(argv)
    t.equal(usage.code, 2, `usage error: ${argv.join(' ')}`)
    t.match(usage.err, 'usage: portcullis check')
  }
  t.equal((await run(['--help'])).code, 0)
  // store.url that does not answer: the config is valid, the check says the store is not there
  const deadStore = join(dir, 'dead-store.yaml')
  await writeFile(deadStore, 'publicUrl: https://gw.example.com\nstore: { url: "redis://:s3cret-pass@127.0.0.1:1" }\nservers:\n  s: { upstream: { url: "http://127.0.0.1:1/mcp" }, tools: [{ allow: ["*"] }] }\n')
  const dead = await run(['--config', deadStore])
  t.equal(dead.code, 0, 'valid, so exit 0')
  t.match(dead.out, 'warning: store.url does not answer')
  t.notMatch(dead.out + dead.err, 's3cret-pass', 'the store password is never printed')
})
