import { createHash, randomBytes } from 'node:crypto'
import type { DevIdp } from '../../src/dev-idp/index.ts'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway } from '../../src/gateway.ts'
import type { Store } from '../../src/store/store.ts'
import { clientBasicAuth } from './basic-auth.ts'
import { Browser, signIn } from './browser.ts'
import { startGateway, type StartedGateway } from './gateway.ts'
import { serversYaml, startIdpGatewayPair, type IdpGatewayPair } from './idp-gateway-pair.ts'
import { captureLogs } from './log-capture.ts'
import type { RecordingUpstream } from './recording-upstream.ts'

/** The gateway's OIDC client at the dev IdP. */
export const LOGIN_CLIENT = { id: 'portcullis', secret: 'portcullis-login-secret-0123456789' }
/** Pre-registered clients of the gateway: a public one and a confidential one, both with a redirect URI. */
export const PUBLIC_APP = { id: 'public-app', redirectUri: 'http://127.0.0.1:9/callback' }
export const WEB_APP = { id: 'web-app', secret: 'web-app-secret-0123456789', redirectUri: 'http://localhost:9/cb' }

export interface FederatedStack {
  readonly idp: DevIdp
  readonly gw: StartedGateway
  readonly upstream: RecordingUpstream
  readonly issuer: string
  readonly resource: string
  readonly otherResource: string
  /** every code, verifier and access token this helper handled, and the secrets: for "never logged" checks */
  readonly seen: string[]
  /** a login from the client's authorization request to the redirect back to it; throws if it stops elsewhere */
  codeFor (client: { id: string, redirectUri: string }, opts?: AuthorizeOptions & { user?: string, browser?: Browser }): Promise<LoginResult>
  /** the authorization URL at the gateway */
  authorizeUrl (client: { id: string, redirectUri: string }, opts?: AuthorizeOptions): string
  /** POST /oauth/token; `basic` authenticates as WEB_APP */
  token (form: Record<string, string>, authorization?: string): Promise<{ status: number, body: Record<string, unknown> }>
  close (): Promise<void>
}

export interface StackOptions {
  /** the gateway's store (a test may look into it); default: process memory */
  readonly store?: Store
  /** listen.trustProxy: addresses whose X-Forwarded-For the gateway believes */
  readonly trustProxy?: readonly string[]
  /** authorization.consent.rememberSeconds (default: the config default) */
  readonly consentRememberSeconds?: number
  /** authorization.rateLimits as YAML (default: the config default) */
  readonly oauthRateLimits?: string
}

export interface AuthorizeOptions {
  readonly challenge?: string
  readonly state?: string
  readonly resource?: string
  readonly scope?: string
  /** replaces or (value undefined) removes parameters */
  readonly override?: Record<string, string | undefined>
}

export interface LoginResult {
  readonly code: string
  readonly verifier: string
  readonly callback: URL
}

