import { lookup } from 'node:dns/promises'
import type { LookupFunction } from 'node:net'
import { Agent } from 'undici'
import type { KnownClient } from './known-client.ts'
import { OAuthError, type OAuthReason } from '../errors.ts'
import { isPublicAddress } from './address-guard.ts'
import { fetchJson, isObject } from './http.ts'
import { redirectUriProblem } from './redirect-uri.ts'

export interface CimdFetchOptions {
  /** DNS, injectable for tests */
  readonly resolve: (hostname: string) => Promise<ReadonlyArray<{ readonly address: string, readonly family: number }>>
  /** the SSRF guard: which resolved addresses may be connected to */
  readonly isAllowedAddress: (address: string) => boolean
  readonly timeoutMs: number
  readonly maxBytes: number
  /** extra TLS options (tests: a private CA) */
  readonly tls?: { readonly ca?: string }
}

export const DEFAULT_CIMD_FETCH: CimdFetchOptions = {
  resolve: async (hostname) => await lookup(hostname, { all: true, order: 'verbatim' }),
  isAllowedAddress: isPublicAddress,
  timeoutMs: 5_000,
  maxBytes: 16 * 1024,
}

const refuse = (description: string, reason: OAuthReason, cause?: unknown): OAuthError => new OAuthError('invalid_client', description, reason, { cause })

/**
 * A client_id that is an https URL names a client ID metadata document
 * (draft-ietf-oauth-client-id-metadata-document §3): https, with a path, no dot segments, no
 * fragment, no credentials, no query. Anything else that starts with https:// is refused.
 */
export function clientIdMetadataUrl (clientId: string): URL | undefined {
  if (!clientId.startsWith('https://')) return undefined
  if (!URL.canParse(clientId)) throw refuse('The client_id URL is not a valid URL', 'bad_client_id_url')
  const url = new URL(clientId)
  // url.href === clientId: lower-case host, no default port, and no dot segments (the parser removes them)
  const bad = url.pathname === '/' || url.username !== '' || url.password !== '' || url.search !== '' ||
    clientId.includes('#') || clientId.includes('?') || url.href !== clientId
  if (bad) throw refuse('The client_id URL must be a canonical https URL with a path and no query, fragment or dot segments', 'bad_client_id_url')
  return url
}

/**
 * Fetch and check a client ID metadata document. SSRF guards: the host is resolved first and
 * every address it has must pass `isAllowedAddress` (public unicast only); the connection then
 * goes to the address that was checked — not to a second DNS answer — with TLS verified for the
 * host name; no redirects; bounded time and size. The document's `client_id` must equal the URL.
 */
export async function fetchClientMetadataDocument (clientId: string, url: URL, allowedHosts: readonly string[], opts: CimdFetchOptions): Promise<KnownClient> {
  const pinned = await resolveChecked(url.hostname.replace(/^\[(.*)\]$/, '$1'), opts)
  const pinnedLookup: LookupFunction = (_host, options, callback) => {
    if (options.all === true) (callback as unknown as (err: null, addresses: Array<{ address: string, family: number }>) => void)(null, [pinned])
    else callback(null, pinned.address, pinned.family)
  }
  const agent = new Agent({ connect: { lookup: pinnedLookup, timeout: opts.timeoutMs, ...opts.tls } })
  let answer
  try {
    answer = await fetchJson(url.href, {}, { timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes, dispatcher: agent })
  } catch (err) {
    throw refuse('The client metadata document could not be fetched', 'cimd_fetch_failed', err)
  } finally {
    void agent.close()
  }
  if (answer.status !== 200) throw refuse(`The client metadata document answered HTTP ${answer.status}`, 'cimd_fetch_failed')
  if (!(answer.contentType ?? '').toLowerCase().startsWith('application/json')) throw refuse('The client metadata document is not application/json', 'cimd_bad_document')
  return clientFromDocument(clientId, url, answer.body, allowedHosts)
}

async function resolveChecked (hostname: string, opts: CimdFetchOptions): Promise<{ address: string, family: number }> {
  let addresses
  try {
    addresses = await opts.resolve(hostname)
  } catch (err) {
    throw refuse('The client_id URL\'s host does not resolve', 'cimd_dns_failed', err)
  }
  const [first] = addresses
  if (first === undefined) throw refuse('The client_id URL\'s host does not resolve', 'cimd_dns_failed')
  // All of them: a name that also resolves to an internal address is refused outright.
  if (addresses.some((a) => !opts.isAllowedAddress(a.address))) {
    throw refuse('The client_id URL points at a private, loopback or link-local address', 'cimd_forbidden_address')
  }
  return { address: first.address, family: first.family }
}

/** The document's claims, checked: it is about this URL, lists redirect URIs we may use, and is a public client. */
export function clientFromDocument (clientId: string, url: URL, doc: unknown, allowedHosts: readonly string[]): KnownClient {
  if (!isObject(doc)) throw refuse('The client metadata document is not a JSON object', 'cimd_bad_document')
  if (doc.client_id !== clientId) throw refuse('The client metadata document\'s client_id is not its own URL', 'cimd_client_id_mismatch')
  // It is public: a secret in a public document authenticates nothing.
  if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) throw refuse('A client metadata document must not carry a client secret', 'cimd_bad_document')
  const method = doc.token_endpoint_auth_method
  if (method !== undefined && method !== 'none') throw refuse('Only public clients (token_endpoint_auth_method none) may use a client metadata document', 'cimd_bad_document')
  const uris = doc.redirect_uris
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > 20 || !uris.every((u): u is string => typeof u === 'string')) {
    throw refuse('The client metadata document must list redirect_uris', 'cimd_bad_document')
  }
  // Its own host, or one the operator allows (loopback for native apps by default).
  const hosts = [...allowedHosts, url.hostname]
  if (uris.some((u) => redirectUriProblem(u, hosts) !== undefined)) throw refuse('The client metadata document lists a redirect URI this gateway does not allow', 'cimd_bad_redirect_uri')
  const name = typeof doc.client_name === 'string' && doc.client_name !== '' ? doc.client_name.slice(0, 200) : undefined
  return { clientId, auth: 'none', secret: undefined, jwksUri: undefined, jwks: undefined, redirectUris: [...uris], ...(name === undefined ? {} : { clientName: name }) }
}
