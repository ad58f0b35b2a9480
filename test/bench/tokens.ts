/**
 * Tokens for the features section of `npm run bench` (features.ts), obtained the way a client
 * gets them (EMA, design.md §5) and minted in bulk with the same code the gateway uses:
 *   - the dev IdP (src/dev-idp) runs in the bench process; the gateway trusts it (discovery +
 *     JWKS over HTTP, fetched once);
 *   - one access token goes through the whole real flow: IdP password grant → ID token → IdP
 *     token exchange → ID-JAG → the gateway's POST /oauth/token (jwt-bearer, client_secret_basic);
 *   - ID-JAGs for the token-endpoint run are signed with the IdP's key (`idp.signIdJag`, the
 *     claims of test/helpers/ema.ts mintIdJag: fresh jti, iat now, exp +300 s);
 *   - access tokens for the "new token on every request" run are minted with the gateway's own
 *     `issueAccessToken` and the gateway's signing keys (a key file written by
 *     `portcullis keys generate` and loaded by the gateway through `authorization.signingKeys`),
 *     with the identity claims of the real-flow token: each differs only in jti, idp_jti, iat, exp.
 */
import { randomUUID } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { decodeJwt, type JWTPayload } from 'jose'
import { buildDevIdp, parseDevIdpConfig, type DevIdp } from '../../src/dev-idp/index.ts'
import { loadSigningKeys } from '../../src/authorization-server/keys.ts'
import { issueAccessToken } from '../../src/authorization-server/issue-access-token.ts'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
export const CLIENT = { id: 'bench-client', secret: 'bench-client-secret-0123456789abcdef' }
const IDP_CLIENT = { id: 'bench-idp-client', secret: 'bench-idp-client-secret-0123456789' }
export const USER = { username: 'alice', password: 'alice-bench-pw', email: 'alice@example.com', groups: ['eng'] }
export const SCOPE = 'tools.read'

export function basic (id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
}

/** `portcullis keys generate` (a current and a next ES256 key) into `file`, mode 0600. */
export function generateSigningKeys (node: string, root: string, file: string): void {
  const r = spawnSync(node, [join(root, 'bin/portcullis.js'), 'keys', 'generate'], { cwd: root, encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`portcullis keys generate failed (exit ${r.status ?? r.signal}): ${r.stderr}`)
  writeFileSync(file, r.stdout, { mode: 0o600 })
}

export interface BenchIdp {
  readonly idp: DevIdp
  readonly issuer: string
  /** the full EMA client flow for USER: password grant → ID token → token exchange → ID-JAG */
  idJagViaExchange (): Promise<string>
  /** `n` fresh ID-JAGs signed with the IdP's key (claims as test/helpers/ema.ts mintIdJag) */
  mintIdJags (n: number): Promise<string[]>
  close (): Promise<void>
}

/** The dev IdP on 127.0.0.1:`port`, with a policy granting USER `tools.read` on `resource` of `audience`. */
export async function startBenchIdp (port: number, audience: string, resource: string): Promise<BenchIdp> {
  const issuer = `http://127.0.0.1:${port}`
  const idp = await buildDevIdp(parseDevIdpConfig(`
issuer: ${issuer}
listen: { host: 127.0.0.1, port: ${port} }
users:
  - { username: ${USER.username}, password: ${USER.password}, email: ${USER.email}, groups: [${USER.groups.join(', ')}] }
clients:
  - { clientId: ${IDP_CLIENT.id}, secret: ${IDP_CLIENT.secret}, idJagClientId: ${CLIENT.id} }
policy:
  - { audience: ${audience}, resources: [${resource}], groups: [eng], scopes: [${SCOPE}] }
`, { source: '<bench idp>', env: {} }), { logger: false })
  await idp.listen()
  const idpToken = async (form: Record<string, string>): Promise<Record<string, unknown>> => {
    const res = await request(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(IDP_CLIENT.id, IDP_CLIENT.secret) },
      body: new URLSearchParams(form).toString(),
    })
    const body = await res.body.json() as Record<string, unknown>
    if (res.statusCode !== 200) throw new Error(`dev IdP /token (${form.grant_type}) answered ${res.statusCode}: ${JSON.stringify(body)}`)
    return body
  }
  return {
    idp,
    issuer,
    async idJagViaExchange () {
      const { id_token: idToken } = await idpToken({ grant_type: 'password', username: USER.username, password: USER.password, scope: 'openid' })
      if (typeof idToken !== 'string') throw new Error('dev IdP password grant returned no id_token')
      const { access_token: idJag } = await idpToken({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
        subject_token: idToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        audience,
        resource,
        scope: SCOPE,
      })
      if (typeof idJag !== 'string') throw new Error('dev IdP token exchange returned no ID-JAG')
      return idJag
    },
    async mintIdJags (n) {
      const now = Math.floor(Date.now() / 1000)
      return await inBatches(n, () => idp.signIdJag({
        iss: issuer,
        sub: 'alice-sub',
        aud: audience,
        client_id: CLIENT.id,
        jti: randomUUID(),
        iat: now,
        exp: now + 300,
        resource,
        scope: SCOPE,
        email: USER.email,
        groups: USER.groups,
      }))
    },
    close: () => idp.close(),
  }
}

