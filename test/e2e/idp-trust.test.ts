// Trusted-IdP keys over real HTTP: rotation (an unknown kid triggers one refetch), an IdP outage
// (cached keys keep working), no key at all (503 temporarily_unavailable, fast), discovery (the
// document's issuer must match), and the other client authentication methods.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose'
import { startGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { withFreePorts } from '../helpers/ports.ts'
import { clientBasicAuth } from '../helpers/basic-auth.ts'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** A tiny real IdP key server whose JWKS, discovery document and availability the test controls. */
async function keyServer (): Promise<{ url: string, keys: JWK[], hits: { jwks: number }, down: boolean, discoveryIssuer: string | undefined, close (): Promise<void> }> {
  const state = { keys: [] as JWK[], hits: { jwks: 0 }, down: false, discoveryIssuer: undefined as string | undefined, url: '', close: async () => {} }
  const server: Server = createServer((req, res) => {
    if (state.down) { res.writeHead(503).end(); return }
    if (req.url === '/jwks') {
      state.hits.jwks++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
      return
    }
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: state.discoveryIssuer ?? state.url, jwks_uri: `${state.url}/jwks` }))
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.close = async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) }
  return state
}

async function signer (kid: string): Promise<{ jwk: JWK, sign (claims: Record<string, unknown>): Promise<string> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  return {
    jwk: { ...await exportJWK(publicKey), kid, alg: 'ES256' },
    sign: async (claims) => await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'oauth-id-jag+jwt' }).setIssuedAt().setExpirationTime('5m').setJti(randomUUID()).sign(privateKey),
  }
}

const direct = await keyServer()
const discovered = await keyServer()
const wrongIssuer = await keyServer()
const neverUp = await keyServer()
neverUp.down = true
wrongIssuer.discoveryIssuer = 'https://someone-else.example'
const upstream = await startRecordingUpstream()
const clientKey = await generateKeyPair('ES256')
const clientJwk = { ...await exportJWK(clientKey.publicKey), kid: 'client-key-1', alg: 'ES256' }
// publicUrl names the gateway's own port
const gw = await withFreePorts(1, async (port) => await startGateway(`
publicUrl: http://127.0.0.1:${port}
authorization:
  clients:
    - { clientId: c, auth: client_secret_basic, secret: "\${SECRET}" }
    - { clientId: p, auth: client_secret_post, secret: "\${SECRET}" }
    - clientId: k
      auth: private_key_jwt
      jwks: { keys: [${JSON.stringify(clientJwk)}] }
  identityProviders:
    - { issuer: ${direct.url}, jwksUri: ${direct.url}/jwks, algorithms: [ES256] }
    - { issuer: ${discovered.url}, algorithms: [ES256] }
    - { issuer: ${wrongIssuer.url}, algorithms: [ES256] }
    - { issuer: ${neverUp.url}, jwksUri: ${neverUp.url}/jwks, algorithms: [ES256] }
servers:
  s:
    upstream: { url: ${upstream.url} }
    scopes: [read, write]
    tools: [{ allow: ["*"] }]
`, { SECRET: 'client-secret-0123456789' }, { port, deps: { idpKeys: { cooldownMs: 400 } } }))
const issuer = gw.url
t.teardown(async () => {
  await gw.close()
  for (const s of [direct, discovered, wrongIssuer, neverUp]) await s.close()
  await upstream.close()
})

