import t from 'tap'
import { basicAuth } from '../helpers/basic-auth.ts'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { rawHttp, rawRequest } from '../helpers/mcp-http.ts'

// Finding 10: admin.token guards the admin listener but for the probes (and /metrics unless
// metricsRequireToken). Against the real gateway process.
const TOKEN = 'admin-token-0123456789-abcdefghijklmnop'
const CHALLENGE = 'Bearer realm="portcullis-admin"'
const BASIC_CHALLENGE = 'Basic realm="portcullis-admin", charset="UTF-8"'
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')

const yaml = (admin: string): string => `
publicUrl: http://127.0.0.1:9
admin: { host: 127.0.0.1, port: 0, token: "\${ADMIN_TOKEN}"${admin} }
servers:
  x:
    auth: none
    upstream: { url: http://127.0.0.1:9/mcp }
`

let strict: GatewayProcess
let lenient: GatewayProcess
t.before(async () => {
  [strict, lenient] = await Promise.all([
    startGatewayProcess({ yaml: yaml(', metricsRequireToken: true'), env: { ADMIN_TOKEN: TOKEN } }),
    startGatewayProcess({ yaml: yaml(''), env: { ADMIN_TOKEN: TOKEN } }),
  ])
})
t.teardown(async () => { await Promise.all([strict.stop(), lenient.stop()]) })

/** GET `path` with exactly these header lines (repeats included), over a raw connection */
async function get (base: string, path: string, headers: Array<[string, string]>): Promise<{ status: number, headers: Record<string, string | string[]>, body: string }> {
  return await rawHttp(base, rawRequest('GET', `${base}${path}`, [...headers, ['Connection', 'close']]))
}

