// The token endpoint against hostile requests (protocol.md §7.2, §7.6): every row is a real HTTP
// request to the gateway, with ID-JAGs signed by the dev IdP's real key (or a stranger's), and
// asserts the status, the OAuth `error`, that no access token was issued, and that nothing reached
// the upstream.
import t from 'tap'
import { request } from 'undici'
import { SignJWT, generateKeyPair, exportJWK } from 'jose'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { CLIENT, JWT_BEARER, startEmaStack } from '../helpers/ema.ts'

const stack = await startEmaStack()
t.teardown(() => stack.close())
const now = (): number => Math.floor(Date.now() / 1000)
const stranger = await generateKeyPair('ES256')
const hsKey = new TextEncoder().encode(JSON.stringify(stack.idp.jwks.keys[0]))

interface Row {
  readonly name: string
  /** form fields (grant_type defaults to jwt-bearer), or a full request */
  readonly form?: () => Promise<Record<string, string>>
  readonly send?: () => Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }>
  readonly auth?: 'basic' | 'post' | 'none'
  readonly status: number
  readonly error: string
  readonly wwwAuthenticate?: RegExp
}

const assertion = async (claims: Record<string, unknown> = {}, header?: Record<string, unknown>): Promise<Record<string, string>> =>
  ({ assertion: await stack.mintIdJag(claims, header) })

async function raw (body: string, headers: Record<string, string>, method = 'POST'): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await request(`${stack.gw.url}/oauth/token`, { method: method as 'POST', headers, ...(method === 'POST' ? { body } : {}) })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, headers: res.headers }
}

const replayed = await stack.mintIdJag()
const first = await stack.redeem({ grant_type: JWT_BEARER, assertion: replayed })

