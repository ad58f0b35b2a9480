import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { generatePrivateJwk } from '../../src/authorization-server/keys.ts'
import { startBalancer, type Balancer } from './balancer.ts'
import { startDevIdp, type StartedDevIdp } from './dev-idp.ts'
import { clientBasicAuth } from './basic-auth.ts'
import { everythingEntry, startEverything, type RunningEverything } from './everything.ts'
import { startGatewayProcess, type GatewayProcess } from './gateway-process.ts'
import { startRedis, type RunningRedis } from './redis-server.ts'

/** The client the ID-JAGs are issued to, registered at the gateway. */
export const EMA_CLIENT = { id: 'mcp-client', secret: 'mcp-client-secret-0123456789' }
/** The IdP client that does the token exchange for it. */
export const EXCHANGE_CLIENT = { id: 'exchange-client', secret: 'exchange-secret-0123456789' }
/** The gateway's own OIDC client at the IdP (the federated login). */
export const LOGIN_CLIENT = { id: 'portcullis', secret: 'portcullis-login-secret-0123456789' }
export const SESSION_KEY = 'replicas-share-this-session-key-0123456789'
export const SERVERS = ['http', 'sse', 'stdio'] as const
export type ServerName = typeof SERVERS[number]

export interface ReplicaCluster {
  readonly redis: RunningRedis
  readonly balancer: Balancer
  readonly idp: StartedDevIdp
  /** the replicas, in the balancer's order */
  replicas: GatewayProcess[]
  /** every replica's publicUrl and issuer: the balancer */
  readonly publicUrl: string
  mcpUrl (server: ServerName, base?: string): string
  /** an access token for `user` and `server`: password grant → token exchange → jwt-bearer grant through the balancer */
  accessToken (user: 'alice' | 'bob', server: ServerName): Promise<string>
  /** an ID-JAG for `user` and `server` from the IdP's token exchange */
  idJag (user: 'alice' | 'bob', server: ServerName): Promise<string>
  /** the jwt-bearer grant, at the balancer (or at one replica) */
  redeem (assertion: string, base?: string): Promise<{ status: number, body: Record<string, unknown> }>
  /** stop every replica (SIGTERM, exit code checked by the caller) and start as many new ones on the same config */
  restartAll (): Promise<Array<number | null>>
  /** one more gateway on the same config and environment, outside the balancer (stopped at close) */
  startExtra (opts?: { waitReady?: boolean }): Promise<GatewayProcess>
  close (): Promise<void>
}

/**
 * Redis, the dev IdP, server-everything (streamableHttp and sse; stdio is spawned by the gateway),
 * and `count` real gateway processes with one config, one signing keys file and one environment —
 * only their ports differ — behind a round-robin balancer without affinity (design §7).
 */
