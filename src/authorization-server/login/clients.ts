import { LRUCache } from 'lru-cache'
import { randomBytes } from 'node:crypto'
import type { AuthorizationConfig, ClientConfig } from '../../config/types.ts'
import { OAuthError } from '../errors.ts'
import { clientIdMetadataUrl, DEFAULT_CIMD_FETCH, fetchClientMetadataDocument, type CimdFetchOptions } from './client-metadata-document.ts'

/** Prefix of generated client ids (a configured id that happens to match one is never overwritten: see register). */
export const DYNAMIC_CLIENT_PREFIX = 'dyn-'
const CIMD_TTL_MS = 5 * 60_000

/**
 * Every client the authorization-code login knows: the configured ones (`authorization.clients`),
 * those registered dynamically (RFC 7591, ids generated here, never chosen by the client), and —
 * when enabled — those identified by a client ID metadata document URL, fetched on first use
 * and cached for five minutes. Configured clients win every lookup.
 * TODO(scale-out): dynamic registrations live in this process; share them through the store.
 */
export class ClientRegistry {
  readonly #configured: ReadonlyMap<string, ClientConfig>
  readonly #dynamic = new LRUCache<string, ClientConfig>({ max: 10_000 })
  readonly #documents = new LRUCache<string, ClientConfig>({ max: 1_000, ttl: CIMD_TTL_MS })
  readonly #inFlight = new Map<string, Promise<ClientConfig>>()
  readonly #registration: AuthorizationConfig['registration']
  readonly #fetch: CimdFetchOptions
  /** configured and dynamic clients, as the token endpoint's client authentication reads them */
  readonly confidential: ReadonlyMap<string, ClientConfig>

  constructor (configured: ReadonlyMap<string, ClientConfig>, registration: AuthorizationConfig['registration'], fetch: CimdFetchOptions = DEFAULT_CIMD_FETCH) {
    this.#configured = configured
    this.#registration = registration
    this.#fetch = fetch
    this.confidential = new ClientView(configured, this.#dynamic)
  }

  /** The client, or undefined when nobody registered it; a metadata document that cannot be used is an OAuthError. */
  async find (clientId: string): Promise<ClientConfig | undefined> {
    const known = this.#configured.get(clientId) ?? this.#dynamic.get(clientId)
    if (known !== undefined || !this.#registration.clientIdMetadataDocuments) return known
    const url = clientIdMetadataUrl(clientId)
    if (url === undefined) return undefined
    const cached = this.#documents.get(clientId)
    if (cached !== undefined) return cached
    let pending = this.#inFlight.get(clientId)
    if (pending === undefined) {
      pending = fetchClientMetadataDocument(clientId, url, this.#registration.allowedRedirectHosts, this.#fetch)
        .finally(() => this.#inFlight.delete(clientId))
      this.#inFlight.set(clientId, pending)
    }
    const client = await pending
    this.#documents.set(clientId, client)
    return client
  }

  /** Register a client under a fresh id (RFC 7591 §3.2.1: the server assigns it). */
  register (client: Omit<ClientConfig, 'clientId'>): ClientConfig {
    let clientId: string
    do clientId = `${DYNAMIC_CLIENT_PREFIX}${randomBytes(16).toString('base64url')}`
    while (this.#configured.has(clientId) || this.#dynamic.has(clientId))
    const registered: ClientConfig = { ...client, clientId }
    this.#dynamic.set(clientId, registered)
    return registered
  }
}

/** Configured over dynamic, read-only, without copying either. */
class ClientView implements ReadonlyMap<string, ClientConfig> {
  readonly #configured: ReadonlyMap<string, ClientConfig>
  readonly #dynamic: LRUCache<string, ClientConfig>

  constructor (configured: ReadonlyMap<string, ClientConfig>, dynamic: LRUCache<string, ClientConfig>) {
    this.#configured = configured
    this.#dynamic = dynamic
  }

  get (clientId: string): ClientConfig | undefined {
    return this.#configured.get(clientId) ?? this.#dynamic.get(clientId)
  }

  has (clientId: string): boolean {
    return this.get(clientId) !== undefined
  }

  get size (): number {
    return this.#configured.size + this.#dynamic.size
  }

  * entries (): MapIterator<[string, ClientConfig]> {
    yield * this.#configured.entries()
    for (const [id, client] of this.#dynamic.entries()) if (!this.#configured.has(id)) yield [id, client]
  }

  * keys (): MapIterator<string> {
    for (const [id] of this.entries()) yield id
  }

  * values (): MapIterator<ClientConfig> {
    for (const [, client] of this.entries()) yield client
  }

  [Symbol.iterator] (): MapIterator<[string, ClientConfig]> {
    return this.entries()
  }

  forEach (fn: (client: ClientConfig, clientId: string, map: ReadonlyMap<string, ClientConfig>) => void): void {
    for (const [id, client] of this.entries()) fn(client, id, this)
  }
}

export function unknownClient (): OAuthError {
  return new OAuthError('invalid_client', 'The client is not registered at this authorization server', 'unknown_client')
}
