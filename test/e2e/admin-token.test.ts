import t from 'tap'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { rawHttp, rawRequest } from '../helpers/mcp-http.ts'

// Finding 10: admin.token guards the admin listener but for the probes (and /metrics unless
// metricsRequireToken). Against the real gateway process.
const TOKEN = 'admin-token-0123456789-abcdefghijklmnop'
const CHALLENGE = 'Bearer realm="portcullis-admin"'

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
  const hostile: Array<[string, string, Array<[string, string]>]> = [
    ['no header', '/metrics', []],
    ['wrong scheme', '/metrics', [['Authorization', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`]]],
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