export async function startReplicaCluster (count = 3): Promise<ReplicaCluster> {
  const cleanup: Array<() => Promise<unknown>> = []
  try {
    const redis = await startRedis()
    cleanup.push(() => redis.stop())
    const balancer = await startBalancer()
    cleanup.push(() => balancer.close())
    const publicUrl = balancer.url.replace(/\/$/, '')
    const resources = SERVERS.map((s) => `${publicUrl}/mcp/${s}`)
    const idp = await startDevIdp(`
users:
  - { username: alice, password: alice-pw, email: alice@example.com, groups: [eng] }
  - { username: bob, password: bob-pw, email: bob@example.com, groups: [sales] }
clients:
  - { clientId: ${EXCHANGE_CLIENT.id}, secret: ${EXCHANGE_CLIENT.secret}, idJagClientId: ${EMA_CLIENT.id} }
  - { clientId: ${LOGIN_CLIENT.id}, secret: ${LOGIN_CLIENT.secret}, redirectUris: ["${publicUrl}/oauth/callback"] }
policy:
  - { audience: "${publicUrl}", resources: ${JSON.stringify(resources)}, groups: [eng, sales], scopes: [tools.read] }
`)
    cleanup.push(() => idp.close())
    const http = await startEverything('streamableHttp')
    cleanup.push(() => http.close())
    const sse = await startEverything('sse')
    cleanup.push(() => sse.close())
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-replicas-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const keysFile = join(dir, 'keys.json')
    await writeFile(keysFile, JSON.stringify({ keys: [await generatePrivateJwk('ES256', 'current'), await generatePrivateJwk('ES256', 'next')] }), { mode: 0o600 })
    const yaml = clusterYaml(publicUrl, idp.issuer, redis.url, keysFile, http, sse)
    const env = {
      PORTCULLIS_SESSION_KEY: SESSION_KEY,
      PORTCULLIS_AUDIT_PSEUDONYM_KEY: 'replicas-share-this-pseudonym-key-0123456789',
      EMA_SECRET: EMA_CLIENT.secret,
      LOGIN_SECRET: LOGIN_CLIENT.secret,
    }
    const startReplicas = async (): Promise<GatewayProcess[]> => await Promise.all(Array.from({ length: count }, async () => await startGatewayProcess({ yaml, env })))
    let replicas = await startReplicas()
    cleanup.push(async () => await Promise.allSettled(replicas.map(async (r) => await r.stop())))
    balancer.setTargets(replicas.map((r) => r.url))

    const idToken = async (user: 'alice' | 'bob'): Promise<string> => {
      const res = await request(`${idp.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(EXCHANGE_CLIENT.id, EXCHANGE_CLIENT.secret) },
        body: new URLSearchParams({ grant_type: 'password', username: user, password: `${user}-pw`, scope: 'openid' }).toString(),
      })
      const body = await res.body.json() as { id_token?: string }
      if (body.id_token === undefined) throw new Error(`password grant failed: ${res.statusCode}`)
      return body.id_token
    }
    const idJag = async (user: 'alice' | 'bob', server: ServerName): Promise<string> => {
      const res = await request(`${idp.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(EXCHANGE_CLIENT.id, EXCHANGE_CLIENT.secret) },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
          subject_token: await idToken(user),
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
          audience: publicUrl,
          resource: `${publicUrl}/mcp/${server}`,
        }).toString(),
      })
      const body = await res.body.json() as { access_token?: string }
      if (body.access_token === undefined) throw new Error(`token exchange failed: ${res.statusCode} ${JSON.stringify(body)}`)
      return body.access_token
    }
    const redeem = async (assertion: string, base = publicUrl): Promise<{ status: number, body: Record<string, unknown> }> => {
      const res = await request(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasicAuth(EMA_CLIENT.id, EMA_CLIENT.secret) },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      })
      return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
    }
    const cluster: ReplicaCluster = {
      redis,
      balancer,
      idp,
      get replicas () { return replicas },
      set replicas (r) { replicas = r },
      publicUrl,
      mcpUrl: (server, base = publicUrl) => `${base}/mcp/${server}`,
      idJag,
      redeem,
      async accessToken (user, server) {
        const { status, body } = await redeem(await idJag(user, server))
        if (status !== 200 || typeof body.access_token !== 'string') throw new Error(`jwt-bearer grant failed: ${status} ${JSON.stringify(body)}`)
        return body.access_token
      },
      async restartAll () {
        const codes = await Promise.all(replicas.map(async (r) => await r.stop()))
        replicas = await startReplicas()
        balancer.setTargets(replicas.map((r) => r.url))
        return codes
      },
      async startExtra (opts = {}) {
        const extra = await startGatewayProcess({ yaml, env, ...opts })
        cleanup.push(async () => { await extra.stop() })
        return extra
      },
      async close () {
        for (const step of cleanup.reverse()) await step().catch(() => {})
      },
    }
    return cluster
  } catch (err) {
    for (const step of cleanup.reverse()) await step().catch(() => {})
    throw err
  }
}

function clusterYaml (publicUrl: string, idpIssuer: string, redisUrl: string, keysFile: string, http: RunningEverything, sse: RunningEverything): string {
  return `
publicUrl: ${publicUrl}
store: { url: "${redisUrl}" }
authorization:
  signingKeys: ${keysFile}
  accessTokenTtlSeconds: 300
  clients:
    - { clientId: ${EMA_CLIENT.id}, auth: client_secret_basic, secret: "\${EMA_SECRET}" }
  identityProviders:
    - issuer: ${idpIssuer}
      algorithms: [ES256]
      claims: { groups: groups, email: email }
      login: { clientId: ${LOGIN_CLIENT.id}, clientSecret: "\${LOGIN_SECRET}" }
  registration: { dynamic: true, allowedRedirectHosts: [127.0.0.1, localhost] }
servers:
  http:
    upstream: { url: ${http.url} }
    scopes: [tools.read]
    tools: [{ allow: ["*"] }]
  sse:
    upstream: { transport: sse, url: ${sse.url} }
    scopes: [tools.read]
    tools: [{ allow: ["*"] }]
  stdio:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(everythingEntry)}, stdio] }
    scopes: [tools.read]
    tools: [{ allow: ["*"] }]
`
}
