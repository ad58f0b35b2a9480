import { createHash, timingSafeEqual } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose'
import type { ClientConfig } from '../config/types.ts'
import { isStoreUnavailable } from '../store/store.ts'
import { OAuthError, invalidRequest, storeUnavailable, type OAuthReason } from './errors.ts'
import type { ClientLookup, KnownClient } from './login/known-client.ts'
import type { ReplayStore } from './replay-cache.ts'

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const CLIENT_ASSERTION_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

export interface AuthenticatedClient {
  readonly clientId: string
  readonly method: ClientConfig['auth']
}

export interface ClientAuthContext {
  /** the clients that may authenticate here (configured ones in memory, dynamic ones from the store) */
  readonly clients: ClientLookup
  /** what a private_key_jwt client assertion's `aud` may be: our token endpoint or our issuer */
  readonly audiences: readonly string[]
  readonly replay: ReplayStore
}

/**
 * RFC 6749 §2.3: authenticate the client by exactly one method — "The client MUST NOT use more
 * than one authentication method in each request" — and only by the method it is registered
 * for. Secrets are compared in constant time.
 */
export async function authenticateClient (params: ReadonlyMap<string, string>, authorization: string | undefined,
  ctx: ClientAuthContext): Promise<AuthenticatedClient> {
  const basic = authorization !== undefined && /^basic /i.test(authorization)
  const post = params.has('client_secret')
  const jwt = params.has('client_assertion') || params.has('client_assertion_type')
  if (authorization !== undefined && !basic) throw invalidRequest('Only HTTP Basic is accepted in the Authorization header', 'bad_client_auth')
  if ([basic, post, jwt].filter(Boolean).length > 1) throw invalidRequest('More than one client authentication method was used', 'multiple_client_auth')
  if (basic) return await authenticateBasic(authorization, params, ctx)
  if (post) return await authenticateSecret(params.get('client_id'), params.get('client_secret'), 'client_secret_post', ctx, false)
  if (jwt) return await authenticateClientAssertion(params, ctx)
  throw new OAuthError('invalid_client', 'Client authentication is required', 'no_client_auth')
}

async function authenticateBasic (authorization: string, params: ReadonlyMap<string, string>, ctx: ClientAuthContext): Promise<AuthenticatedClient> {
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) throw invalidClient('Malformed Basic credentials', 'bad_client_auth', true)
  let clientId: string, secret: string
  try {
    // RFC 6749 §2.3.1: both are form-urlencoded before being joined with ':'.
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
  } catch {
    throw invalidClient('Malformed Basic credentials', 'bad_client_auth', true)
  }
  const bodyClientId = params.get('client_id')
  if (bodyClientId !== undefined && bodyClientId !== clientId) throw invalidRequest('client_id does not match the authenticated client', 'client_mismatch')
  return await authenticateSecret(clientId, secret, 'client_secret_basic', ctx, true)
}

async function authenticateSecret (clientId: string | undefined, secret: string | undefined, method: 'client_secret_basic' | 'client_secret_post',
  ctx: ClientAuthContext, basic: boolean): Promise<AuthenticatedClient> {
  const client = clientId === undefined ? undefined : await lookUp(clientId, ctx)
  const ok = secret !== undefined && secretMatches(secret, client)
  if (client === undefined || !ok || client.auth !== method) throw invalidClient('Client authentication failed', 'bad_client_credentials', basic)
  return { clientId: client.clientId, method }
}

