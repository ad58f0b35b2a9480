import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import type { JWTPayload } from 'jose'
import type { DevIdp } from '../../src/dev-idp/index.ts'
import { clientBasicAuth } from './basic-auth.ts'
import { startGateway, type StartedGateway } from './gateway.ts'
import { serversYaml, startIdpGatewayPair, type IdpGatewayPair } from './idp-gateway-pair.ts'
import type { RecordingUpstream } from './recording-upstream.ts'

export const CLIENT = { id: 'mcp-client', secret: 'mcp-client-secret-0123456789' }
export const IDP_CLIENT = { id: 'idp-client', secret: 'idp-client-secret-0123456789' }
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

export interface EmaStack {
  readonly idp: DevIdp
  readonly gw: StartedGateway
  readonly upstream: RecordingUpstream
  /** the gateway's issuer and the resource ids of its two servers */
  readonly issuer: string
  readonly resource: string
  readonly otherResource: string
  /** an ID token from the dev IdP's password grant */
  idToken (user: 'alice' | 'bob'): Promise<string>
  /** an ID-JAG from the dev IdP's token exchange, for the `tools` server */
  idJag (user: 'alice' | 'bob', opts?: { scope?: string, resource?: string }): Promise<string>
  /** an ID-JAG with exactly these claims (defaults for a valid one), signed with the dev IdP's key */
  mintIdJag (claims?: Partial<JWTPayload> & Record<string, unknown>, header?: Record<string, unknown>): Promise<string>
  /** the jwt-bearer grant at the gateway */
  redeem (form: Record<string, string>, auth?: 'basic' | 'post' | 'none'): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }>
  /** a gateway access token for `user` */
  accessToken (user: 'alice' | 'bob', scope?: string): Promise<string>
  close (): Promise<void>
}

/**
 * The dev IdP, a recording upstream and the gateway as its resource AS (idp-gateway-pair.ts).
 * `extraServers`: YAML appended to the gateway's `servers:` block.
 */
export async function startEmaStack (extraServers = ''): Promise<EmaStack> {
  const pair = await startIdpGatewayPair({
    idpYaml: ({ issuer }) => `
clients:
  - { clientId: ${IDP_CLIENT.id}, secret: ${IDP_CLIENT.secret}, idJagClientId: ${CLIENT.id} }
policy:
  - { audience: ${issuer}, resources: [${issuer}/mcp/tools], groups: [eng], scopes: [tools.read, tools.write] }
  - { audience: ${issuer}, resources: [${issuer}/mcp/tools], groups: [sales], scopes: [tools.read] }
  - { audience: ${issuer}, resources: [${issuer}/mcp/other], scopes: [other.read] }
`,
    startGateway: async ({ issuer, idpIssuer, gwPort, upstream }) => await startGateway(`
publicUrl: ${issuer}
authorization:
  accessTokenTtlSeconds: 300
  clients:
    - { clientId: ${CLIENT.id}, auth: client_secret_basic, secret: "\${CLIENT_SECRET}" }
    - { clientId: post-client, auth: client_secret_post, secret: "\${CLIENT_SECRET}" }
  identityProviders:
    - issuer: ${idpIssuer}
      algorithms: [ES256]
      claims: { groups: groups, email: email }
${serversYaml(upstream, '[{ allow: ["*"] }]')}${extraServers}`, { CLIENT_SECRET: CLIENT.secret }, { port: gwPort }),
  })
  return emaStackOf(pair)
}

function emaStackOf (pair: IdpGatewayPair): EmaStack {
  const { idp, gw, issuer, idpIssuer } = pair
  const idToken = async (user: 'alice' | 'bob'): Promise<string> => {
    const res = await request(`${idpIssuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(IDP_CLIENT.id, IDP_CLIENT.secret) },
      body: new URLSearchParams({ grant_type: 'password', username: user, password: `${user}-pw`, scope: 'openid' }).toString(),
    })
    const body = await res.body.json() as { id_token?: string }
    if (body.id_token === undefined) throw new Error(`password grant failed: ${res.statusCode}`)
    return body.id_token
  }
  const idJag = async (user: 'alice' | 'bob', opts: { scope?: string, resource?: string } = {}): Promise<string> => {
    const res = await request(`${idpIssuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(IDP_CLIENT.id, IDP_CLIENT.secret) },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
        subject_token: await idToken(user),
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        audience: issuer,
        resource: opts.resource ?? `${issuer}/mcp/tools`,
        ...(opts.scope === undefined ? {} : { scope: opts.scope }),
      }).toString(),
    })
    const body = await res.body.json() as { access_token?: string }
    if (body.access_token === undefined) throw new Error(`token exchange failed: ${res.statusCode} ${JSON.stringify(body)}`)
    return body.access_token
  }
  const mintIdJag = async (claims: Partial<JWTPayload> & Record<string, unknown> = {}, header?: Record<string, unknown>): Promise<string> => {
    const now = Math.floor(Date.now() / 1000)
    const full: Record<string, unknown> = {
      iss: idpIssuer,
      sub: 'alice-sub',
      aud: issuer,
      client_id: CLIENT.id,
      jti: randomUUID(),
      iat: now,
      exp: now + 300,
      resource: `${issuer}/mcp/tools`,
      scope: 'tools.read',
      email: 'alice@example.com',
      groups: ['eng'],
      ...claims,
    }
    for (const [k, v] of Object.entries(full)) if (v === undefined) delete full[k]
    return await idp.signIdJag(full as JWTPayload, header)
  }
  const redeem = async (form: Record<string, string>, auth: 'basic' | 'post' | 'none' = 'basic') => {
    const res = await request(`${gw.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth === 'basic' ? { authorization: clientBasicAuth(CLIENT.id, CLIENT.secret) } : {}) },
      body: new URLSearchParams({ ...(auth === 'post' ? { client_id: 'post-client', client_secret: CLIENT.secret } : {}), ...form }).toString(),
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, headers: res.headers }
  }
  return {
    idp,
    gw,
    upstream: pair.upstream,
    issuer,
    resource: pair.resource,
    otherResource: pair.otherResource,
    idToken,
    idJag,
    mintIdJag,
    redeem,
    async accessToken (user, scope) {
      const { body } = await redeem({ grant_type: JWT_BEARER, assertion: await idJag(user, scope === undefined ? {} : { scope }) })
      if (typeof body.access_token !== 'string') throw new Error(`redeem failed: ${JSON.stringify(body)}`)
      return body.access_token
    },
    close: () => pair.close(),
  }
}

/** Kept for test/soak/run.ts; tests import clientBasicAuth from basic-auth.ts. */
export { clientBasicAuth as basic } from './basic-auth.ts'
