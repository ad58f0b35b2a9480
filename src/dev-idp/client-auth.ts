/**
 * Client authentication at the token endpoint (RFC 6749 §2.3): client_secret_basic or
 * client_secret_post, exactly one, always required (EMA §7.7). Secrets are compared in constant
 * time, as SHA-256 digests so that lengths do not leak either, and an unknown client costs the
 * same comparison as a known one.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import type { DevIdpClient } from './config.ts'
import { OAuthError, type TokenParams } from './oauth.ts'

export function authenticateClient (
  authorization: string | undefined,
  params: TokenParams,
  clients: ReadonlyMap<string, DevIdpClient>
): DevIdpClient {
  const basic = authorization === undefined ? undefined : parseBasic(authorization)
  const fail = (description: string): OAuthError =>
    new OAuthError('invalid_client', description, { basicChallenge: authorization !== undefined })
  const bodyId = params.get('client_id')
  const bodySecret = params.get('client_secret')
  let clientId: string
  let secret: string
  if (basic !== undefined) {
    if (bodySecret !== undefined) throw fail('use one client authentication method, not both HTTP Basic and client_secret')
    // RFC 6749 allows client_id in the body alongside Basic only if it names the same client.
    if (bodyId !== undefined && bodyId !== basic.clientId) throw fail('client_id does not match the HTTP Basic credentials')
    ;({ clientId, secret } = basic)
  } else if (authorization !== undefined) {
    throw fail('the Authorization header is not valid HTTP Basic client authentication')
  } else if (bodyId !== undefined && bodySecret !== undefined) {
    clientId = bodyId
    secret = bodySecret
  } else {
    throw fail(bodyId === undefined ? 'client authentication is required' : 'client authentication is required (client_secret is missing)')
  }
  const client = clients.get(clientId)
  const matches = secretMatches(secret, client?.secret ?? UNKNOWN_CLIENT_SECRET)
  if (client === undefined || !matches) throw fail('client authentication failed')
  return client
}

const UNKNOWN_CLIENT_SECRET = randomUUID()

function secretMatches (given: string, expected: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()
  return timingSafeEqual(digest(given), digest(expected))
}

/** `Basic base64(form-urlencoded id ":" form-urlencoded secret)` (RFC 6749 §2.3.1); undefined if malformed. */
function parseBasic (header: string): { clientId: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header)
  if (match?.[1] === undefined) return undefined
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  try {
    const clientId = formDecode(decoded.slice(0, colon))
    const secret = formDecode(decoded.slice(colon + 1))
    return secret === '' ? undefined : { clientId, secret }
  } catch {
    return undefined
  }
}

function formDecode (value: string): string {
  return decodeURIComponent(value.replaceAll('+', ' '))
}
