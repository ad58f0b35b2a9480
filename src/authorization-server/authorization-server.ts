import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ClientConfig, Config } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { AccessTokenVerifier } from '../authn/verify-access-token.ts'
import { ephemeralKeySet, loadSigningKeys, type SigningKeySet } from './keys.ts'
import { DEFAULT_KEY_SOURCE, IdpKeySource, type KeySourceOptions } from './idp-trust.ts'
import { MemoryReplayStore, type ReplayStore } from './replay-cache.ts'
import type { TrustedIssuer } from './grants/jwt-bearer-id-jag.ts'
import { discoveryRoutes } from './metadata.ts'
import { jwksRoute } from './jwks.ts'
import { authorizeRoute } from './authorize.ts'
import { tokenEndpoint } from './token-endpoint.ts'

/**
 * The state the authorization server and the resource-server check share: our signing keys,
 * the trusted IdPs and their keys, the registered clients, the replay store.
 */
export class AuthorizationContext {
  readonly config: Config
  readonly verifier: AccessTokenVerifier
  readonly replay: ReplayStore
  readonly trusted: ReadonlyMap<string, TrustedIssuer>
  readonly clients: ReadonlyMap<string, ClientConfig>
  #keys: SigningKeySet | undefined

  constructor (config: Config, metrics: Metrics, keySource: Partial<KeySourceOptions> = {}, replay: ReplayStore = new MemoryReplayStore()) {
    this.config = config
    this.replay = replay
    const timing = { ...DEFAULT_KEY_SOURCE, ...keySource }
    this.trusted = new Map(config.authorization.identityProviders.map((idp) => [idp.issuer, { config: idp, keys: new IdpKeySource(idp, metrics, timing) }]))
    this.clients = new Map(config.authorization.clients.map((c) => [c.clientId, c]))
    this.verifier = new AccessTokenVerifier(config.authorization.issuer, () => this.keys)
  }

  get keys (): SigningKeySet {
    if (this.#keys === undefined) throw new Error('signing keys are not loaded yet')
    return this.#keys
  }

  /** Load the signing keys file, or make an ephemeral key — loudly. */
  async loadKeys (log: FastifyBaseLogger): Promise<void> {
    const path = this.config.authorization.signingKeys
    if (path !== undefined) {
      this.#keys = await loadSigningKeys(path)
      return
    }
    this.#keys = await ephemeralKeySet()
    log.warn('EPHEMERAL SIGNING KEY: authorization.signingKeys is not set, so access tokens are signed with a key that dies with this process ' +
      '(every token is invalid after a restart, and replicas reject each other\'s tokens). Generate one with `portcullis keys generate`.')
  }
}

export interface AuthorizationServerOptions {
  readonly auth: AuthorizationContext
  readonly metrics: Metrics
}

/** The OAuth authorization server: discovery, JWKS, the authorization endpoint and the token endpoint. */
export async function authorizationServer (app: FastifyInstance, { auth, metrics }: AuthorizationServerOptions): Promise<void> {
  const { config } = auth
  await app.register(discoveryRoutes, { config })
  await app.register(jwksRoute, { keys: auth.keys })
  await app.register(authorizeRoute)
  await app.register(tokenEndpoint, {
    config,
    keys: auth.keys,
    metrics,
    clientAuth: {
      clients: auth.clients,
      audiences: [`${config.publicUrl}/oauth/token`, config.authorization.issuer],
      replay: auth.replay,
    },
    idJag: {
      issuer: config.authorization.issuer,
      trusted: auth.trusted,
      maxLifetimeSeconds: config.authorization.assertion.maxLifetimeSeconds,
      clockSkewSeconds: config.authorization.assertion.clockSkewSeconds,
      replay: auth.replay,
    },
  })
}
