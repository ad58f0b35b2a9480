/** What the dev IdP's routes share: the configuration, indexed, the keys and the issuer. */
import type { DevIdpClient, DevIdpConfig, DevIdpUser } from './config.ts'
import type { SigningKeys } from './keys.ts'
import { LoginStore } from './login-store.ts'

export interface IdpContext {
  readonly config: DevIdpConfig
  readonly keys: SigningKeys
  /** the issuer identifier; final once the IdP listens (a config without `issuer` takes the bound address) */
  issuer (): string
  /** the endpoint URL for an absolute path such as `/token` */
  endpoint (path: string): string
  readonly usersByName: ReadonlyMap<string, DevIdpUser>
  readonly usersBySub: ReadonlyMap<string, DevIdpUser>
  readonly clients: ReadonlyMap<string, DevIdpClient>
  /** authorization requests at the user picker, and the codes issued from them */
  readonly login: LoginStore
}

export function createContext (config: DevIdpConfig, keys: SigningKeys, issuer: () => string): IdpContext {
  return {
    config,
    keys,
    issuer,
    endpoint: (path) => `${issuer().replace(/\/$/, '')}${path}`,
    usersByName: new Map(config.users.map((user) => [user.username, user])),
    usersBySub: new Map(config.users.map((user) => [user.sub, user])),
    clients: new Map(config.clients.map((client) => [client.clientId, client])),
    login: new LoginStore(),
  }
}

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}
