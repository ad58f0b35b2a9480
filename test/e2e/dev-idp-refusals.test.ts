/**
 * The dev IdP refuses what a real IdP refuses (design.md §8; protocol.md §1.3, §1.9): each row is
 * one request and the status and RFC 6749 §5.2 `error` it must get. Afterwards: no refusal and no
 * log line repeats a password, secret or token.
 */
import t from 'tap'
import { generateKeyPair, SignJWT } from 'jose'
import { clientBasicAuth } from '../helpers/basic-auth.ts'
import { postToken, startDevIdp, TEST_AUDIENCE, TEST_SECRETS, testIdpYaml, type TokenResponse } from '../helpers/dev-idp.ts'

const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag'
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const DEMO = clientBasicAuth('demo-client', 'demo-secret-9')
const FORM = 'application/x-www-form-urlencoded'

const started = await startDevIdp(testIdpYaml())
t.teardown(() => started.close())
const { url, issuer, idp } = started
const now = Math.floor(Date.now() / 1000)

async function login (username: string, password: string, auth: string): Promise<string> {
  const response = await postToken(url, { grant_type: 'password', username, password }, { authorization: auth })
  return String(response.body['id_token'])
}
const aliceToken = await login('alice', 'alice-pw-1', DEMO)
const bobToken = await login('bob', 'bob-pw-2', DEMO)
const aliceForOther = await login('alice', 'alice-pw-1', clientBasicAuth('other-client', 'other-secret-8'))
const aliceForOutsider = await login('alice', 'alice-pw-1', clientBasicAuth('outsider-client', 'outsider-secret-7'))
const aliceSub = String(JSON.parse(Buffer.from(aliceToken.split('.')[1] ?? '', 'base64url').toString())['sub'])
const idClaims = { iss: issuer, sub: aliceSub, aud: 'demo-client', iat: now, exp: now + 600 }
const stranger = await generateKeyPair('ES256')
const kid = String(idp.jwks.keys[0]?.kid)
const forged = await new SignJWT(idClaims).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(stranger.privateKey)
const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(idClaims)).toString('base64url')}.`
const idJag = await idp.signIdJag({ ...idClaims, aud: TEST_AUDIENCE, client_id: 'demo-client', jti: 'j-1' })
const subjectTokens = [aliceToken, bobToken, aliceForOther, aliceForOutsider, forged, idJag]

/** A valid exchange request; `patch` changes or (with undefined) drops parameters. */
function exchange (patch: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    grant_type: TOKEN_EXCHANGE,
    requested_token_type: ID_JAG,
    subject_token: aliceToken,
    subject_token_type: ID_TOKEN,
    audience: TEST_AUDIENCE,
    resource: `${TEST_AUDIENCE}/mcp/everything`,
    ...patch,
  }
  return Object.fromEntries(Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined))
}

/** `challenge`: the answer carries `WWW-Authenticate: Basic` (the client sent an Authorization header; RFC 6749 §5.2) */
type Row = readonly [name: string, send: () => Promise<TokenResponse>, status: number, error: string, challenge?: boolean]
/** `auth` null: no Authorization header */
const form = (body: Record<string, string>, auth: string | null = DEMO): Promise<TokenResponse> =>
  postToken(url, body, auth === null ? {} : { authorization: auth })
const withIdToken = async (claims: Record<string, unknown>): Promise<TokenResponse> =>
  await form(exchange({ subject_token: await idp.signIdToken({ ...idClaims, ...claims }) }))

const rows: Row[] = [
  // client authentication (EMA §7.7: required at the exchange)
  ['no client authentication', () => form(exchange(), null), 401, 'invalid_client'],
  ['client_id without a secret', () => form({ ...exchange(), client_id: 'demo-client' }, null), 401, 'invalid_client'],
  ['wrong secret (Basic)', () => form(exchange(), clientBasicAuth('demo-client', 'demo-secret-8')), 401, 'invalid_client', true],
  ['wrong secret (post)', () => form({ ...exchange(), client_id: 'demo-client', client_secret: 'nope' }, null), 401, 'invalid_client'],
  ['unknown client', () => form(exchange(), clientBasicAuth('mallory', 'demo-secret-9')), 401, 'invalid_client', true],
  ['two authentication methods', () => form({ ...exchange(), client_secret: 'demo-secret-9' }), 401, 'invalid_client', true],
  ['Basic and another client_id', () => form({ ...exchange(), client_id: 'other-client' }), 401, 'invalid_client', true],
  ['malformed Basic', () => form(exchange(), 'Basic not base64!'), 401, 'invalid_client', true],
  ['Bearer instead of Basic', () => form(exchange(), `Bearer ${aliceToken}`), 401, 'invalid_client', true],
  // the request itself (RFC 6749 §3.2)
  ['duplicate parameter', () => postToken(url, `${new URLSearchParams(exchange()).toString()}&audience=${encodeURIComponent(TEST_AUDIENCE)}`, { authorization: DEMO, 'content-type': FORM }), 400, 'invalid_request'],
  ['JSON body', () => postToken(url, JSON.stringify(exchange()), { authorization: DEMO, 'content-type': 'application/json' }), 400, 'invalid_request'],
  ['no body', () => postToken(url, '', { authorization: DEMO }), 400, 'invalid_request'],
  ['parameters in the URL', () => postToken(url, { grant_type: TOKEN_EXCHANGE }, {}, `/token?${new URLSearchParams({ ...exchange(), client_id: 'demo-client', client_secret: 'demo-secret-9' }).toString()}`), 400, 'invalid_request'],
  ['non-UTF-8 charset', () => postToken(url, new URLSearchParams(exchange()).toString(), { authorization: DEMO, 'content-type': `${FORM}; charset=iso-8859-1` }), 400, 'invalid_request'],
  ['no grant_type', () => form(exchange({ grant_type: undefined })), 400, 'invalid_request'],
  ['wrong grant_type', () => form(exchange({ grant_type: 'client_credentials' })), 400, 'unsupported_grant_type'],
  ['jwt-bearer is not the IdP\'s grant', () => form({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: idJag }), 400, 'unsupported_grant_type'],
  // token exchange parameters (protocol.md §1.3)
  ['wrong requested_token_type', () => form(exchange({ requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' })), 400, 'invalid_request'],
  ['no requested_token_type', () => form(exchange({ requested_token_type: undefined })), 400, 'invalid_request'],
  ['wrong subject_token_type', () => form(exchange({ subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' })), 400, 'invalid_request'],
  ['SAML subject_token_type', () => form(exchange({ subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' })), 400, 'invalid_request'],
  ['no subject_token', () => form(exchange({ subject_token: undefined })), 400, 'invalid_request'],
  ['no audience', () => form(exchange({ audience: undefined })), 400, 'invalid_request'],
  ['actor_token', () => form(exchange({ actor_token: aliceToken, actor_token_type: ID_TOKEN })), 400, 'invalid_request'],
  // the subject token (IETF ID-JAG §4.3.3)
  ['ID token of another client', () => form(exchange({ subject_token: aliceForOther })), 400, 'invalid_grant'],
  ['expired ID token', () => withIdToken({ iat: now - 1200, exp: now - 600 }), 400, 'invalid_grant'],
  ['ID token signed by another key', () => form(exchange({ subject_token: forged })), 400, 'invalid_grant'],
  ['unsigned ID token (alg none)', () => form(exchange({ subject_token: unsigned })), 400, 'invalid_grant'],
  ['ID token of another issuer', () => withIdToken({ iss: 'https://evil.example.com' }), 400, 'invalid_grant'],
  ['ID token for two audiences', () => withIdToken({ aud: ['demo-client', 'other-client'] }), 400, 'invalid_grant'],
  ['ID token issued in the future', () => withIdToken({ iat: now + 3600, exp: now + 4000 }), 400, 'invalid_grant'],
  ['ID token of an unknown subject', () => withIdToken({ sub: 'u_nobody' }), 400, 'invalid_grant'],
  ['an ID-JAG as the subject token', () => form(exchange({ subject_token: idJag })), 400, 'invalid_grant'],
  ['not a JWT', () => form(exchange({ subject_token: 'not-a-jwt' })), 400, 'invalid_grant'],
  // the policy (EMA §7.6.1: mismatched audience/resource pairs are refused)
  ['audience in no policy', () => form(exchange({ audience: 'https://other-as.example.com' })), 400, 'invalid_target'],
  ['resource not under that audience', () => form(exchange({ resource: 'https://other-as.example.com/mcp/everything' })), 400, 'invalid_target'],
  ['resource not a URI', () => form(exchange({ resource: 'mcp/everything' })), 400, 'invalid_target'],
  ['user not in the policy\'s groups', () => form(exchange({ subject_token: bobToken, resource: `${TEST_AUDIENCE}/mcp/eng-only` })), 400, 'access_denied'],
  ['user in no group', async () => form(exchange({ subject_token: await login('dave', 'dave-pw-3', DEMO) })), 400, 'access_denied'],
  ['client not in the policy\'s clients', () => form(exchange({ subject_token: aliceForOutsider, resource: `${TEST_AUDIENCE}/mcp/eng-only` }), clientBasicAuth('outsider-client', 'outsider-secret-7')), 400, 'access_denied'],
  ['scope outside the policy', () => form(exchange({ subject_token: bobToken, scope: 'tools.write' })), 400, 'invalid_scope'],
  ['malformed scope', () => form(exchange({ scope: 'tools.read  tools.write' })), 400, 'invalid_scope'],
]

const refusals: TokenResponse[] = []
for (const [name, send, status, error, challenge = false] of rows) {
  t.test(name, async (t) => {
    const response = await send()
    refusals.push(response)
    t.equal(response.status, status, response.text)
    t.equal(response.body['error'], error)
    t.same(Object.keys(response.body).sort(), ['error', 'error_description'])
    t.equal(response.headers.get('cache-control'), 'no-store')
    t.equal(response.headers.get('www-authenticate') ?? undefined, challenge ? 'Basic realm="portcullis-dev-idp", charset="UTF-8"' : undefined)
  })
}

t.test('no refusal and no log line holds a password, secret or token', async (t) => {
  t.ok(rows.length >= 15)
  const leaks = [...TEST_SECRETS, ...subjectTokens, forged.split('.')[2] ?? '', 'demo-secret-8']
  t.same(refusals.filter((response) => leaks.some((leak) => response.text.includes(leak))).map((r) => r.text), [], 'no refusal repeats one')
  const logs = started.rawLogs.join('\n')
  t.same(leaks.filter((leak) => logs.includes(leak)), [], 'none is logged (the query string of a refused URL neither)')
  t.notMatch(logs, /eyJ[A-Za-z0-9_-]{10,}/, 'no JWT logged')
  t.ok(started.logs.some((line) => line['msg'] === 'token request refused' && line['error'] === 'invalid_target'), 'refusals are logged by code')
})
