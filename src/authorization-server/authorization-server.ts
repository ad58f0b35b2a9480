import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ClientConfig, Config } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { AccessTokenVerifier } from '../authn/verify-access-token.ts'
import { ephemeralKeySet, loadSigningKeys, type SigningKeySet } from './keys.ts'
import { DEFAULT_KEY_SOURCE, IdpKeySource, type KeySourceOptions } from './idp-trust.ts'
import { StoreReplayStore, type ReplayStore } from './replay-cache.ts'
import type { TrustedIssuer } from './grants/jwt-bearer-id-jag.ts'
import { discoveryRoutes } from './metadata.ts'
import { jwksRoute } from './jwks.ts'
import { authorizeRoute } from './authorize.ts'
import { tokenEndpoint } from './token-endpoint.ts'
import { registrationRoute } from './registration.ts'
import { callbackRoute } from './login/callback.ts'
import { Consents } from './login/consent.ts'
import { consentRoute } from './login/consent-route.ts'
import { createLoginContext, type LoginContext } from './login/context.ts'
import type { CimdFetchOptions } from './login/client-metadata-document.ts'
import { RevocationCheckingVerifier, SharedRevocationList, type RevocationList } from './login/revocation.ts'
import type { Store } from '../store/store.ts'
import { oauthRateLimits } from './rate-limits.ts'

export interface AuthorizationContextOptions {
  /**
   * Where replay records, codes, pending logins, dynamic clients, cached client metadata documents
   * and revocations live (design.md §7): process memory for one instance, Redis for replicas.
   */
  readonly store: Store
  /** the client-metadata-document fetch (tests inject DNS and the address guard) */
  readonly cimd?: CimdFetchOptions
}

/**
 * The state the authorization server and the resource-server check share: our signing keys,
 * the trusted IdPs and their keys, the configured clients, and — through the shared store — the
 * replay ledger and the federated login's clients, codes and revocation list.
 */
export class AuthorizationContext {
  readonly config: Config
  readonly store: Store
  readonly verifier: AccessTokenVerifier
  readonly replay: ReplayStore
  readonly revocations: RevocationList
  readonly trusted: ReadonlyMap<string, TrustedIssuer>
  /** the configured clients: the only ones that may use the jwt-bearer grant */
  readonly clients: ReadonlyMap<string, ClientConfig>
  readonly login: LoginContext
  #keys: SigningKeySet | undefined

  constructor (config: Config, metrics: Metrics, keySource: Partial<KeySourceOptions> | undefined, opts: AuthorizationContextOptions) {
    this.config = config
    this.store = opts.store
    this.replay = new StoreReplayStore(this.store)
    this.revocations = new SharedRevocationList(this.store)
    const timing = { ...DEFAULT_KEY_SOURCE, ...keySource }
    this.trusted = new Map(config.authorization.identityProviders.map((idp) => [idp.issuer, { config: idp, keys: new IdpKeySource(idp, metrics, timing) }]))
    this.clients = new Map(config.authorization.clients.map((c) => [c.clientId, c]))
    this.verifier = new RevocationCheckingVerifier(config.authorization.issuer, () => this.keys, this.revocations)
    this.login = createLoginContext(config, this.trusted, this.clients, this.revocations, this.store, opts.cimd)
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

/**
 * The OAuth authorization server: discovery, JWKS, the authorization endpoint and its IdP
 * callback, dynamic registration (when on) and the token endpoint.
 */
export async function authorizationServer (app: FastifyInstance, { auth, metrics }: AuthorizationServerOptions): Promise<void> {
  const { config, login } = auth
  // before the routes: the limits' hooks apply to every /oauth/* route of this context
  oauthRateLimits(app, { limits: config.authorization.rateLimits, store: auth.store, keyPrefix: config.store?.keyPrefix ?? '', metrics })
  const clientAuth = {
    // only the configured clients may use the jwt-bearer grant
    clients: async (clientId: string) => auth.clients.get(clientId),
    audiences: [`${config.publicUrl}/oauth/token`, config.authorization.issuer],
    replay: auth.replay,
  }
  await app.register(discoveryRoutes, { config })
  await app.register(jwksRoute, { keys: auth.keys })
  await app.register(authorizeRoute, { login })
  const consent = new Consents(auth.store, { rememberSeconds: config.authorization.consent.rememberSeconds, configuredClients: auth.clients, secureCookies: config.publicUrl.startsWith('https:') })
  await app.register(callbackRoute, { login, consent })
  await app.register(consentRoute, { login, consent })
  if (config.authorization.registration.dynamic) await app.register(registrationRoute, { login })
  await app.register(tokenEndpoint, {
    config,
    keys: auth.keys,
    metrics,
    clientAuth,
    idJag: {
      issuer: config.authorization.issuer,
      trusted: auth.trusted,
      maxLifetimeSeconds: config.authorization.assertion.maxLifetimeSeconds,
      clockSkewSeconds: config.authorization.assertion.clockSkewSeconds,
      replay: auth.replay,
    },
    authorizationCode: login.idp === undefined
      ? undefined
      : {
          login,
          clientAuth: { audiences: clientAuth.audiences, replay: auth.replay },
          keys: auth.keys,
          issuer: config.authorization.issuer,
          accessTokenTtlSeconds: config.authorization.accessTokenTtlSeconds,
        },
  })
}
