import type { ServerConfig } from '../../config/types.ts'
import { authenticateClient, type AuthenticatedClient, type ClientAuthContext } from '../client-auth.ts'
import { isStoreUnavailable } from '../../store/store.ts'
import { OAuthError, invalidGrant, invalidRequest, storeUnavailable } from '../errors.ts'
import { issueAccessToken, type IssuedAccessToken } from '../issue-access-token.ts'
import type { SigningKeySet } from '../keys.ts'
import type { CodeGrant } from '../login/codes.ts'
import type { LoginContext } from '../login/context.ts'
import { pkceMatches } from '../login/pkce.ts'
import { sameIdentifier } from './jwt-bearer-id-jag.ts'

export const AUTHORIZATION_CODE = 'authorization_code'

/** What a grant hands the token endpoint: the token, its scope, and the fields of the audit line. */
export interface GrantOutcome {
  readonly issued: IssuedAccessToken
  readonly scopes: readonly string[]
  readonly audit: Readonly<Record<string, unknown>>
}

export interface AuthorizationCodeContext {
  readonly login: LoginContext
  readonly clientAuth: Omit<ClientAuthContext, 'clients'>
  readonly keys: SigningKeySet
  readonly issuer: string
  readonly accessTokenTtlSeconds: number
}

/**
 * `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2), as named
 * steps: the client authenticates as registered (a public client names itself); the code is
 * known and fresh — a redeemed one is a replay, refused, and what it issued is revoked — and was
 * issued to this client, for this redirect URI, with this PKCE verifier, for this resource. It
 * is redeemed only once every check passed, so a request failing for another reason does not burn
 * it. The access token is the one the ID-JAG path issues, for the code's one resource. Codes and
 * revocations live in the shared store: when it cannot answer, no token is issued (503).
 */
export async function authorizationCodeGrant (params: ReadonlyMap<string, string>, authorization: string | undefined,
  ctx: AuthorizationCodeContext): Promise<GrantOutcome> {
  const client = await authenticateCodeClient(params, authorization, ctx)
  const code = requiredParam(params, 'code')
  const grant = await findFreshCode(code, ctx)
  checkCodeClient(grant, client)
  checkRedirectUri(grant, params.get('redirect_uri'))
  checkPkceVerifier(grant, params.get('code_verifier'))
  checkResource(grant, params.get('resource'), ctx.login.servers)
  if (!await ctx.login.codes.redeem(code)) return await refuseReplay(code, ctx)
  const issued = await issueAccessToken({
    subject: grant.subject,
    clientId: grant.clientId,
    resource: grant.resource,
    scopes: grant.scopes,
    idpIssuer: grant.idpIssuer,
    assertionJti: undefined,
    claims: grant.claims,
  }, ctx.keys, ctx.issuer, ctx.accessTokenTtlSeconds)
  await recordIssuedToken(code, issued, ctx)
  return {
    issued,
    scopes: grant.scopes,
    audit: { 'portcullis.auth.client_id': client.clientId, 'portcullis.auth.issuer': grant.idpIssuer, 'portcullis.server': serverName(grant, ctx.login.servers) },
  }
}

/** Confidential clients by their registered method; a public client (`auth: none`) only by `client_id`. */
async function authenticateCodeClient (params: ReadonlyMap<string, string>, authorization: string | undefined, ctx: AuthorizationCodeContext): Promise<AuthenticatedClient> {
  const credentials = authorization !== undefined || params.has('client_secret') || params.has('client_assertion') || params.has('client_assertion_type')
  if (credentials) return await authenticateClient(params, authorization, { ...ctx.clientAuth, clients: ctx.login.clients.confidential })
  const clientId = params.get('client_id')
  if (clientId === undefined) throw new OAuthError('invalid_client', 'Client authentication is required', 'no_client_auth')
  let client
  try {
    client = await ctx.login.clients.find(clientId)
  } catch (err) {
    if (isStoreUnavailable(err)) throw storeUnavailable(err)
    throw new OAuthError('invalid_client', 'Client authentication failed', 'bad_client_credentials', { cause: err })
  }
  // A confidential client must prove itself; naming it is not enough.
  if (client?.auth !== 'none') throw new OAuthError('invalid_client', 'Client authentication failed', 'bad_client_credentials')
  return { clientId: client.clientId, method: 'none' }
}

function requiredParam (params: ReadonlyMap<string, string>, name: 'code'): string {
  const value = params.get(name)
  if (value === undefined || value === '') throw invalidRequest(`The ${name} parameter is required`, `missing_${name}`)
  return value
}

async function findFreshCode (code: string, ctx: AuthorizationCodeContext): Promise<CodeGrant> {
  const found = await ctx.login.codes.find(code)
  if (found === undefined) throw invalidGrant('The authorization code is invalid or expired', 'unknown_code')
  if (found.redeemed) return await refuseReplay(code, ctx)
  return found.grant
}

/** RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued from it are revoked. */
async function refuseReplay (code: string, ctx: AuthorizationCodeContext): Promise<never> {
  for (const token of await ctx.login.codes.replayed(code)) await ctx.login.revocations.revoke(token.jti, token.expiresAt)
  throw invalidGrant('The authorization code has already been used; the tokens issued from it are revoked', 'replayed_code')
}

function checkCodeClient (grant: CodeGrant, client: AuthenticatedClient): void {
  if (grant.clientId !== client.clientId) throw invalidGrant('The authorization code was issued to another client', 'client_mismatch')
}

/** RFC 6749 §4.1.3: identical to the redirect_uri of the authorization request (always sent there). */
function checkRedirectUri (grant: CodeGrant, redirectUri: string | undefined): void {
  if (redirectUri === undefined) throw invalidRequest('The redirect_uri parameter is required', 'missing_redirect_uri')
  if (redirectUri !== grant.redirectUri) throw invalidGrant('The redirect_uri does not match the authorization request', 'redirect_uri_mismatch')
}

function checkPkceVerifier (grant: CodeGrant, verifier: string | undefined): void {
  if (verifier === undefined) throw invalidRequest('The code_verifier parameter is required (PKCE)', 'missing_code_verifier')
  if (!pkceMatches(verifier, grant.codeChallenge)) throw invalidGrant('The code_verifier does not match the code_challenge', 'pkce_mismatch')
}

/** RFC 8707 §2.2: a resource sent here must be the one the code is for (one trailing `/` forgiven). */
function checkResource (grant: CodeGrant, resource: string | undefined, servers: readonly ServerConfig[]): void {
  if (resource === undefined || sameIdentifier(resource, grant.resource)) return
  const known = servers.some((s) => sameIdentifier(resource, s.resource))
  throw new OAuthError('invalid_target', known ? 'The authorization code was issued for another resource' : 'The resource parameter does not name an MCP server of this gateway',
    known ? 'resource_mismatch' : 'resource_not_allowed')
}

async function recordIssuedToken (code: string, issued: IssuedAccessToken, ctx: AuthorizationCodeContext): Promise<void> {
  const expiresAt = Math.floor(Date.now() / 1000) + issued.expiresIn
  // A replay between redeeming and here finds the token only now: revoke it at once.
  if (!await ctx.login.codes.recordToken(code, issued.jti, expiresAt)) await ctx.login.revocations.revoke(issued.jti, expiresAt)
}

function serverName (grant: CodeGrant, servers: readonly ServerConfig[]): string | undefined {
  return servers.find((s) => s.resource === grant.resource)?.name
}
