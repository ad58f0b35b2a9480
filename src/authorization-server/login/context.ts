import type { ClientConfig, Config, ServerConfig } from '../../config/types.ts'
import type { Store } from '../../store/store.ts'
import type { TrustedIssuer } from '../grants/jwt-bearer-id-jag.ts'
import { ClientRegistry } from './clients.ts'
import type { CimdFetchOptions } from './client-metadata-document.ts'
import { AuthorizationCodes } from './codes.ts'
import { IdpDiscovery, type LoginIdp } from './idp-login.ts'
import { CALLBACK_PATH, PendingLogins } from './pending-logins.ts'
import type { RevocationList } from './revocation.ts'

/** A fresh authorization code may be redeemed for a minute (OAuth 2.1 §4.1.2 "short"). */
export const CODE_TTL_MS = 60_000

/** What the authorization, callback, registration and token endpoints of the federated login share. */
export interface LoginContext {
  readonly issuer: string
  /** `{publicUrl}/oauth/callback`: our redirect URI at the IdP */
  readonly callbackUrl: string
  /** the IdP with `login`, or undefined when the federated login is off */
  readonly idp: (LoginIdp & { readonly discovery: IdpDiscovery }) | undefined
  /** the `auth: required` servers a code may be for */
  readonly servers: readonly ServerConfig[]
  readonly clockSkewSeconds: number
  readonly registration: Config['authorization']['registration']
  readonly clients: ClientRegistry
  readonly pending: PendingLogins
  readonly codes: AuthorizationCodes
  readonly revocations: RevocationList
}

/** The login's state lives in `store` (shared by the replicas); only the configured clients are kept here. */
export function createLoginContext (config: Config, trusted: ReadonlyMap<string, TrustedIssuer>, configuredClients: ReadonlyMap<string, ClientConfig>,
  revocations: RevocationList, store: Store, cimd?: CimdFetchOptions): LoginContext {
  const auth = config.authorization
  const withLogin = auth.identityProviders.find((idp) => idp.login !== undefined)
  const idpTrust = withLogin === undefined ? undefined : trusted.get(withLogin.issuer)
  return {
    issuer: auth.issuer,
    callbackUrl: `${config.publicUrl}${CALLBACK_PATH}`,
    idp: idpTrust === undefined || withLogin?.login === undefined
      ? undefined
      : { trusted: idpTrust, login: withLogin.login, discovery: new IdpDiscovery(withLogin.issuer) },
    servers: Object.values(config.servers).filter((s) => s.auth === 'required'),
    clockSkewSeconds: auth.assertion.clockSkewSeconds,
    registration: auth.registration,
    clients: new ClientRegistry(configuredClients, auth.registration, store, cimd),
    pending: new PendingLogins(store, config.publicUrl.startsWith('https:')),
    codes: new AuthorizationCodes(store, { codeTtlMs: CODE_TTL_MS, rememberRedeemedMs: (auth.accessTokenTtlSeconds + 60) * 1000 }),
    revocations,
  }
}