export function pkcePair (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/**
 * The dev IdP (with a client for the gateway's login), a recording upstream and the gateway with
 * the federated login on (idp-gateway-pair.ts).
 */
export async function startFederatedStack (registration = '{ dynamic: true, clientIdMetadataDocuments: true }', opts: StackOptions = {}): Promise<FederatedStack> {
  const pair = await startIdpGatewayPair({
    idpYaml: ({ issuer }) => `
clients:
  - { clientId: ${LOGIN_CLIENT.id}, secret: ${LOGIN_CLIENT.secret}, redirectUris: [${issuer}/oauth/callback] }
`,
    startGateway: async ({ issuer, idpIssuer, gwPort, upstream }) => await startGatewayWith(opts, `
publicUrl: ${issuer}
authorization:
  accessTokenTtlSeconds: 300
${opts.consentRememberSeconds === undefined ? '' : `  consent: { rememberSeconds: ${opts.consentRememberSeconds} }\n`}${opts.oauthRateLimits === undefined ? '' : `  rateLimits: ${opts.oauthRateLimits}\n`}  clients:
    - { clientId: ${PUBLIC_APP.id}, auth: none, redirectUris: ["${PUBLIC_APP.redirectUri}"] }
    - { clientId: ${WEB_APP.id}, auth: client_secret_basic, secret: "\${WEB_SECRET}", redirectUris: ["${WEB_APP.redirectUri}"] }
  identityProviders:
    - issuer: ${idpIssuer}
      algorithms: [ES256]
      claims: { groups: groups, email: email }
      login: { clientId: ${LOGIN_CLIENT.id}, clientSecret: "\${LOGIN_SECRET}" }
  registration: ${registration}
${serversYaml(upstream, `
      - allow: [echo, add]
      - allow: [secret]
        claims: { groups: [eng] }`)}`, { WEB_SECRET: WEB_APP.secret, LOGIN_SECRET: LOGIN_CLIENT.secret }, { port: gwPort }),
    closeConnections: true,
  })
  return federatedStackOf(pair)
}

function federatedStackOf (pair: IdpGatewayPair): FederatedStack {
  const { idp, gw, issuer } = pair
  const authorizeUrl = (client: { id: string, redirectUri: string }, opts: AuthorizeOptions = {}): string => {
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: client.id,
      redirect_uri: client.redirectUri,
      code_challenge: opts.challenge ?? pkcePair().challenge,
      code_challenge_method: 'S256',
      state: opts.state ?? 'client-state-1',
      resource: opts.resource ?? `${issuer}/mcp/tools`,
      ...(opts.scope === undefined ? {} : { scope: opts.scope }),
      ...opts.override,
    }
    const url = new URL(`${issuer}/oauth/authorize`)
    for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value)
    return url.href
  }
  const seen: string[] = [WEB_APP.secret, LOGIN_CLIENT.secret]
  return {
    idp,
    gw,
    upstream: pair.upstream,
    issuer,
    resource: pair.resource,
    otherResource: pair.otherResource,
    seen,
    authorizeUrl,
    async codeFor (client, opts = {}) {
      const { verifier, challenge } = pkcePair()
      const callback = await signIn(opts.browser ?? new Browser(), authorizeUrl(client, { challenge, ...opts }), opts.user ?? 'alice',
        (url) => url.startsWith(client.redirectUri))
      const code = callback.searchParams.get('code')
      if (code === null) throw new Error(`no code in the callback: ${callback.search}`)
      seen.push(code, verifier)
      return { code, verifier, callback }
    },
    async token (form, authorization) {
      const res = await fetch(`${issuer}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization === undefined ? {} : { authorization }) },
        body: new URLSearchParams(form).toString(),
      })
      const body = await res.json() as Record<string, unknown>
      if (typeof body.access_token === 'string') seen.push(body.access_token)
      return { status: res.status, body }
    },
    close: () => pair.close(),
  }
}

/** startGateway, or — for listen.trustProxy, which lives in the listen block it writes — the same by hand. */
async function startGatewayWith (opts: StackOptions, yaml: string, env: Record<string, string>, at: { port: number }): Promise<StartedGateway> {
  const deps = opts.store === undefined ? {} : { store: opts.store }
  if (opts.trustProxy === undefined) return await startGateway(yaml, env, { ...at, deps })
  const config = parseConfig(`${yaml}
listen: { host: 127.0.0.1, port: ${at.port}, trustProxy: ${JSON.stringify(opts.trustProxy)} }
admin: { host: 127.0.0.1, port: 0 }
`, { source: '<test>', env })
  const { stream, logs, rawLogs } = captureLogs()
  const gateway = buildGateway(config, { ...deps, logger: { level: 'debug', stream } })
  const { url, adminUrl } = await gateway.listen().catch(async (err: unknown) => {
    await gateway.close().catch(() => {})
    throw err
  })
  return { gateway, url, adminUrl, logs, rawLogs, mcpUrl: (server) => `${url}/mcp/${server}`, close: () => gateway.close() }
}

export const webAppAuth = (): string => clientBasicAuth(WEB_APP.id, WEB_APP.secret)