const claims = (iss: string, client = 'c'): Record<string, unknown> => ({ iss, sub: 'u1', aud: issuer, client_id: client, resource: `${issuer}/mcp/s`, scope: 'read write' })
async function redeem (assertion: string, extra: Record<string, string> = {}, auth: Record<string, string> = { authorization: clientBasicAuth('c', 'client-secret-0123456789') }): Promise<{ status: number, body: Record<string, unknown> }> {
  const started = Date.now()
  const res = await request(`${gw.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth }, body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...extra }).toString() })
  const body = await res.body.json() as Record<string, unknown>
  return { status: res.statusCode, body: { ...body, ms: Date.now() - started } }
}

t.test('key rotation: an unknown kid triggers one refetch; then the cooldown limits refetches', async (t) => {
  const k1 = await signer('k1')
  direct.keys = [k1.jwk]
  t.equal((await redeem(await k1.sign(claims(direct.url)))).status, 200, 'first key works')
  const fetches = direct.hits.jwks
  const k2 = await signer('k2')
  direct.keys = [k1.jwk, k2.jwk]
  await new Promise((resolve) => setTimeout(resolve, 500)) // past the (test-shortened) refetch cooldown
  t.equal((await redeem(await k2.sign(claims(direct.url)))).status, 200, 'a rotated-in key is found by one refetch')
  t.equal(direct.hits.jwks, fetches + 1, 'exactly one refetch')
  const unknown = await signer('k3')
  const res = await redeem(await unknown.sign(claims(direct.url)))
  t.equal(res.status, 400)
  t.equal(res.body.error, 'invalid_grant')
  t.equal(direct.hits.jwks, fetches + 1, 'an unknown kid within the cooldown does not hammer the IdP')
})

t.test('an IdP outage: cached keys keep working, unknown keys are still refused', async (t) => {
  const k = await signer('outage-key')
  direct.keys = [k.jwk]
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal((await redeem(await k.sign(claims(direct.url)))).status, 200, 'the key is fetched while the IdP is up')
  direct.down = true
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal((await redeem(await k.sign(claims(direct.url)))).status, 200, 'with the IdP down, the cached key still verifies')
  const stranger = await signer('never-published')
  const res = await redeem(await stranger.sign(claims(direct.url)))
  t.equal(res.status, 400, 'an unknown kid during the outage is invalid_grant, not an error')
  t.equal(res.body.error, 'invalid_grant')
  direct.down = false
})

t.test('no usable key: 503 temporarily_unavailable, fast', async (t) => {
  const k = await signer('x')
  const res = await redeem(await k.sign(claims(neverUp.url)))
  t.equal(res.status, 503)
  t.equal(res.body.error, 'temporarily_unavailable')
  const again = await redeem(await k.sign(claims(neverUp.url)))
  t.equal(again.status, 503)
  t.ok(Number(again.body.ms) < 1000, `the second attempt fails fast (${String(again.body.ms)} ms) instead of waiting on the dead IdP`)
})

const d1 = await signer('d1')
discovered.keys = [d1.jwk]

t.test('keys from the issuer\'s discovery document; a document naming another issuer is refused', async (t) => {
  const k = d1
  const ok = await redeem(await k.sign(claims(discovered.url)))
  t.equal(ok.status, 200, 'discovered jwks_uri is used')
  t.equal(ok.body.scope, 'read write')
  const w = await signer('w1')
  wrongIssuer.keys = [w.jwk]
  const bad = await redeem(await w.sign(claims(wrongIssuer.url)))
  t.equal(bad.status, 503, 'a discovery document for another issuer yields no keys')
  t.equal(bad.body.error, 'temporarily_unavailable')
})

t.test('scope: requested ⊂ ID-JAG scope is narrowed; none requested gets the ID-JAG\'s', async (t) => {
  const k = d1
  t.equal((await redeem(await k.sign(claims(discovered.url)), { scope: 'read' })).body.scope, 'read')
  t.equal((await redeem(await k.sign({ ...claims(discovered.url), scope: 'read admin' }))).body.scope, 'read', 'scopes the server does not have are dropped')
  t.equal((await redeem(await k.sign({ ...claims(discovered.url), scope: undefined }))).body.scope, 'read write', 'no scope claim: all server scopes')
})

t.test('client_secret_post and private_key_jwt', async (t) => {
  const k = d1
  const post = await redeem(await k.sign(claims(discovered.url, 'p')), { client_id: 'p', client_secret: 'client-secret-0123456789' }, {})
  t.equal(post.status, 200, 'client_secret_post')
  const clientAssertion = async (aud: string): Promise<string> => await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'client-key-1' }).setIssuer('k').setSubject('k').setAudience(aud)
    .setIssuedAt().setExpirationTime('1m').setJti(randomUUID()).sign(clientKey.privateKey)
  const ca = await clientAssertion(`${issuer}/oauth/token`)
  const form = { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: ca }
  const jwt = await redeem(await k.sign(claims(discovered.url, 'k')), form, {})
  t.equal(jwt.status, 200, 'private_key_jwt')
  const replay = await redeem(await k.sign(claims(discovered.url, 'k')), form, {})
  t.equal(replay.status, 401, 'a replayed client assertion is refused')
  t.equal(replay.body.error, 'invalid_client')
  const otherAud = await redeem(await k.sign(claims(discovered.url, 'k')), { ...form, client_assertion: await clientAssertion('https://other-as.example/token') }, {})
  t.equal(otherAud.body.error, 'invalid_client', 'a client assertion for another AS is refused')
})

t.test('JWKS fetches are counted by issuer and outcome', async (t) => {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.match(text, `portcullis_jwks_fetches_total{issuer="${direct.url}",outcome="success"}`)
  t.match(text, `portcullis_jwks_fetches_total{issuer="${neverUp.url}",outcome="failure"}`)
  const lastSuccess = (issuer: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`portcullis_jwks_last_success_timestamp_seconds{issuer="${issuer}"}`))
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  const seconds = lastSuccess(direct.url)
  t.ok(seconds !== undefined && seconds > Date.now() / 1000 - 600 && seconds <= Date.now() / 1000 + 1, `the last successful key fetch of ${direct.url} is recent (${seconds})`)
  t.equal(lastSuccess(neverUp.url), undefined, 'an IdP whose keys were never fetched has no last success')
})