async function authenticateClientAssertion (params: ReadonlyMap<string, string>, ctx: ClientAuthContext): Promise<AuthenticatedClient> {
  if (params.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) throw invalidRequest('client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer', 'bad_client_auth')
  const assertion = params.get('client_assertion')
  if (assertion === undefined || assertion.length > 16 * 1024) throw invalidClient('Client authentication failed', 'bad_client_assertion', false)
  // RFC 7523 §3: iss and sub are the client_id; which client is decided by that claim, and then
  // proven by the signature with that client's registered keys.
  const unverified = peekIssuer(assertion)
  const client = unverified === undefined ? undefined : await lookUp(unverified, ctx)
  if (client === undefined || client.auth !== 'private_key_jwt') throw invalidClient('Client authentication failed', 'bad_client_assertion', false)
  const bodyClientId = params.get('client_id')
  if (bodyClientId !== undefined && bodyClientId !== client.clientId) throw invalidRequest('client_id does not match the authenticated client', 'client_mismatch')
  let payload
  try {
    ({ payload } = await jwtVerify(assertion, clientKeys(client), {
      issuer: client.clientId,
      subject: client.clientId,
      audience: [...ctx.audiences],
      algorithms: CLIENT_ASSERTION_ALGS,
      requiredClaims: ['exp', 'jti'],
      maxTokenAge: '10m',
      clockTolerance: 30,
    }))
  } catch (err) {
    throw new OAuthError('invalid_client', 'Client authentication failed', 'bad_client_assertion', { cause: err })
  }
  if (typeof payload.jti !== 'string' || payload.exp === undefined) throw invalidClient('Client authentication failed', 'bad_client_assertion', false)
  let first: boolean
  try {
    first = await ctx.replay.claim(`client:${client.clientId}`, payload.jti, payload.exp + 30)
  } catch (err) {
    // Fail closed: without the replay check no assertion authenticates.
    throw storeUnavailable(err)
  }
  if (!first) throw new OAuthError('invalid_client', 'Client authentication failed', 'bad_client_assertion', { cause: new Error('client assertion replayed') })
  return { clientId: client.clientId, method: 'private_key_jwt' }
}

/** The client, or undefined; a store that cannot answer is a 503, never an authentication failure. */
async function lookUp (clientId: string, ctx: ClientAuthContext): Promise<KnownClient | undefined> {
  try {
    return await ctx.clients(clientId)
  } catch (err) {
    throw isStoreUnavailable(err) ? storeUnavailable(err) : err
  }
}

/**
 * The secret against the client's: its stored SHA-256 (dynamic clients) or its configured secret,
 * compared as digests in constant time. Unknown clients and clients without a secret are compared
 * too (against zeros, and then refused), so timing does not tell which client ids exist.
 */
function secretMatches (secret: string, client: KnownClient | undefined): boolean {
  const expected = client?.secretDigest !== undefined
    ? Buffer.from(client.secretDigest, 'base64url')
    : client?.secret !== undefined ? sha256(client.secret) : undefined
  const given = sha256(secret)
  const comparable = expected !== undefined && expected.length === given.length
  return timingSafeEqual(given, comparable ? expected : NO_SECRET) && comparable
}

const NO_SECRET = Buffer.alloc(32)

const keyCache = new WeakMap<ClientConfig, JWTVerifyGetKey>()

function clientKeys (client: ClientConfig): JWTVerifyGetKey {
  let keys = keyCache.get(client)
  if (keys === undefined) {
    keys = client.jwks !== undefined
      ? createLocalJWKSet({ keys: client.jwks.keys.map((k) => ({ ...k })) })
      : createRemoteJWKSet(new URL(client.jwksUri ?? 'invalid:'), { timeoutDuration: 5_000 })
    keyCache.set(client, keys)
  }
  return keys
}

function peekIssuer (jwt: string): string | undefined {
  const payload = jwt.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    return typeof claims === 'object' && claims !== null && typeof (claims as { iss?: unknown }).iss === 'string' ? (claims as { iss: string }).iss : undefined
  } catch {
    return undefined
  }
}

function invalidClient (description: string, reason: OAuthReason, basic: boolean): OAuthError {
  // RFC 6749 §5.2: 401, with a WWW-Authenticate matching the scheme the client tried.
  return new OAuthError('invalid_client', description, reason, basic ? { headers: { 'www-authenticate': 'Basic realm="portcullis"' } } : {})
}

export function constantTimeEqual (a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

function sha256 (value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}
