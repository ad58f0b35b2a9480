import t from 'tap'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import { discoverAndRequestJwtAuthGrant } from '@modelcontextprotocol/client'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { postToken, startDevIdp, TEST_AUDIENCE, TEST_SECRETS, testIdpYaml } from '../helpers/dev-idp.ts'

const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag'
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const RESOURCE = `${TEST_AUDIENCE}/mcp/everything`
const DEMO = clientBasicAuth('demo-client', 'demo-secret-9')

const started = await startDevIdp(testIdpYaml())
t.teardown(() => started.close())
const { url, issuer } = started
const now = (): number => Math.floor(Date.now() / 1000)

async function jwks (): Promise<JSONWebKeySet> {
  const body: unknown = await (await fetch(`${url}/jwks`)).json()
  return body as JSONWebKeySet
}

async function login (username: string, password: string, auth = DEMO): Promise<string> {
  const response = await postToken(url, { grant_type: 'password', username, password }, { authorization: auth })
  if (typeof response.body['id_token'] !== 'string') throw new Error(`login failed: ${response.text}`)
  return response.body['id_token']
}

t.test('discovery: OIDC and RFC 8414 documents', async (t) => {
  const oidc: unknown = await (await fetch(`${url}/.well-known/openid-configuration`)).json()
  const oauth: unknown = await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json()
  t.same(oauth, oidc, 'the same document at both')
  t.match(oidc, {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ['password', TOKEN_EXCHANGE],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    id_token_signing_alg_values_supported: ['ES256'],
    identity_chaining_requested_token_types_supported: [ID_JAG],
    subject_types_supported: ['public'],
    response_types_supported: ['code'],
  })
  const authorize = await fetch(`${url}/authorize?client_id=demo-client&response_type=code`, { redirect: 'manual' })
  t.equal(authorize.status, 400, 'an authorization request without a valid redirect URI is answered with a page…')
  t.equal(authorize.headers.get('location'), null, '…and redirects nowhere')
})

t.test('JWKS: public keys only', async (t) => {
  const response = await fetch(`${url}/jwks`)
  t.match(response.headers.get('content-type'), /^application\/jwk-set\+json/)
  const set = await jwks()
  t.equal(set.keys.length, 1)
  t.match(set.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: /^[A-Za-z0-9_-]{43}$/ })
  t.notOk(set.keys.some((key) => 'd' in key), 'no private member')
})

t.test('password grant', async (t) => {
  const good = await postToken(url, { grant_type: 'password', username: 'alice', password: 'alice-pw-1', nonce: 'n-1' }, { authorization: DEMO })
  t.equal(good.status, 200)
  t.equal(good.headers.get('cache-control'), 'no-store')
  t.match(good.body, { token_type: 'Bearer', expires_in: 600 })
  const idToken = String(good.body['id_token'])
  t.not(good.body['access_token'], idToken, 'the access token is not the ID token')
  t.match(good.body['access_token'], /^[A-Za-z0-9_-]{43}$/, 'an opaque random string')
  const { payload, protectedHeader } = await jwtVerify(idToken, createLocalJWKSet(await jwks()), { issuer, audience: 'demo-client', typ: 'JWT' })
  t.match(protectedHeader, { alg: 'ES256', typ: 'JWT', kid: String((await jwks()).keys[0]?.kid) })
  t.match(payload, { sub: /^u_/, email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['eng'], nonce: 'n-1' })
  t.equal(Number(payload.exp) - Number(payload.iat), 600)
  t.equal(payload.auth_time, payload.iat)
  t.ok(Math.abs(Number(payload.iat) - now()) <= 5)

  const post = await postToken(url, { grant_type: 'password', username: 'bob', password: 'bob-pw-2', client_id: 'other-client', client_secret: 'other-secret-8' })
  t.equal(post.status, 200, 'client_secret_post works too')
  t.match(await jwtVerify(String(post.body['id_token']), createLocalJWKSet(await jwks()), { audience: 'other-client' }), { payload: { groups: ['sales'] } })

  for (const [name, username, password] of [['wrong password', 'alice', 'bob-pw-2'], ['unknown user', 'mallory', 'alice-pw-1']] as const) {
    const refused = await postToken(url, { grant_type: 'password', username, password }, { authorization: DEMO })
    t.equal(refused.status, 400, name)
    t.same(refused.body, { error: 'invalid_grant', error_description: 'the username or password is wrong' }, `${name}: the same answer`)
  }
  const missing = await postToken(url, { grant_type: 'password', username: 'alice' }, { authorization: DEMO })
  t.match(missing, { status: 400, body: { error: 'invalid_request' } }, 'password is required')
})

