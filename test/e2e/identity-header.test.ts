// Identity-header spoofing: the upstream trusts X-Forwarded-User, set by the gateway from alice's
// token. Whatever spellings of it a client adds — CGI/WSGI upstreams fold `-`/`_` and case into one
// variable and keep the first — the upstream receives exactly one such header: the gateway's.
import t from 'tap'
import { startEmaStack } from '../helpers/ema.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { policyToken } from '../helpers/policy-users.ts'
import { POST_HEADERS, dropClientConnections, rawHttp, rawRequest, toolsCall } from '../helpers/mcp-http.ts'

const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
const stack = await startEmaStack(`
  ident:
    upstream:
      url: ${upstream.url}
      headers: { X-Forwarded-User: "{{email}}" }
    scopes: [tools.read]
    tools: [{ allow: [echo] }]
`)
t.teardown(async () => {
  await dropClientConnections()
  await stack.close()
  await upstream.close()
})
const token = await policyToken(stack, 'alice', 'ident')

t.test('the upstream sees one identity header, the gateway\'s', async (t) => {
  const before = upstream.requests.length
  const url = stack.gw.mcpUrl('ident')
  // a raw socket: every spelling goes out as written, repeated ones included
  const res = await rawHttp(url, rawRequest('POST', url, [
    ...Object.entries(POST_HEADERS),
    ['Authorization', `Bearer ${token}`],
    ['X_Forwarded_User', 'mallory@evil.example'],
    ['x-forwarded_user', 'mallory@evil.example'],
    ['X-FORWARDED-USER', 'mallory@evil.example'],
    ['x__forwarded-user', 'mallory@evil.example'],
    ['X-Forwarded-User', 'eve@evil.example'],
    ['Connection', 'close'],
  ], toolsCall(1, 'echo', { message: 'hi' })))
  t.equal(res.status, 200)
  t.match(JSON.parse(res.body), { id: 1, result: { content: [{ text: 'hi' }] } })
  const received = upstream.requests.slice(before)
  t.equal(received.length, 1, 'one request upstream')
  const headers = received[0]?.headers ?? {}
  const identity = Object.entries(headers).filter(([name]) => name.replaceAll('_', '-').replace(/-+/g, '-') === 'x-forwarded-user')
  t.same(identity, [['x-forwarded-user', 'alice@example.com']], 'exactly one, carrying alice\'s email')
  t.notOk(JSON.stringify(headers).includes('evil.example'), 'no client value reached the upstream')
  t.equal(headers.authorization, undefined, 'nor the client\'s token')
})
