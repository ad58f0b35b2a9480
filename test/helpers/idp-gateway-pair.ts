import { buildDevIdp, parseDevIdpConfig, type DevIdp } from '../../src/dev-idp/index.ts'
import type { StartedGateway } from './gateway.ts'
import { withFreePorts } from './ports.ts'
import { startRecordingUpstream, type RecordingUpstream } from './recording-upstream.ts'

/**
 * The dev IdP and the gateway naming each other, with a recording upstream behind the gateway:
 * the stack both ema.ts (the gateway as resource AS of ID-JAGs) and federated.ts (the gateway's
 * own login at the IdP) start. What differs between them is passed in: the IdP's clients and
 * policy, and how the gateway starts with which YAML.
 */

/** Where the pair is, known before either starts: each names the other's port in its config. */
export interface PairContext {
  /** the gateway's issuer, `http://127.0.0.1:{gwPort}` */
  readonly issuer: string
  /** the dev IdP's issuer, `http://127.0.0.1:{idpPort}` */
  readonly idpIssuer: string
  readonly gwPort: number
  readonly upstream: RecordingUpstream
}

export interface PairOptions {
  /** the dev IdP's YAML after `issuer`, `listen` and `users` (its `clients:`, `policy:`, …) */
  readonly idpYaml: (at: PairContext) => string
  /** start the gateway on `at.gwPort`; it must release what it did start before it throws */
  readonly startGateway: (at: PairContext) => Promise<StartedGateway>
  /**
   * close() drops the gateway's open connections first: every test request is over, and
   * keep-alive sockets would otherwise hold the close for listen.drainTimeoutMs
   */
  readonly closeConnections?: boolean
}

export interface IdpGatewayPair extends PairContext {
  readonly idp: DevIdp
  readonly gw: StartedGateway
  /** the resource ids of the gateway's two servers (serversYaml) */
  readonly resource: string
  readonly otherResource: string
  /** the gateway, then the IdP, then the upstream */
  close (): Promise<void>
}

/** The dev IdP's users: alice in eng, bob in sales; the password is `{name}-pw`. */
export const PAIR_USERS_YAML = `users:
  - { username: alice, password: alice-pw, email: alice@example.com, groups: [eng] }
  - { username: bob, password: bob-pw, email: bob@example.com, groups: [sales] }`

/**
 * The gateway's servers, both on the recording upstream: `tools` (scopes tools.read and
 * tools.write) with these tool rules, and `other` (scope other.read, every tool allowed).
 * `toolsRules` is YAML indented for the `tools:` key of a server (a flow list, or block lines
 * starting with a newline and six spaces).
 */
export function serversYaml (upstream: RecordingUpstream, toolsRules: string): string {
  return `servers:
  tools:
    upstream: { url: ${upstream.url} }
    scopes: [tools.read, tools.write]
    tools: ${toolsRules}
  other:
    upstream: { url: ${upstream.url} }
    scopes: [other.read]
    tools: [{ allow: ["*"] }]
`
}

/**
 * Start the pair. Both ports are picked first; on one taken meanwhile, both start again
 * (withFreePorts). Whatever started is closed again if a later step fails.
 */
export async function startIdpGatewayPair (opts: PairOptions): Promise<IdpGatewayPair> {
  const upstream = await startRecordingUpstream()
  try {
    return await withFreePorts(2, async (gwPort, idpPort) => await startOn(opts, upstream, gwPort, idpPort))
  } catch (err) {
    await upstream.close()
    throw err
  }
}

async function startOn (opts: PairOptions, upstream: RecordingUpstream, gwPort: number, idpPort: number): Promise<IdpGatewayPair> {
  const at: PairContext = { issuer: `http://127.0.0.1:${gwPort}`, idpIssuer: `http://127.0.0.1:${idpPort}`, gwPort, upstream }
  const idp = await buildDevIdp(parseDevIdpConfig(`
issuer: ${at.idpIssuer}
listen: { host: 127.0.0.1, port: ${idpPort} }
${PAIR_USERS_YAML}
${opts.idpYaml(at)}`, { source: '<test idp>', env: {} }), { logger: false })
  let gw: StartedGateway
  try {
    await idp.listen()
    gw = await opts.startGateway(at)
  } catch (err) {
    await idp.close()
    throw err
  }
  return {
    ...at,
    idp,
    gw,
    resource: `${at.issuer}/mcp/tools`,
    otherResource: `${at.issuer}/mcp/other`,
    async close () {
      const closing = gw.close()
      if (opts.closeConnections === true) gw.gateway.app.server.closeAllConnections()
      await closing
      await idp.close()
      await upstream.close()
    },
  }
}
