// The dev IdP's side of the federated login: its OIDC authorization endpoint (code + PKCE S256,
// state, nonce), the user picker (dev only, and it says so), and the authorization_code grant
// that returns the ID token.
import t from 'tap'
import { decodeJwt } from 'jose'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { postToken, startDevIdp } from '../helpers/dev-idp.ts'
import { pkcePair } from '../helpers/federated.ts'

const REDIRECT = 'http://127.0.0.1:9/oauth/callback'
const { url, issuer, rawLogs, close } = await startDevIdp(`
users:
  - { username: alice, password: alice-pw-1, email: alice@example.com, name: Alice, groups: [eng] }
  - { username: "<b>bob</b>", password: bob-pw-2, email: bob@example.com }
clients:
  - { clientId: gw, secret: gw-secret-1, redirectUris: ["${REDIRECT}"] }
  - { clientId: other, secret: other-secret-2, redirectUris: ["http://127.0.0.1:9/other"] }
`)
t.teardown(close)
const GW = clientBasicAuth('gw', 'gw-secret-1')

function authorizeUrl (override: Record<string, string | undefined> = {}, challenge = pkcePair().challenge): string {
  const params: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: 'gw',
    redirect_uri: REDIRECT,
    scope: 'openid email',
    state: 'st',
    nonce: 'nn',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...override,
  }
  return `${url}/authorize?${new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined)).toString()}`
}

async function login (username = 'alice'): Promise<{ code: string, verifier: string, back: URL }> {
  const { verifier, challenge } = pkcePair()
  const page = await (await fetch(authorizeUrl({}, challenge))).text()
  const tx = /name="tx" value="([^"]+)"/.exec(page)?.[1] ?? ''
  const res = await fetch(`${url}/authorize`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ tx, username }).toString() })
  const back = new URL(res.headers.get('location') ?? 'invalid:')
  return { code: back.searchParams.get('code') ?? '', verifier, back }
}

t.test('discovery advertises the code flow', async (t) => {
  t.match(await (await fetch(`${url}/.well-known/openid-configuration`)).json(), {
    authorization_endpoint: `${issuer}/authorize`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['password', 'urn:ietf:params:oauth:grant-type:token-exchange', 'authorization_code'],
    authorization_response_iss_parameter_supported: true,
  })
})

t.test('the user picker: every user, escaped, and a dev-only warning', async (t) => {
  const res = await fetch(authorizeUrl())
  const html = await res.text()
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.match(html, /DEVELOPMENT ONLY/)
  t.match(html, /value="alice"/)
  t.match(html, /&#60;b&#62;bob&#60;\/b&#62;/, 'names are HTML-escaped')
  t.notOk(html.includes('<b>bob</b>'))
})

t.test('a login: code, state and iss back at the registered redirect URI; the code gives an ID token once', async (t) => {
  const { code, verifier, back } = await login()
  t.equal(`${back.origin}${back.pathname}`, REDIRECT)
  t.equal(back.searchParams.get('state'), 'st')
  t.equal(back.searchParams.get('iss'), issuer)
  const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }
  const good = await postToken(url, form, { authorization: GW })
  t.equal(good.status, 200)
  t.match(decodeJwt(String(good.body.id_token)), { iss: issuer, aud: 'gw', nonce: 'nn', email: 'alice@example.com', groups: ['eng'] })
  t.match(await postToken(url, form, { authorization: GW }), { status: 400, body: { error: 'invalid_grant' } }, 'once')
  for (const line of rawLogs) t.notOk(line.includes(code) || line.includes(verifier) || line.includes(String(good.body.id_token)), 'nothing secret logged')
})

t.test('token request refusals', async (t) => {
  const cases: Array<[string, (l: { code: string, verifier: string }) => Record<string, string>, string]> = [
    ['wrong verifier', (l) => ({ code: l.code, redirect_uri: REDIRECT, code_verifier: pkcePair().verifier }), GW],
    ['other redirect_uri', (l) => ({ code: l.code, redirect_uri: 'http://127.0.0.1:9/other', code_verifier: l.verifier }), GW],
    ['another client', (l) => ({ code: l.code, redirect_uri: REDIRECT, code_verifier: l.verifier }), clientBasicAuth('other', 'other-secret-2')],
  ]
  for (const [name, form, auth] of cases) {
    const l = await login()
    t.match(await postToken(url, { grant_type: 'authorization_code', ...form(l) }, { authorization: auth }), { status: 400, body: { error: 'invalid_grant' } }, name)
  }
})

t.test('authorization request refusals', async (t) => {
  for (const [name, override] of [['unknown client', { client_id: 'nobody' }], ['unregistered redirect URI', { redirect_uri: 'http://127.0.0.1:9/evil' }],
    ['no redirect URI', { redirect_uri: undefined }]] as const) {
    const res = await fetch(authorizeUrl(override), { redirect: 'manual' })
    t.equal(res.status, 400, `${name}: a page`)
    t.equal(res.headers.get('location'), null, `${name}: no redirect`)
  }
  for (const [name, override, error] of [['no PKCE', { code_challenge: undefined }, 'invalid_request'], ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['no openid scope', { scope: 'email' }, 'invalid_scope'], ['implicit', { response_type: 'id_token' }, 'unsupported_response_type']] as const) {
    const res = await fetch(authorizeUrl(override), { redirect: 'manual' })
    const back = new URL(res.headers.get('location') ?? 'invalid:')
    t.equal(back.searchParams.get('error'), error, `${name}: ${error} at the redirect URI`)
    t.equal(back.searchParams.get('state'), 'st')
  }
  const stale = await fetch(`${url}/authorize`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'tx=unknown&username=alice' })
  t.equal(stale.status, 400, 'a form that was never shown (or already used)')
  t.equal(stale.headers.get('location'), null)
})
