// buildUpstreamRequestHeaders is where the client's token is stripped: each row a client header
// and whether it reaches the upstream; then the identity header a configured template sets, which
// no spelling of the client's may shadow (CGI/WSGI fold case and `-`/`_` into one variable).
import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { buildUpstreamRequestHeaders } from '../../src/upstream/headers.ts'
import type { Principal } from '../../src/authn/principal.ts'

const alice: Principal = { key: 'k', subject: 'alice-sub', issuer: 'https://idp.example.com', clientId: 'c', scopes: [], claims: { email: 'alice@example.com' }, anonymous: false, assertionJti: undefined }
const CONFIGURED = { 'X-Forwarded-User': '{{email}}', Authorization: 'Bearer upstream-secret' }
const build = (incoming: IncomingHttpHeaders, configured: Record<string, string> = CONFIGURED, trace?: Record<string, string>): Record<string, string> =>
  buildUpstreamRequestHeaders(incoming, configured, alice, trace)

t.test('what a client header becomes upstream', t => {
  // [name, value, forwarded?] — Node hands header names lowercased; some are sent as the client spelled them
  const rows: Array<[string, string, boolean]> = [
    ['authorization', 'Bearer client-token', false],
    ['cookie', 'sid=1', false],
    ['proxy-authorization', 'Basic eA==', false],
    ['dpop', 'eyJ…', false],
    ['host', 'gateway.example.com', false],
    ['mcp-session-id', 'sealed', false],
    ['connection', 'keep-alive', false],
    ['keep-alive', 'timeout=5', false],
    ['proxy-connection', 'keep-alive', false],
    ['te', 'trailers', false],
    ['trailer', 'x', false],
    ['transfer-encoding', 'chunked', false],
    ['upgrade', 'h2c', false],
    ['content-length', '10', false],
    ['content-encoding', 'gzip', false],
    ['expect', '100-continue', false],
    ['http2-settings', 'AAA', false],
    ['origin', 'https://evil.example', false],
    ['referer', 'https://evil.example/', false],
    ['accept-encoding', 'gzip', false],
    ['forwarded', 'for=1.2.3.4', false],
    ['x-forwarded-for', '1.2.3.4', false],
    ['x-forwarded-host', 'evil', false],
    ['x-forwarded-proto', 'http', false],
    ['x-real-ip', '1.2.3.4', false],
    // underscores: dropped, whatever they fold onto
    ['x_forwarded_user', 'mallory', false],
    ['x-forwarded_user', 'mallory', false],
    ['x_forwarded-user', 'mallory', false],
    ['x__forwarded-user', 'mallory', false],
    ['mcp_session_id', 'forged', false],
    ['http_authorization', 'Bearer x', false],
    ['x_custom', 'v', false],
    // forwarded
    ['accept', 'application/json, text/event-stream', true],
    ['content-type', 'application/json', true],
    ['mcp-protocol-version', '2025-06-18', true],
    ['last-event-id', '7', true],
    ['mcp-method', 'tools/call', true],
    ['mcp-name', 'echo', true],
    ['mcp-param-region', 'eu', true],
    ['mcp-param-user_id', '7', true], // 2026-07-28: an intermediary MUST forward Mcp-Param-*
    ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', true],
    ['user-agent', 'client/1.0', true],
    ['x-custom', 'v', true],
  ]
  for (const [name, value, forwarded] of rows) {
    const out = build({ [name]: value })
    if (forwarded) t.equal(out[name], value, `${name}: forwarded`)
    else t.notOk(Object.values(out).includes(value), `${name}: not forwarded`)
  }
  t.end()
})

t.test('Connection-listed headers are dropped, also under a folded spelling', t => {
  const out = build({ connection: 'close, X-Custom, mcp_param_a, Mcp-Param-C', 'x-custom': 'v', 'mcp-param-a': 'x', 'mcp-param-b': 'y', mcp_param_c: 'z' })
  t.same(Object.keys(out).sort(), ['authorization', 'mcp-param-b', 'x-forwarded-user'])
  t.same(Object.keys(build({ connection: 'Authorization, X-Forwarded-User' })).sort(), ['authorization', 'x-forwarded-user'], 'the gateway\'s own headers stay')
  t.end()
})

t.test('exactly one identity header, the gateway\'s, whatever the client spelled', t => {
  const spellings: IncomingHttpHeaders[] = [
    { 'x-forwarded-user': 'mallory' }, // X-FORWARDED-USER arrives lowercased
    { x_forwarded_user: 'mallory' },
    { 'x-forwarded_user': 'mallory' },
    { x_forwarded_user: 'mallory', 'x-forwarded-user': 'eve' },
    { 'x__forwarded-user': 'mallory' },
    { authorization: 'Bearer client-token', x_authorization: 'Bearer forged' },
  ]
  for (const incoming of spellings) {
    const out = build(incoming)
    const identity = Object.entries(out).filter(([name]) => name.toLowerCase().replaceAll('_', '-').replace(/-+/g, '-') === 'x-forwarded-user')
    t.same(identity, [['x-forwarded-user', 'alice@example.com']], JSON.stringify(incoming))
    t.equal(out.authorization, 'Bearer upstream-secret', 'the configured credential, not the client\'s')
    t.notOk(Object.values(out).some((v) => /mallory|eve|client-token|forged/.test(v)), 'no client value survives')
  }
  t.end()
})

t.test('a configured name with `_` also claims its `-` spelling', t => {
  const out = build({ 'x-user': 'mallory', x_user: 'eve', 'x-other': 'ok' }, { X_User: '{{sub}}' })
  t.same(out, { x_user: 'alice-sub', 'x-other': 'ok' })
  t.end()
})

t.test('the gateway\'s trace context replaces the client\'s', t => {
  const out = build({ traceparent: 'client', tracestate: 'client', trace_parent: 'x' }, {}, { traceparent: 'gw', tracestate: 'gw' })
  t.same(out, { traceparent: 'gw', tracestate: 'gw' })
  t.end()
})

t.test('a claim the principal lacks refuses the request', t => {
  t.throws(() => build({}, { 'X-Tenant': '{{tenant}}' }), { code: 'PORTCULLIS_ERR_UNAUTHENTICATED' })
  t.end()
})
