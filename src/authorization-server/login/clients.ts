import { randomBytes } from 'node:crypto'
import type { AuthorizationConfig, ClientConfig } from '../../config/types.ts'
import { StoreUnavailable, type Store } from '../../store/store.ts'
import { ExpiringCount } from '../../ratelimit/expiring-count.ts'
import { OAuthError } from '../errors.ts'
import { failingClosed, parseStored } from '../shared-state.ts'
import { clientIdMetadataUrl, DEFAULT_CIMD_FETCH, fetchClientMetadataDocument, type CimdFetchOptions } from './client-metadata-document.ts'
import { digest } from './pkce.ts'
import type { ClientLookup, KnownClient } from './known-client.ts'

/** Prefix of generated client ids (a configured id that happens to match one is never overwritten: see register). */
export const DYNAMIC_CLIENT_PREFIX = 'dyn-'
/** Exactly what `register` generates: only ids of this shape are looked up in the store. */
const DYNAMIC_CLIENT_ID = /^dyn-[A-Za-z0-9_-]{22}$/
const CIMD_TTL_MS = 5 * 60_000
/** how long a registration may stay half-written (created, not yet made permanent) */

/**
 * Every client the authorization-code login knows: the configured ones (`authorization.clients`,
 * in memory), those registered dynamically (RFC 7591, ids generated here, never chosen by the
 * client; kept in the shared store, so every replica and every restart knows them — at most
 * `registration.maxClients` at once, each until it goes `unusedClientTtlSeconds` unused), and — when enabled — those identified by a client ID metadata document URL, fetched on
 * first use and cached in the store for five minutes (one fetch serves every replica; concurrent
 * lookups in one process share a fetch). Configured clients win every lookup.
 */
export class ClientRegistry {
  readonly #configured: ReadonlyMap<string, ClientConfig>
  readonly #store: Store
  readonly #inFlight = new Map<string, Promise<KnownClient>>()
  readonly #registration: AuthorizationConfig['registration']
  readonly #fetch: CimdFetchOptions
  /** the live dynamic clients, for the quota */
  readonly #count: ExpiringCount
  readonly #ttlMs: number

  constructor (configured: ReadonlyMap<string, ClientConfig>, registration: AuthorizationConfig['registration'], store: Store,
    fetch: CimdFetchOptions = DEFAULT_CIMD_FETCH) {
    this.#configured = configured
    this.#registration = registration
    this.#store = failingClosed(store)
    this.#fetch = fetch
    this.#ttlMs = registration.unusedClientTtlSeconds * 1000
    this.#count = new ExpiringCount(this.#store, 'clients', this.#ttlMs)
  }