const rows: Row[] = [
  // the request itself
  { name: 'wrong content type (JSON body)', send: async () => await raw(JSON.stringify({ grant_type: JWT_BEARER, assertion: 'x' }), { 'content-type': 'application/json', authorization: clientBasicAuth(CLIENT.id, CLIENT.secret) }), status: 400, error: 'invalid_request' },
  { name: 'duplicate assertion parameter', send: async () => await raw(`grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=a.b.c&assertion=a.b.c`, { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(CLIENT.id, CLIENT.secret) }), status: 400, error: 'invalid_request' },
  { name: 'duplicate grant_type parameter', send: async () => await raw(`grant_type=${encodeURIComponent(JWT_BEARER)}&grant_type=${encodeURIComponent(JWT_BEARER)}`, { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(CLIENT.id, CLIENT.secret) }), status: 400, error: 'invalid_request' },
  { name: 'body over 64 KiB', send: async () => await raw(`grant_type=x&pad=${'a'.repeat(70_000)}`, { 'content-type': 'application/x-www-form-urlencoded' }), status: 413, error: 'invalid_request' },
  { name: 'GET /oauth/token', send: async () => await raw('', {}, 'GET'), status: 405, error: 'invalid_request' },
  { name: 'missing grant_type', form: async () => ({ grant_type: '' }), status: 400, error: 'unsupported_grant_type' },
  { name: 'client_credentials grant', form: async () => ({ grant_type: 'client_credentials' }), status: 400, error: 'unsupported_grant_type' },
  { name: 'token-exchange sent to the gateway', form: async () => ({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' }), status: 400, error: 'unsupported_grant_type' },
  // client authentication
  { name: 'no client authentication', form: assertion, auth: 'none', status: 401, error: 'invalid_client' },
  { name: 'wrong client secret (Basic)', send: async () => await raw(new URLSearchParams({ grant_type: JWT_BEARER, ...(await assertion()) }).toString(), { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(CLIENT.id, 'wrong') }), status: 401, error: 'invalid_client', wwwAuthenticate: /^Basic/ },
  { name: 'unknown client (Basic)', send: async () => await raw(new URLSearchParams({ grant_type: JWT_BEARER, ...(await assertion()) }).toString(), { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth('nobody', CLIENT.secret) }), status: 401, error: 'invalid_client', wwwAuthenticate: /^Basic/ },
  { name: 'two client authentication methods', form: async () => ({ ...(await assertion()), client_secret: CLIENT.secret }), status: 400, error: 'invalid_request' },
  { name: 'a Basic client using client_secret_post', form: async () => ({ ...(await assertion()), client_id: CLIENT.id, client_secret: CLIENT.secret }), auth: 'none', status: 401, error: 'invalid_client' },
  { name: 'Bearer scheme for client authentication', send: async () => await raw(new URLSearchParams({ grant_type: JWT_BEARER, ...(await assertion()) }).toString(), { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer abc' }), status: 400, error: 'invalid_request' },
  // the assertion's shape
  { name: 'missing assertion', form: async () => ({}), status: 400, error: 'invalid_request' },
  { name: 'assertion over 16 KiB', form: async () => ({ assertion: `${'a'.repeat(17_000)}.b.c` }), status: 400, error: 'invalid_request' },
  { name: 'not a JWT', form: async () => ({ assertion: 'not-a-jwt' }), status: 400, error: 'invalid_grant' },
  { name: 'a JWE (5 segments)', form: async () => ({ assertion: 'a.b.c.d.e' }), status: 400, error: 'invalid_grant' },
  { name: 'non-JSON header', form: async () => ({ assertion: `${Buffer.from('nope').toString('base64url')}.e30.sig` }), status: 400, error: 'invalid_grant' },
  // typ and alg
  { name: 'typ missing', form: async () => ({ assertion: await stack.mintIdJag({}, { typ: undefined }) }), status: 400, error: 'invalid_grant' },
  { name: 'typ JWT (an ID token)', form: async () => await assertion({}, { typ: 'JWT' }), status: 400, error: 'invalid_grant' },
  { name: 'typ at+jwt (an access token)', form: async () => await assertion({}, { typ: 'at+jwt' }), status: 400, error: 'invalid_grant' },
  { name: 'alg none', form: async () => ({ assertion: `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'oauth-id-jag+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: stack.idp.issuer, sub: 'x', aud: stack.issuer, client_id: CLIENT.id, jti: 'n1', iat: now(), exp: now() + 60 })).toString('base64url')}.` }), status: 400, error: 'invalid_grant' },
  { name: 'HS256 signed with the IdP\'s public key (alg confusion)', form: async () => ({ assertion: await new SignJWT({ iss: stack.idp.issuer, sub: 'x', aud: stack.issuer, client_id: CLIENT.id, jti: 'hs1', resource: stack.resource }).setProtectedHeader({ alg: 'HS256', typ: 'oauth-id-jag+jwt' }).setIssuedAt().setExpirationTime('5m').sign(hsKey) }), status: 400, error: 'invalid_grant' },
  { name: 'signed by a stranger\'s key with the IdP\'s kid', form: async () => ({ assertion: await new SignJWT({ iss: stack.idp.issuer, sub: 'x', aud: stack.issuer, client_id: CLIENT.id, jti: 'st1', resource: stack.resource }).setProtectedHeader({ alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: String(stack.idp.jwks.keys[0]?.kid) }).setIssuedAt().setExpirationTime('5m').sign(stranger.privateKey) }), status: 400, error: 'invalid_grant' },
  { name: 'an embedded jwk header pointing at the attacker\'s key', form: async () => ({ assertion: await new SignJWT({ iss: stack.idp.issuer, sub: 'x', aud: stack.issuer, client_id: CLIENT.id, jti: 'jwk1', resource: stack.resource }).setProtectedHeader({ alg: 'ES256', typ: 'oauth-id-jag+jwt', jwk: await exportJWK(stranger.publicKey) }).setIssuedAt().setExpirationTime('5m').sign(stranger.privateKey) }), status: 400, error: 'invalid_grant' },
  { name: 'unknown kid', form: async () => await assertion({}, { kid: 'no-such-kid' }), status: 400, error: 'invalid_grant' },
  // issuer, audience, client
  { name: 'untrusted issuer', form: async () => await assertion({ iss: 'https://evil.example' }), status: 400, error: 'invalid_grant' },
  { name: 'issuer with a trailing slash', form: async () => await assertion({ iss: `${stack.idp.issuer}/` }), status: 400, error: 'invalid_grant' },
  { name: 'the gateway\'s own issuer', form: async () => await assertion({ iss: stack.issuer }), status: 400, error: 'invalid_grant' },
  { name: 'aud is the resource, not the AS', form: async () => await assertion({ aud: stack.resource }), status: 400, error: 'invalid_grant' },
  { name: 'aud array with two values including ours', form: async () => await assertion({ aud: [stack.issuer, 'https://other.example'] }), status: 400, error: 'invalid_grant' },
  { name: 'aud missing', form: async () => await assertion({ aud: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'client_id of another client', form: async () => await assertion({ client_id: 'someone-else' }), status: 400, error: 'invalid_grant' },
  { name: 'client_id differing by case', form: async () => await assertion({ client_id: CLIENT.id.toUpperCase() }), status: 400, error: 'invalid_grant' },
  // times
  { name: 'expired', form: async () => await assertion({ iat: now() - 600, exp: now() - 120 }), status: 400, error: 'invalid_grant' },
  { name: 'exp missing', form: async () => await assertion({ exp: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'exp as a string', form: async () => await assertion({ exp: String(now() + 300) }), status: 400, error: 'invalid_grant' },
  { name: 'iat in the future', form: async () => await assertion({ iat: now() + 600, exp: now() + 900 }), status: 400, error: 'invalid_grant' },
  { name: 'iat missing', form: async () => await assertion({ iat: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'nbf in the future', form: async () => await assertion({ nbf: now() + 600 }), status: 400, error: 'invalid_grant' },
  { name: 'lifetime over the maximum (24 h)', form: async () => await assertion({ exp: now() + 86_400 }), status: 400, error: 'invalid_grant' },
  // sub, jti
  { name: 'sub missing', form: async () => await assertion({ sub: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'sub empty', form: async () => await assertion({ sub: '' }), status: 400, error: 'invalid_grant' },
  { name: 'sub not a string', form: async () => await assertion({ sub: 42 }), status: 400, error: 'invalid_grant' },
  { name: 'jti missing', form: async () => await assertion({ jti: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'replayed jti', form: async () => ({ assertion: replayed }), status: 400, error: 'invalid_grant' },
  // resource and scope
  { name: 'resource of another host', form: async () => await assertion({ resource: 'https://evil.example/mcp/tools' }), status: 400, error: 'invalid_grant' },
  { name: 'resource with a query', form: async () => await assertion({ resource: `${stack.resource}?x=1` }), status: 400, error: 'invalid_grant' },
  { name: 'resource missing and no parameter', form: async () => await assertion({ resource: undefined }), status: 400, error: 'invalid_grant' },
  { name: 'resource parameter not ours', form: async () => ({ ...(await assertion()), resource: 'https://evil.example/mcp' }), status: 400, error: 'invalid_target' },
  { name: 'resource claim and parameter naming different servers', form: async () => ({ ...(await assertion()), resource: stack.otherResource }), status: 400, error: 'invalid_grant' },
  { name: 'resource array of two without a selecting parameter', form: async () => await assertion({ resource: [stack.resource, stack.otherResource] }), status: 400, error: 'invalid_grant' },
  { name: 'scope escalation', form: async () => ({ ...(await assertion({ scope: 'tools.read' })), scope: 'tools.write' }), status: 400, error: 'invalid_scope' },
  { name: 'scope claim as a JSON array', form: async () => await assertion({ scope: ['tools.read'] }), status: 400, error: 'invalid_grant' },
  // constraints the gateway does not process
  { name: 'cnf without a DPoP proof', form: async () => await assertion({ cnf: { jkt: 'abc' } }), status: 400, error: 'invalid_grant' },
  { name: 'authorization_details', form: async () => await assertion({ authorization_details: [{ type: 'x' }] }), status: 400, error: 'invalid_grant' },
  // foreign tokens as the assertion
  { name: 'an IdP ID token as the assertion', form: async () => ({ assertion: await stack.idToken('alice') }), status: 400, error: 'invalid_grant' },
  { name: 'the gateway\'s own access token as the assertion', form: async () => ({ assertion: String(first.body.access_token) }), status: 400, error: 'invalid_grant' },
]

t.equal(first.status, 200, 'control: a valid ID-JAG is redeemed')
t.ok(rows.length >= 30, `${rows.length} hostile rows`)

for (const row of rows) {
  t.test(row.name, async (t) => {
    const before = stack.upstream.requests.length
    const res = row.send !== undefined
      ? await row.send()
      : await stack.redeem({ grant_type: JWT_BEARER, ...(await row.form?.()) }, row.auth ?? 'basic')
    t.equal(res.status, row.status, `HTTP ${row.status}`)
    t.equal(res.body.error, row.error, `error ${row.error}`)
    t.type(res.body.error_description, 'string', 'with a description')
    t.notOk('access_token' in res.body, 'no access token issued')
    t.equal(res.headers['cache-control'], 'no-store')
    if (row.wwwAuthenticate !== undefined) t.match(String(res.headers['www-authenticate']), row.wwwAuthenticate)
    t.equal(stack.upstream.requests.length, before, 'nothing reached the upstream')
  })
}

t.test('concurrent replays of one ID-JAG: exactly one succeeds', async (t) => {
  const assertion = await stack.mintIdJag()
  const results = await Promise.all(Array.from({ length: 8 }, async () => await stack.redeem({ grant_type: JWT_BEARER, assertion })))
  t.equal(results.filter((r) => r.status === 200).length, 1)
  t.equal(results.filter((r) => r.body.error === 'invalid_grant').length, 7)
})

t.test('rejections are counted by reason and audited', async (t) => {
  const res = await request(`${stack.gw.adminUrl}/metrics`)
  const text = await res.body.text()
  t.match(text, /portcullis_token_requests_total\{grant_type="jwt_bearer",outcome="rejected",error="invalid_grant",reason="replayed_jti"\} \d+/)
  t.match(text, /reason="wrong_typ"/)
  t.match(text, /reason="untrusted_issuer"/)
  t.match(text, /reason="audience_mismatch"/)
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.token' && l.outcome === 'rejected' && l['portcullis.auth.reason'] === 'client_mismatch'))
})