/** The body of a jwt-bearer grant for `assertion` (client_secret_basic: the client is in the header). */
export function grantBody (assertion: string): string {
  return new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString()
}

/** Redeem one ID-JAG at the gateway's token endpoint; throws unless 200 with an access token. */
export async function redeem (gatewayUrl: string, assertion: string): Promise<{ token: string; body: Record<string, unknown> }> {
  const res = await request(`${gatewayUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CLIENT.id, CLIENT.secret) },
    body: grantBody(assertion),
  })
  const body = await res.body.json() as Record<string, unknown>
  if (res.statusCode !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`POST ${gatewayUrl}/oauth/token answered ${res.statusCode}: ${JSON.stringify(body).slice(0, 400)}`)
  }
  return { token: body.access_token, body }
}

const REGISTERED = new Set(['iss', 'aud', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp', 'nbf', 'idp_iss', 'idp_jti'])

/**
 * `n` access tokens like `template` (a token the gateway issued through the real flow), minted
 * with the gateway's issueAccessToken and signing keys: same issuer, subject, client, audience,
 * scope and identity claims; new jti and idp_jti each; lifetime `ttlSeconds`.
 */
export async function mintAccessTokens (keysFile: string, template: string, n: number, ttlSeconds: number): Promise<string[]> {
  const keys = await loadSigningKeys(keysFile)
  const p: JWTPayload = decodeJwt(template)
  const claims: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(p)) if (!REGISTERED.has(k)) claims[k] = v
  if (typeof p.iss !== 'string' || typeof p.sub !== 'string' || typeof p.aud !== 'string' || typeof p.client_id !== 'string' || typeof p.idp_iss !== 'string') {
    throw new Error(`the real-flow access token lacks iss/sub/aud/client_id/idp_iss: ${JSON.stringify(p)}`)
  }
  const grant = {
    subject: p.sub,
    clientId: p.client_id,
    resource: p.aud,
    scopes: typeof p.scope === 'string' ? p.scope.split(' ').filter((s) => s !== '') : [],
    idpIssuer: p.idp_iss,
    claims,
  }
  const issuer = p.iss
  return await inBatches(n, async () => (await issueAccessToken({ ...grant, assertionJti: randomUUID() }, keys, issuer, ttlSeconds)).token)
}

/**
 * `n` results of `make`, 64 in flight: jose signs through WebCrypto on libuv's thread pool, so
 * batches use both cores (≈ 70 µs per ES256 token here instead of ≈ 120 µs one at a time).
 */
async function inBatches (n: number, make: () => Promise<string>): Promise<string[]> {
  const out: string[] = []
  for (let done = 0; done < n; done += 64) {
    out.push(...await Promise.all(Array.from({ length: Math.min(64, n - done) }, make)))
  }
  return out
}

/** The claim names and values two tokens share or not (a check that minted tokens look like issued ones). */
export function claimDifferences (a: string, b: string): string[] {
  const pa = decodeJwt(a) as Record<string, unknown>
  const pb = decodeJwt(b) as Record<string, unknown>
  const volatile = new Set(['jti', 'idp_jti', 'iat', 'exp'])
  const diffs: string[] = []
  for (const k of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
    if (volatile.has(k)) continue
    if (JSON.stringify(pa[k]) !== JSON.stringify(pb[k])) diffs.push(`${k}: ${JSON.stringify(pa[k])} ≠ ${JSON.stringify(pb[k])}`)
  }
  if (Object.keys(pa).length !== Object.keys(pb).length) diffs.push(`claim sets differ: ${Object.keys(pa).join(',')} vs ${Object.keys(pb).join(',')}`)
  return diffs
}