  /** The client, or undefined when nobody registered it; a metadata document that cannot be used is an OAuthError. */
  async find (clientId: string): Promise<KnownClient | undefined> {
    const known = await this.confidential(clientId)
    if (known !== undefined || !this.#registration.clientIdMetadataDocuments) return known
    const url = clientIdMetadataUrl(clientId)
    if (url === undefined) return undefined
    let pending = this.#inFlight.get(clientId)
    if (pending === undefined) {
      pending = this.#document(clientId, url).finally(() => this.#inFlight.delete(clientId))
      this.#inFlight.set(clientId, pending)
    }
    return await pending
  }

  /** Configured and dynamic clients, as the token endpoint's client authentication looks them up. */
  readonly confidential: ClientLookup = async (clientId) => {
    const configured = this.#configured.get(clientId)
    if (configured !== undefined || !DYNAMIC_CLIENT_ID.test(clientId)) return configured
    const value = await this.#store.get(clientKey(clientId))
    if (value === undefined) return undefined
    const stored = parseStored(value, isStoredClient)
    if (stored.clientId !== clientId) return undefined
    await this.#touch(stored, value)
    return fromStored(stored)
  }

  /**
   * Register a client under a fresh id (RFC 7591 §3.2.1: the server assigns it). SET NX claims the
   * id, so two replicas never hand out the same one; the record lives `unusedClientTtlSeconds`
   * (renewed at each use). Its place in the quota is taken first and given back on failure, so
   * concurrent registrations at any replica never push the count past `maxClients`.
   */
  async register (client: Omit<ClientConfig, 'clientId'> & { readonly clientName?: string }): Promise<KnownClient> {
    const { secret, ...rest } = client
    // full: refused with reads only (a flood against a full quota writes nothing)
    if (await this.#count.total() >= this.#registration.maxClients) throw quotaReached()
    const bucket = this.#count.bucketNow()
    await this.#count.add(bucket, 1)
    let registered = false
    try {
      if (await this.#count.total() > this.#registration.maxClients) throw quotaReached()
      for (let attempt = 0; attempt < 5; attempt++) {
        const clientId = `${DYNAMIC_CLIENT_PREFIX}${randomBytes(16).toString('base64url')}`
        if (this.#configured.has(clientId)) continue
        const stored: StoredClient = { ...rest, clientId, bucket, ...(secret === undefined ? {} : { secretDigest: digest(secret) }) }
        if (!await this.#store.setIfAbsent(clientKey(clientId), JSON.stringify(stored), this.#ttlMs)) continue
        registered = true
        return fromStored(stored)
      }
      // 128 random bits do not collide five times: the store is answering wrongly.
      throw new StoreUnavailable('the shared store refused every new client id')
    } finally {
      if (!registered) await this.#count.add(bucket, -1).catch(() => {})
    }
  }

  /**
   * A dynamic client was used (at /oauth/authorize or /oauth/token): it lives another
   * `unusedClientTtlSeconds`, and moves to the quota's current bucket — one PEXPIRE, or once per
   * bucket a compare-and-set and two counter updates. Records from before the quota get both.
   */
  async #touch (stored: StoredClient, value: string): Promise<void> {
    const key = clientKey(stored.clientId)
    const bucket = this.#count.bucketNow()
    if (stored.bucket === bucket) {
      await this.#store.expire(key, this.#ttlMs)
      return
    }
    // false: another request moved it meanwhile (and renewed it)
    if (!await this.#store.compareAndSet(key, value, JSON.stringify({ ...stored, bucket }), this.#ttlMs)) return
    await this.#count.add(bucket, 1)
    if (stored.bucket !== undefined) await this.#count.add(stored.bucket, -1)
  }

  async #document (clientId: string, url: URL): Promise<KnownClient> {
    const key = `cimd:${digest(clientId)}`
    const cached = await this.#store.get(key)
    if (cached !== undefined) return fromStored(parseStored(cached, isStoredClient))
    const client = await fetchClientMetadataDocument(clientId, url, this.#registration.allowedRedirectHosts, this.#fetch)
    await this.#store.set(key, JSON.stringify(toStored(client)), CIMD_TTL_MS)
    return client
  }
}

/** A client as JSON in the store: never a secret; a dynamic one with its quota bucket. */
type StoredClient = Omit<KnownClient, 'secret'> & { readonly bucket?: number }

function clientKey (clientId: string): string {
  return `client:${clientId}`
}

function toStored (client: ClientConfig): StoredClient {
  const { secret, ...rest } = client
  if (secret !== undefined) throw new Error('a client with a secret is not cached')
  return rest
}

function fromStored (stored: StoredClient): KnownClient {
  return {
    clientId: stored.clientId,
    auth: stored.auth,
    secret: undefined,
    jwksUri: stored.jwksUri,
    jwks: stored.jwks,
    redirectUris: stored.redirectUris,
    ...(stored.secretDigest === undefined ? {} : { secretDigest: stored.secretDigest }),
    ...(stored.clientName === undefined ? {} : { clientName: stored.clientName }),
  }
}

function isStoredClient (value: unknown): value is StoredClient {
  if (typeof value !== 'object' || value === null) return false
  const client = value as Partial<Record<keyof KnownClient | 'bucket', unknown>>
  return typeof client.clientId === 'string' && typeof client.auth === 'string' && client.secret === undefined &&
    Array.isArray(client.redirectUris) && client.redirectUris.every((u) => typeof u === 'string') &&
    (client.secretDigest === undefined || typeof client.secretDigest === 'string') &&
    (client.clientName === undefined || typeof client.clientName === 'string') &&
    (client.bucket === undefined || Number.isSafeInteger(client.bucket))
}

/**
 * 503 temporarily_unavailable: the client's metadata is fine (invalid_client_metadata would send
 * its developer hunting for a mistake), the server is full. RFC 7591 has no quota error; this is
 * the RFC 6749 code clients already treat as "later", and the operator sees a 5xx.
 */
function quotaReached (): OAuthError {
  return new OAuthError('temporarily_unavailable', 'This authorization server holds as many registered clients as it may; try again later or ask its operator', 'client_quota')
}

export function unknownClient (): OAuthError {
  return new OAuthError('invalid_client', 'The client is not registered at this authorization server', 'unknown_client')
}