t.test('token exchange: an ID-JAG, verifiable against the JWKS', async (t) => {
  const idToken = await login('alice', 'alice-pw-1')
  const response = await postToken(url, {
    grant_type: TOKEN_EXCHANGE,
    requested_token_type: ID_JAG,
    subject_token: idToken,
    subject_token_type: ID_TOKEN,
    audience: TEST_AUDIENCE,
    resource: RESOURCE,
    scope: 'tools.read tools.write tools.admin',
  }, { authorization: DEMO })
  t.equal(response.status, 200, response.text)
  t.equal(response.headers.get('cache-control'), 'no-store')
  t.match(response.body, { issued_token_type: ID_JAG, token_type: 'N_A', expires_in: 300, scope: 'tools.read tools.write' })
  const idJag = String(response.body['access_token'])
  const { payload, protectedHeader } = await jwtVerify(idJag, createLocalJWKSet(await jwks()), {
    issuer,
    audience: TEST_AUDIENCE,
    typ: 'oauth-id-jag+jwt',
    algorithms: ['ES256'],
    requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
  })
  t.match(protectedHeader, { alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: /./ })
  const { payload: idClaims } = await jwtVerify(idToken, createLocalJWKSet(await jwks()))
  t.same(Object.keys(payload).sort(), ['aud', 'client_id', 'email', 'exp', 'groups', 'iat', 'iss', 'jti', 'resource', 'scope', 'sub'])
  t.match(payload, {
    iss: issuer,
    sub: idClaims.sub,
    aud: TEST_AUDIENCE,
    client_id: 'demo-client',
    resource: RESOURCE,
    scope: 'tools.read tools.write',
    email: 'alice@example.com',
    groups: ['eng'],
    jti: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  })
  t.equal(Number(payload.exp) - Number(payload.iat), 300, 'lifetime: idJagTtlSeconds')
  t.ok(Math.abs(Number(payload.iat) - now()) <= 5)

  const again = await postToken(url, {
    grant_type: TOKEN_EXCHANGE,
    requested_token_type: ID_JAG,
    subject_token: await login('bob', 'bob-pw-2', clientBasicAuth('other-client', 'other-secret-8')),
    subject_token_type: ID_TOKEN,
    audience: `${TEST_AUDIENCE}/`,
  }, { authorization: clientBasicAuth('other-client', 'other-secret-8') })
  t.equal(again.status, 200, again.text)
  const second = (await jwtVerify(String(again.body['access_token']), createLocalJWKSet(await jwks()))).payload
  t.match(second, { aud: TEST_AUDIENCE, client_id: 'other-at-as', resource: RESOURCE, scope: 'tools.read', groups: ['sales'] },
    'idJagClientId; the audience in the policy spelling; the one reachable resource; all policy scopes')
  t.not(second.jti, payload.jti, 'a fresh jti')
  t.ok(started.logs.some((line) => line['msg'] === 'issued an ID-JAG' && line['jti'] === payload.jti), 'issuance is logged by jti')
})

t.test('the MCP SDK (client_secret_post, resource) gets an ID-JAG', async (t) => {
  const idToken = await login('alice', 'alice-pw-1')
  const result = await discoverAndRequestJwtAuthGrant({
    idpUrl: issuer, audience: TEST_AUDIENCE, resource: RESOURCE, idToken, clientId: 'demo-client', clientSecret: 'demo-secret-9', scope: 'tools.read',
  })
  t.match(result, { expiresIn: 300, scope: 'tools.read' })
  const { payload } = await jwtVerify(result.jwtAuthGrant, createLocalJWKSet(await jwks()), { issuer, audience: TEST_AUDIENCE, typ: 'oauth-id-jag+jwt' })
  t.match(payload, { resource: RESOURCE, scope: 'tools.read', client_id: 'demo-client' })
  await t.rejects(discoverAndRequestJwtAuthGrant({
    idpUrl: issuer, audience: TEST_AUDIENCE, resource: RESOURCE, idToken: await login('bob', 'bob-pw-2'), clientId: 'demo-client', clientSecret: 'demo-secret-9', scope: 'tools.write',
  }), /invalid_scope/, 'and reads its refusals')
})

t.test('an RS256 IdP', async (t) => {
  const rsa = await startDevIdp(`${testIdpYaml()}\nsigning: { alg: RS256 }\n`)
  t.teardown(() => rsa.close())
  const set: unknown = await (await fetch(`${rsa.url}/jwks`)).json()
  const idToken = String((await postToken(rsa.url, { grant_type: 'password', username: 'alice', password: 'alice-pw-1' }, { authorization: DEMO })).body['id_token'])
  t.equal(decodeProtectedHeader(idToken).alg, 'RS256')
  await jwtVerify(idToken, createLocalJWKSet(set as JSONWebKeySet), { algorithms: ['RS256'], issuer: rsa.issuer })
})

t.test('no log line holds a password, secret or token', async (t) => {
  const tokens = started.rawLogs.join('\n').match(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g)
  t.same(tokens, null, 'no JWT')
  for (const secret of TEST_SECRETS) t.notOk(started.rawLogs.some((line) => line.includes(secret)), `not ${secret}`)
})
