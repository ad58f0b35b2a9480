import type { ClientConfig } from '../../config/types.ts'

/**
 * A client as client authentication reads it. A dynamically registered client has no `secret`:
 * the store keeps only its SHA-256 (base64url), so a dump of the store authenticates nobody.
 */
export interface KnownClient extends ClientConfig {
  readonly secretDigest?: string
  /** the client_name it registered (or its metadata document gives): shown on the consent page */
  readonly clientName?: string
}

/** Client authentication's lookup: the client with this id, or undefined; rejects when the store cannot answer. */
export type ClientLookup = (clientId: string) => Promise<KnownClient | undefined>
