// The tables of test/e2e/federated-hostile.test.ts: each hostile request, the exact error the
// gateway answers and the bounded reason it logs.
import { clientBasicAuth } from './basic-auth.ts'
import { validClaims, type MintContext } from './fake-oidc.ts'
import { PUBLIC_APP, WEB_APP, pkcePair, type FederatedStack, type LoginResult } from './federated.ts'

const R = PUBLIC_APP.redirectUri // http://127.0.0.1:9/callback

export const FEDERATED_CASES = {
  /** GET /oauth/authorize answered with a page: 400, no Location */
  page: [
    { name: 'unknown client', client: { id: 'nobody', redirectUri: R }, override: {}, error: 'invalid_client', reason: 'unknown_client' },
    { name: 'no client_id', override: { client_id: undefined }, error: 'invalid_request', reason: 'missing_client_id' },
    { name: 'no redirect_uri', override: { redirect_uri: undefined }, error: 'invalid_request', reason: 'missing_redirect_uri' },
    { name: 'redirect URI with an extra path', override: { redirect_uri: `${R}/extra` }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI with a trailing slash', override: { redirect_uri: `${R}/` }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI with a query', override: { redirect_uri: `${R}?next=evil` }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI with a fragment', override: { redirect_uri: `${R}#frag` }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI with userinfo', override: { redirect_uri: 'http://evil@127.0.0.1:9/callback' }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI at another host', override: { redirect_uri: 'http://evil.example:9/callback' }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI at another port', override: { redirect_uri: 'http://127.0.0.1:10/callback' }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI https instead of http', override: { redirect_uri: 'https://127.0.0.1:9/callback' }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect URI in another case', override: { redirect_uri: 'http://127.0.0.1:9/CALLBACK' }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'another client\'s redirect URI', override: { redirect_uri: WEB_APP.redirectUri }, error: 'invalid_request', reason: 'redirect_uri_mismatch' },
    { name: 'redirect_uri twice', override: {}, append: `&redirect_uri=${encodeURIComponent('http://evil.example/')}`, error: 'invalid_request', reason: 'duplicate_parameter' },
    { name: 'client_id twice', override: {}, append: '&client_id=web-app', error: 'invalid_request', reason: 'duplicate_parameter' },
  ] as Array<{ name: string, client?: { id: string, redirectUri: string }, override: Record<string, string | undefined>, append?: string, error: string, reason: string }>,

  /** GET /oauth/authorize answered with a 302 back to the validated redirect URI carrying `error` */
  redirect: [
    { name: 'PKCE missing', override: { code_challenge: undefined, code_challenge_method: undefined }, error: 'invalid_request', reason: 'pkce_required' },
    { name: 'PKCE method plain', override: { code_challenge_method: 'plain' }, error: 'invalid_request', reason: 'pkce_method_not_supported' },
    { name: 'PKCE method absent (plain by default)', override: { code_challenge_method: undefined }, error: 'invalid_request', reason: 'pkce_method_missing' },
    { name: 'PKCE challenge not S256-shaped', override: { code_challenge: 'short' }, error: 'invalid_request', reason: 'bad_code_challenge' },
    { name: 'response_type token', override: { response_type: 'token' }, error: 'unsupported_response_type', reason: 'unsupported_response_type' },
    { name: 'no resource', override: { resource: undefined }, error: 'invalid_target', reason: 'missing_resource' },
    { name: 'resource of no server here', override: { resource: 'https://elsewhere.example/mcp/tools' }, error: 'invalid_target', reason: 'resource_not_allowed' },
    { name: 'only scopes the server does not have', override: {}, scope: 'admin other.read', error: 'invalid_scope', reason: 'scope_not_allowed' },
  ] as Array<{ name: string, override: Record<string, string | undefined>, scope?: string, error: string, reason: string }>,

  /** the IdP's redirect to /oauth/callback, tampered with before the browser follows it */
  callback: [
    { name: 'IdP answered with an error', tamper: { error: 'access_denied', code: undefined }, reason: 'idp_error' },
    { name: 'IdP answer without a code', tamper: { code: undefined }, reason: 'idp_missing_code' },
    { name: 'IdP answer from another issuer (mix-up)', tamper: { iss: 'https://evil.example' }, reason: 'idp_issuer_mismatch' },
    { name: 'IdP answer without iss although the IdP sends it', tamper: { iss: undefined }, reason: 'idp_issuer_mismatch' },
    { name: 'a code the IdP never issued', tamper: { code: 'forged-idp-code' }, reason: 'idp_token_refused' },
  ] as Array<{ name: string, tamper: Record<string, string | undefined>, reason: string }>,

  /** POST /oauth/token with a fresh code and one thing wrong */
  token: [
    { name: 'no code_verifier', form: () => ({ code_verifier: undefined }), status: 400, error: 'invalid_request', reason: 'missing_code_verifier', stillRedeemable: true },
    { name: 'wrong code_verifier', form: () => ({ code_verifier: pkcePair().verifier }), status: 400, error: 'invalid_grant', reason: 'pkce_mismatch', stillRedeemable: true },
    { name: 'the code_challenge sent as verifier', form: (l: LoginResult) => ({ code_verifier: l.verifier.slice(0, 42) }), status: 400, error: 'invalid_grant', reason: 'pkce_mismatch', stillRedeemable: true },
    { name: 'no redirect_uri', form: () => ({ redirect_uri: undefined }), status: 400, error: 'invalid_request', reason: 'missing_redirect_uri', stillRedeemable: true },
    { name: 'another redirect_uri', form: () => ({ redirect_uri: `${R}/other` }), status: 400, error: 'invalid_grant', reason: 'redirect_uri_mismatch', stillRedeemable: true },
    { name: 'code at another client', form: () => ({ client_id: undefined }), auth: () => clientBasicAuth(WEB_APP.id, WEB_APP.secret), status: 400, error: 'invalid_grant', reason: 'client_mismatch', stillRedeemable: true },
    { name: 'code for another resource', form: (_l: LoginResult, s: FederatedStack) => ({ resource: s.otherResource }), status: 400, error: 'invalid_target', reason: 'resource_mismatch', stillRedeemable: true },
    { name: 'code for a resource of nobody', form: () => ({ resource: 'https://elsewhere.example/mcp' }), status: 400, error: 'invalid_target', reason: 'resource_not_allowed', stillRedeemable: true },
    { name: 'unknown code', form: () => ({ code: 'not-a-code' }), status: 400, error: 'invalid_grant', reason: 'unknown_code', stillRedeemable: true },
    { name: 'public client naming no client_id', form: () => ({ client_id: undefined }), status: 401, error: 'invalid_client', reason: 'no_client_auth', stillRedeemable: true },
  ] as Array<{ name: string, client?: { id: string, redirectUri: string }, form: (l: LoginResult, s: FederatedStack) => Record<string, string | undefined>, auth?: () => string, status: number, error: string, reason: string, stillRedeemable?: boolean }>,

  /** POST /oauth/register */
  registration: [
    { name: 'redirect host not allowed', body: { redirect_uris: ['https://evil.example/cb'], token_endpoint_auth_method: 'none' }, error: 'invalid_redirect_uri', reason: 'forbidden_redirect_uri' },
    { name: 'http redirect off loopback', body: { redirect_uris: ['http://localhost.evil.example/cb'], token_endpoint_auth_method: 'none' }, error: 'invalid_redirect_uri', reason: 'forbidden_redirect_uri' },
    { name: 'redirect URI with a fragment', body: { redirect_uris: ['http://127.0.0.1:7/cb#x'] }, error: 'invalid_redirect_uri', reason: 'forbidden_redirect_uri' },
    { name: 'no redirect_uris', body: { token_endpoint_auth_method: 'none' }, error: 'invalid_redirect_uri', reason: 'bad_redirect_uris' },
    { name: 'an existing client_id asked for', body: { client_id: PUBLIC_APP.id, redirect_uris: ['http://127.0.0.1:7/cb'] }, error: 'invalid_client_metadata', reason: 'refused_client_id' },
    { name: 'a client_secret of its choosing', body: { client_secret: 'chosen', redirect_uris: ['http://127.0.0.1:7/cb'] }, error: 'invalid_client_metadata', reason: 'refused_client_secret' },
    { name: 'private_key_jwt', body: { token_endpoint_auth_method: 'private_key_jwt', redirect_uris: ['http://127.0.0.1:7/cb'] }, error: 'invalid_client_metadata', reason: 'unsupported_auth_method' },
    { name: 'implicit only', body: { grant_types: ['implicit'], redirect_uris: ['http://127.0.0.1:7/cb'] }, error: 'invalid_client_metadata', reason: 'bad_grant_types' },
    { name: 'form-encoded body', contentType: 'application/x-www-form-urlencoded', body: { redirect_uris: ['http://127.0.0.1:7/cb'] }, error: 'invalid_client_metadata', reason: 'wrong_content_type' },
  ] as Array<{ name: string, body: Record<string, unknown>, contentType?: string, error: string, reason: string }>,

  /** client_id URLs (client ID metadata documents) that must not be fetched */
  cimd: [
    { name: 'CIMD at a loopback address', clientId: 'https://127.0.0.1/client.json', reason: 'cimd_forbidden_address' },
    { name: 'CIMD at a host resolving to loopback', clientId: 'https://localhost/client.json', reason: 'cimd_forbidden_address' },
    { name: 'CIMD at the cloud metadata address', clientId: 'https://169.254.169.254/latest/meta-data', reason: 'cimd_forbidden_address' },
    { name: 'CIMD at a private address', clientId: 'https://10.0.0.7/client.json', reason: 'cimd_forbidden_address' },
    { name: 'CIMD at IPv6 loopback', clientId: 'https://[::1]/client.json', reason: 'cimd_forbidden_address' },
    { name: 'CIMD at an IPv4-mapped IPv6 private address', clientId: 'https://[::ffff:c0a8:101]/client.json', reason: 'cimd_forbidden_address' },
    { name: 'CIMD URL without a path', clientId: 'https://client.example', reason: 'bad_client_id_url' },
    { name: 'CIMD URL with dot segments', clientId: 'https://client.example/a/../client.json', reason: 'bad_client_id_url' },
  ] as Array<{ name: string, clientId: string, reason: string }>,
}

const hs256 = (claims: object): string => [{ alg: 'HS256', typ: 'JWT', kid: 'fake-1' }, claims].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.') + '.c2ln'
const now = (): number => Math.floor(Date.now() / 1000)

/** What the (fake) trusted IdP returns as the ID token of a login, and why the gateway refuses it */
export const ID_TOKEN_CASES: Array<{ name: string, mint: (ctx: MintContext) => Promise<string>, reason: string }> = [
  { name: 'ID token from an untrusted issuer', mint: async (c) => await c.sign({ ...validClaims(c), iss: 'https://evil.example' }), reason: 'untrusted_issuer' },
  { name: 'ID token signed with a key the IdP never published', mint: async (c) => await c.signWithStrangerKey(validClaims(c)), reason: 'bad_signature' },
  { name: 'ID token of another login (nonce)', mint: async (c) => await c.sign({ ...validClaims(c), nonce: 'another-login' }), reason: 'nonce_mismatch' },
  { name: 'ID token without nonce', mint: async (c) => await c.sign({ ...validClaims(c), nonce: undefined }), reason: 'bad_nonce' },
  { name: 'ID token for another client', mint: async (c) => await c.sign({ ...validClaims(c), aud: 'someone-else' }), reason: 'audience_mismatch' },
  { name: 'ID token for several audiences, no azp', mint: async (c) => await c.sign({ ...validClaims(c), aud: [c.clientId, 'someone-else'] }), reason: 'audience_mismatch' },
  { name: 'expired ID token', mint: async (c) => await c.sign({ ...validClaims(c), iat: now() - 900, exp: now() - 600 }), reason: 'expired' },
  { name: 'ID token issued in the future', mint: async (c) => await c.sign({ ...validClaims(c), iat: now() + 3600, exp: now() + 7200 }), reason: 'bad_iat' },
  { name: 'ID token without sub', mint: async (c) => await c.sign({ ...validClaims(c), sub: undefined }), reason: 'bad_sub' },
  { name: 'an ID-JAG instead of an ID token', mint: async (c) => await c.sign(validClaims(c), { typ: 'oauth-id-jag+jwt' }), reason: 'wrong_typ' },
  { name: 'HS256 (a shared-secret algorithm)', mint: async (c) => hs256(validClaims(c)), reason: 'alg_not_allowed' },
  { name: 'unsigned (alg none)', mint: async (c) => hs256(validClaims(c)).replace(/^[^.]+/, Buffer.from('{"alg":"none"}').toString('base64url')).replace(/[^.]+$/, ''), reason: 'malformed_id_token' },
]
