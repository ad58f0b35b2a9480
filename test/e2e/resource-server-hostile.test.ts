// The resource-server check on every MCP request (protocol.md §7.3, B1–B4): each row sends a
// request with a missing, malformed or foreign credential and asserts the status, the RFC 6750
// challenge (with the RFC 9728 resource_metadata URL) and that nothing reached the upstream.
import t from 'tap'
import { request } from 'undici'
import { SignJWT, generateKeyPair } from 'jose'
import { startEmaStack } from '../helpers/ema.ts'
import { POST_HEADERS } from '../helpers/raw-mcp.ts'

const stack = await startEmaStack()
t.teardown(() => stack.close())
const url = stack.gw.mcpUrl('tools')
const prm = `${stack.issuer}/.well-known/oauth-protected-resource/mcp/tools`
const valid = await stack.accessToken('alice')
const forOther = (await stack.redeem({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: await stack.idJag('alice', { resource: stack.otherResource }) })).body.access_token as string
const stranger = await generateKeyPair('ES256')
const ours = stack.gw.gateway.auth.keys.current

/** A token signed with the gateway's own current key, with these claims and header changes. */
async function forge (claims: Record<string, unknown>, header: Record<string, unknown> = {}, key = ours.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ client_id: 'mcp-client', scope: 'tools.read', idp_iss: stack.idp.issuer, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: ours.kid, typ: 'at+jwt', ...header })
    .setIssuer(String(claims.iss ?? stack.issuer)).setSubject('alice-sub').setAudience((claims.aud as string | string[] | undefined) ?? stack.resource)
    .setJti(crypto.randomUUID()).setIssuedAt(Number(claims.iat ?? now)).setExpirationTime(Number(claims.exp ?? now + 300))
    .sign(key)
}

const body = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
const now = Math.floor(Date.now() / 1000)

interface Row { name: string, method?: 'POST' | 'GET' | 'DELETE', auth?: string, path?: string, status: number, error?: string }
const bearer = (token: string): string => `Bearer ${token}`
const rows: Row[] = [
  { name: 'no Authorization', status: 401 },
  { name: 'no Authorization on GET', method: 'GET', status: 401 },
  { name: 'no Authorization on DELETE', method: 'DELETE', status: 401 },
  { name: 'Basic credentials', auth: 'Basic YTpi', status: 400, error: 'invalid_request' },
  { name: 'Bearer with an empty token', auth: 'Bearer ', status: 400, error: 'invalid_request' },
  { name: 'Bearer with two tokens', auth: `Bearer ${valid} ${valid}`, status: 400, error: 'invalid_request' },
  { name: 'a token in the query string', path: `?access_token=${valid}`, status: 400, error: 'invalid_request' },
  { name: 'a valid header token plus a query token', auth: bearer(valid), path: `?access_token=${valid}`, status: 400, error: 'invalid_request' },
  { name: 'a token for another MCP server', auth: bearer(forOther), status: 401, error: 'invalid_token' },
  { name: 'an expired gateway token', auth: bearer(await forge({ iat: now - 900, exp: now - 600 })), status: 401, error: 'invalid_token' },
  { name: 'signed by another key', auth: bearer(await forge({}, {}, stranger.privateKey)), status: 401, error: 'invalid_token' },
  { name: 'alg none', auth: bearer(`${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: stack.issuer, aud: stack.resource, sub: 'x', exp: now + 60 })).toString('base64url')}.`), status: 401, error: 'invalid_token' },
  { name: 'typ JWT instead of at+jwt', auth: bearer(await forge({}, { typ: 'JWT' })), status: 401, error: 'invalid_token' },
  { name: 'another issuer, our key', auth: bearer(await forge({ iss: 'https://evil.example' })), status: 401, error: 'invalid_token' },
  { name: 'aud array containing ours', auth: bearer(await forge({ aud: [stack.resource, stack.otherResource] })), status: 401, error: 'invalid_token' },
  { name: 'aud with a trailing slash', auth: bearer(await forge({ aud: `${stack.resource}/` })), status: 401, error: 'invalid_token' },
  { name: 'an ID-JAG as the access token', auth: bearer(await stack.mintIdJag()), status: 401, error: 'invalid_token' },
  { name: 'an IdP ID token as the access token', auth: bearer(await stack.idToken('alice')), status: 401, error: 'invalid_token' },
  { name: 'garbage', auth: 'Bearer abc.def.ghi', status: 401, error: 'invalid_token' },
]

t.ok(rows.length >= 15, `${rows.length} rows`)
for (const row of rows) {
  t.test(row.name, async (t) => {
    const before = stack.upstream.requests.length
    const method = row.method ?? 'POST'
    const res = await request(`${url}${row.path ?? ''}`, {
      method,
      headers: { ...(method === 'POST' ? POST_HEADERS : { accept: 'text/event-stream' }), ...(row.auth === undefined ? {} : { authorization: row.auth }) },
      ...(method === 'POST' ? { body } : {}),
    })
    await res.body.dump()
    t.equal(res.statusCode, row.status, `HTTP ${row.status}`)
    const challenge = String(res.headers['www-authenticate'])
    t.match(challenge, /^Bearer /)
    t.ok(challenge.includes(`resource_metadata="${prm}"`), 'points at the protected-resource metadata')
    if (row.error === undefined) t.notMatch(challenge, /error=/, 'no error code when no credentials were sent (RFC 6750 §3)')
    else t.match(challenge, `error="${row.error}"`)
    t.equal(stack.upstream.requests.length, before, 'nothing reached the upstream')
  })
}

t.test('control: the valid token passes, lowercase scheme too', async (t) => {
  for (const auth of [`Bearer ${valid}`, `bearer ${valid}`]) {
    const res = await request(url, { method: 'POST', headers: { ...POST_HEADERS, authorization: auth }, body })
    await res.body.dump()
    t.equal(res.statusCode, 200)
  }
})

t.test('validations are counted by result and reason', async (t) => {
  const text = await (await request(`${stack.gw.adminUrl}/metrics`)).body.text()
  t.match(text, /portcullis_access_token_validations_total\{result="invalid",reason="audience_mismatch"\} \d+/)
  t.match(text, /portcullis_access_token_validations_total\{result="valid",reason=""\} \d+/)
  t.match(text, /portcullis_access_token_validations_total\{result="missing",reason="no_token"\} \d+/)
})