t.test('hostile requests for guarded paths: 401, the challenge, never the content', async (t) => {
  t.match(b64(`adm:${TOKEN}`), /[^=]==$/, 'the unpadded row below really drops padding')
  const hostile: Array<[string, string, Array<[string, string]>]> = [
    ['no header', '/metrics', []],
    ['wrong scheme', '/metrics', [['Authorization', `Digest ${b64(`admin:${TOKEN}`)}`]]],
    ['Basic, wrong password', '/metrics', [['Authorization', basicAuth('admin', 'not-the-admin-token-0123456789-abcdef')]]],
    ['Basic, empty password', '/metrics', [['Authorization', basicAuth('admin', '')]]],
    ['Basic, empty credentials', '/metrics', [['Authorization', 'Basic ']]],
    ['Basic without credentials', '/metrics', [['Authorization', 'Basic']]],
    ['Basic, the token as user name', '/metrics', [['Authorization', basicAuth(TOKEN, '')]]],
    ['Basic, the token as user name and a password', '/metrics', [['Authorization', basicAuth(TOKEN, 'x')]]],
    ['Basic, the token without a colon', '/metrics', [['Authorization', `Basic ${b64(TOKEN)}`]]],
    ['Basic, the token in clear', '/metrics', [['Authorization', `Basic admin:${TOKEN}`]]],
    ['Basic, malformed base64', '/metrics', [['Authorization', `Basic ${b64(`admin:${TOKEN}`).slice(0, -2)}!!`]]],
    ['Basic, base64 after the padding', '/metrics', [['Authorization', `Basic ${b64(`admin:${TOKEN}x`)}QQ==`]]],
    ['Basic, unpadded base64', '/metrics', [['Authorization', `Basic ${b64(`adm:${TOKEN}`).replace(/==$/, '')}`]]],
    ['Basic, base64url alphabet', '/metrics', [['Authorization', `Basic ${Buffer.from(`admin?:${TOKEN}`).toString('base64url')}`]]],
    ['Basic, the password with a trailing newline', '/metrics', [['Authorization', basicAuth('admin', `${TOKEN}\n`)]]],
    ['Basic, the password in Latin-1, not UTF-8', '/metrics', [['Authorization', `Basic ${Buffer.from(`\u00e9:${TOKEN}`, 'latin1').toString('base64')}`]]],
    ['Basic, two spaces', '/metrics', [['Authorization', `Basic  ${b64(`admin:${TOKEN}`)}`]]],
    ['Basic and Bearer in one header', '/metrics', [['Authorization', `${basicAuth('admin', TOKEN)}, Bearer ${TOKEN}`]]],
    ['two headers, Basic right then Bearer wrong', '/metrics', [['Authorization', basicAuth('admin', TOKEN)], ['Authorization', 'Bearer wrong']]],
    ['two headers, Bearer wrong then Basic right', '/metrics', [['Authorization', 'Bearer wrong'], ['Authorization', basicAuth('admin', TOKEN)]]],
    ['two headers, Basic right twice', '/metrics', [['Authorization', basicAuth('admin', TOKEN)], ['Authorization', basicAuth('admin', TOKEN)]]],
    ['token without a scheme', '/metrics', [['Authorization', TOKEN]]],
    ['wrong token', '/metrics', [['Authorization', 'Bearer not-the-admin-token-0123456789-abcdef']]],
    ['the token with one character changed', '/metrics', [['Authorization', `Bearer ${TOKEN.slice(0, -1)}X`]]],
    ['a prefix of the token', '/metrics', [['Authorization', `Bearer ${TOKEN.slice(0, 16)}`]]],
    ['the token and more', '/metrics', [['Authorization', `Bearer ${TOKEN}x`]]],
    ['token as query parameter', `/metrics?access_token=${TOKEN}`, []],
    ['token as query parameter named token', `/metrics?token=${TOKEN}`, []],
    ['token in a cookie', '/metrics', [['Cookie', `token=${TOKEN}`]]],
    ['two spaces after Bearer', '/metrics', [['Authorization', `Bearer  ${TOKEN}`]]],
    ['whitespace inside the token', '/metrics', [['Authorization', `Bearer ${TOKEN.slice(0, 10)} ${TOKEN.slice(10)}`]]],
    ['a tab instead of the space', '/metrics', [['Authorization', `Bearer\t${TOKEN}`]]],
    ['repeated headers, wrong then right', '/metrics', [['Authorization', 'Bearer wrong'], ['Authorization', `Bearer ${TOKEN}`]]],
    ['repeated headers, right then wrong', '/metrics', [['Authorization', `Bearer ${TOKEN}`], ['Authorization', 'Bearer wrong']]],
    ['repeated headers, right twice', '/metrics', [['Authorization', `Bearer ${TOKEN}`], ['Authorization', `Bearer ${TOKEN}`]]],
    ['an unknown path, no header', '/console', []],
    ['an unknown path, wrong token', '/admin/config', [['Authorization', 'Bearer wrong']]],
    ['a probe path with a trailing slash', '/healthz/', []],
    ['a probe path in other case', '/HEALTHZ', []],
    ['metrics by another path', '/metrics/', []],
  ]
  for (const [name, path, headers] of hostile) {
    const res = await get(strict.adminUrl, path, headers)
    t.equal(res.status, 401, `${name}: 401`)
    t.equal(res.headers['www-authenticate'], CHALLENGE, `${name}: the challenge`)
    t.notMatch(res.body, /portcullis_|process_cpu|# HELP|status/, `${name}: no content`)
  }
})

t.test('a browser is offered Basic too, and the token as its password opens the console', async (t) => {
  const html: [string, string] = ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8']
  const asked: Array<[string, Array<[string, string]>]> = [['no header', [html]], ['wrong password', [html, ['Authorization', basicAuth('admin', 'wrong')]]]]
  for (const [name, headers] of asked) {
    const res = await get(strict.adminUrl, '/', headers)
    t.equal(res.status, 401, `${name}: 401`)
    t.same(res.headers['www-authenticate'], [CHALLENGE, BASIC_CHALLENGE], `${name}: Bearer and Basic, so the browser prompts`)
  }
  const api = await get(strict.adminUrl, '/api/servers', [['Accept', 'application/json']])
  t.equal(api.headers['www-authenticate'], CHALLENGE, 'not a browser: Bearer only')
  for (const user of ['admin', '', 'ops@example.com', 'zoë']) {
    const ok = await get(strict.adminUrl, '/', [html, ['Authorization', basicAuth(user, TOKEN)]])
    t.equal(ok.status, 200, `user name ${JSON.stringify(user)}: any user name`)
    t.match(ok.body, /<title>[^<]*Servers/)
  }
  const colon = await get(strict.adminUrl, '/metrics', [['Authorization', `basic ${b64(`a:b:${TOKEN}`)}`]])
  t.equal(colon.status, 401, 'the password is everything after the first colon')
  const scheme = await get(strict.adminUrl, '/metrics', [['Authorization', `basic ${b64(`admin:${TOKEN}`)}`]])
  t.equal(scheme.status, 200, 'the scheme is case-insensitive')
})

t.test('the right token opens everything; unknown paths then 404', async (t) => {
  const ok = await get(strict.adminUrl, '/metrics', [['Authorization', `Bearer ${TOKEN}`]])
  t.equal(ok.status, 200)
  t.match(ok.body, /portcullis_build_info/)
  const lower = await get(strict.adminUrl, '/metrics', [['authorization', `bearer ${TOKEN}`]])
  t.equal(lower.status, 200, 'the scheme is case-insensitive (RFC 7235)')
  const missing = await get(strict.adminUrl, '/console', [['Authorization', `Bearer ${TOKEN}`]])
  t.equal(missing.status, 404, 'with the token an unknown path is a plain 404')
})

t.test('the probes stay open (Kubernetes sends no token)', async (t) => {
  for (const gw of [strict, lenient]) {
    t.equal((await get(gw.adminUrl, '/healthz', [])).status, 200)
    t.equal((await get(gw.adminUrl, '/readyz', [])).status, 200)
    t.equal((await get(gw.adminUrl, '/healthz?x=1', [['Authorization', 'Bearer wrong']])).status, 200, 'a wrong token on a probe does not matter')
  }
})

t.test('metricsRequireToken false: /metrics open, the rest guarded', async (t) => {
  const metrics = await get(lenient.adminUrl, '/metrics', [])
  t.equal(metrics.status, 200)
  t.match(metrics.body, /portcullis_build_info/)
  const unknown = await get(lenient.adminUrl, '/console', [])
  t.equal(unknown.status, 401)
  t.equal(unknown.headers['www-authenticate'], CHALLENGE)
})

t.test('the token never reaches the logs', async (t) => {
  t.notOk([...strict.rawLogs, ...lenient.rawLogs].some((line) => line.includes(TOKEN)))
})
