import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose'

export interface MintContext {
  /** the nonce of the authorization request the gateway sent */
  readonly nonce: string
  readonly issuer: string
  readonly clientId: string
  /** signs with the provider's published key; `header` adds to `{alg: ES256, kid, typ: JWT}` */
  sign (claims: JWTPayload, header?: Record<string, unknown>): Promise<string>
  /** signs with a key the provider never published */
  signWithStrangerKey (claims: JWTPayload): Promise<string>
}

export interface FakeOidc {
  readonly issuer: string
  /** what /token answers with as `id_token`; default a valid ID token */
  mint: (ctx: MintContext) => Promise<string>
  /** extra query parameters /authorize adds to its redirect (e.g. `iss`), or replaces */
  callbackParams: Record<string, string | undefined>
  close (): Promise<void>
}

/**
 * A scriptable OpenID Provider for hostile ID-token cases: discovery, JWKS, an /authorize that
 * signs in at once, and a /token whose ID token the test writes (wrong issuer, nonce, audience,
 * key, type, expiry …). Everything else behaves as a real provider does.
 */
export async function startFakeOidc (clientId: string): Promise<FakeOidc> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const stranger = await generateKeyPair('ES256')
  const jwk = { ...await exportJWK(publicKey), kid: 'fake-1', alg: 'ES256', use: 'sig' }
  let lastNonce = ''
  const server: Server = createServer((req, res) => { void handle(req.method ?? '', req.url ?? '/', req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const sign = async (key: CryptoKey, kid: string, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> =>
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header }).sign(key)
  const fake: FakeOidc = {
    issuer,
    callbackParams: {},
    mint: async (ctx) => await ctx.sign(validClaims(ctx)),
    close: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) },
  }

  async function handle (method: string, url: string, req: NodeJS.ReadableStream, res: import('node:http').ServerResponse): Promise<void> {
    const u = new URL(url, issuer)
    const json = (status: number, body: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
    if (u.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, authorization_response_iss_parameter_supported: true })
    }
    if (u.pathname === '/jwks') return json(200, { keys: [jwk] })
    if (u.pathname === '/authorize') {
      lastNonce = u.searchParams.get('nonce') ?? ''
      const back = new URL(u.searchParams.get('redirect_uri') ?? '')
      const params: Record<string, string | undefined> = { code: 'fake-idp-code', state: u.searchParams.get('state') ?? undefined, iss: issuer, ...fake.callbackParams }
      for (const [name, value] of Object.entries(params)) if (value !== undefined) back.searchParams.set(name, value)
      res.writeHead(302, { location: back.href }).end()
      return
    }
    if (u.pathname === '/token' && method === 'POST') {
      for await (const _ of req) { /* drain */ }
      const ctx: MintContext = {
        nonce: lastNonce,
        issuer,
        clientId,
        sign: async (claims, header) => await sign(privateKey, 'fake-1', claims, header),
        signWithStrangerKey: async (claims) => await sign(stranger.privateKey, 'fake-1', claims),
      }
      return json(200, { id_token: await fake.mint(ctx), access_token: 'opaque', token_type: 'Bearer' })
    }
    json(404, { error: 'not_found' })
  }
  return fake
}

/** The claims of a valid ID token for this login. */
export function validClaims (ctx: MintContext): JWTPayload {
  const now = Math.floor(Date.now() / 1000)
  return { iss: ctx.issuer, sub: 'fake-user', aud: ctx.clientId, iat: now, exp: now + 300, nonce: ctx.nonce, email: 'fake@example.com', groups: ['eng'] }
}
