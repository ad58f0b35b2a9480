import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ClientConfig, ServerConfig } from '../config/types.ts'
import { OAuthError, asOAuthError, invalidRequest } from './errors.ts'
import { sameIdentifier } from './grants/jwt-bearer-id-jag.ts'
import { grantScopes } from './resource-and-scope.ts'
import { unknownClient } from './login/clients.ts'
import type { KnownClient } from './login/known-client.ts'
import type { LoginContext } from './login/context.ts'
import { idpAuthorizationUrl } from './login/idp-login.ts'
import { isS256Challenge } from './login/pkce.ts'
import { escapeHtml, redirectErrorToClient, sendErrorPage, type ValidatedTarget } from './login/responses.ts'
import { readOAuthQuery } from './query.ts'

const MAX_STATE = 1024

/**
 * `GET /oauth/authorize` (RFC 6749 §4.1.1 with PKCE, RFC 8707 `resource`): the login of clients
 * that do not speak EMA, federated to the trusted IdP (clients the operator did not configure
 * meet our consent page after it: see login/callback.ts). The
 * client and its exact redirect URI are checked first; until both are, every error is a page
 * here and never a redirect (§4.1.2.1: no open redirector). After that, errors go back to the
 * client's redirect URI with its `state` and our `iss` (RFC 9207). On success the browser goes to
 * the IdP as our OIDC login (our own PKCE, `state` and `nonce`), bound to it by a cookie. When
 * the shared store cannot answer, the answer is temporarily_unavailable (a 503 page, or a redirect);
 * when the client address has too many logins in progress, a 429 page with Retry-After (no
 * redirect: a flood gets nothing to bounce off the client).
 */
export async function authorizeRoute (app: FastifyInstance, { login }: { login: LoginContext }): Promise<void> {
  app.get('/oauth/authorize', async function authorize (request, reply) {
    let target: ValidatedTarget | undefined
    try {
      const params = readOAuthQuery(request)
      const idp = checkLoginEnabled(login)
      const client = await identifyClient(params, login)
      target = checkRedirectUri(params, client)
      checkResponseType(params)
      const codeChallenge = checkPkce(params)
      const server = selectResource(params, login.servers)
      const scopes = grantScopes(params.get('scope'), undefined, server)
      checkClientMayUseIdp(client, idp.trusted.config.allowedClients)
      const endpoints = await idp.discovery.endpoints()
      const clientName = registeredName(client)
      const started = await login.pending.begin({
        clientId: client.clientId,
        redirectUri: target.redirectUri,
        clientState: target.state,
        codeChallenge,
        resource: server.resource,
        scopes,
        ...(clientName === undefined ? {} : { clientName }),
      }, { address: request.ip })
      request.log.info({ 'event.name': 'oauth.authorize', outcome: 'login_started', 'portcullis.auth.client_id': client.clientId, 'portcullis.server': server.name },
        'authorization request: sent to the identity provider')
      return await reply.code(302).header('cache-control', 'no-store').header('set-cookie', started.cookie)
        .header('location', idpAuthorizationUrl(endpoints, idp, login.callbackUrl, { state: started.state, ...started.pending })).send()
    } catch (err) {
      const failure = asOAuthError(err)
      request.log[failure.statusCode >= 500 ? 'error' : 'info']({
        'event.name': 'oauth.authorize',
        outcome: 'rejected',
        'error.type': failure.error,
        'portcullis.auth.reason': failure.reason,
        ...(failure.statusCode >= 500 && failure.cause !== undefined ? { err: failure.cause } : {}),
      }, `authorization request rejected: ${failure.reason}`)
      if (failure.statusCode === 429) return await sendTooManyLogins(request, reply, failure)
      if (target === undefined) return await sendErrorPage(request, reply, failure)
      return await redirectErrorToClient(reply, target, login.issuer, failure)
    }
  })
}

/** 429 with Retry-After, as a page for a browser or the RFC 6749 JSON for anything else; never a redirect. */
async function sendTooManyLogins (request: FastifyRequest, reply: FastifyReply, failure: OAuthError): Promise<FastifyReply> {
  reply.code(429).headers(failure.headers).header('cache-control', 'no-store')
  if (!(request.headers.accept ?? '').includes('text/html')) return await reply.send(failure.toJSON())
  return await reply.header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    .header('x-frame-options', 'DENY')
    .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many sign-ins</title></head>
<body><h1>Too many sign-ins</h1><p>${escapeHtml(failure.message)}</p><p>Error: <code>${failure.error}</code></p></body></html>
`)
}

/** The client's registered (or documented) name for the consent page; configured clients have none and never see it. */
function registeredName (client: KnownClient): string | undefined {
  return client.clientName !== undefined && client.clientName !== '' ? client.clientName : undefined
}

function checkLoginEnabled (login: LoginContext): NonNullable<LoginContext['idp']> {
  if (login.idp === undefined) {
    throw new OAuthError('unauthorized_client', 'The authorization code flow is not enabled on this gateway; use Enterprise-Managed Authorization (jwt-bearer with an ID-JAG)', 'login_disabled')
  }
  return login.idp
}

async function identifyClient (params: ReadonlyMap<string, string>, login: LoginContext): Promise<KnownClient> {
  const clientId = params.get('client_id')
  if (clientId === undefined) throw invalidRequest('The client_id parameter is required', 'missing_client_id')
  const client = await login.clients.find(clientId)
  if (client === undefined) throw unknownClient()
  return client
}

/** Exact string comparison with a registered redirect URI: no prefix, case, port or trailing-slash leniency. */
function checkRedirectUri (params: ReadonlyMap<string, string>, client: ClientConfig): ValidatedTarget {
  const redirectUri = params.get('redirect_uri')
  if (redirectUri === undefined) throw invalidRequest('The redirect_uri parameter is required', 'missing_redirect_uri')
  if (!client.redirectUris.includes(redirectUri)) throw invalidRequest('The redirect_uri is not registered for this client', 'redirect_uri_mismatch')
  const state = params.get('state')
  if (state !== undefined && state.length > MAX_STATE) throw invalidRequest('The state parameter is too long', 'bad_state')
  return { redirectUri, state }
}

function checkResponseType (params: ReadonlyMap<string, string>): void {
  const responseType = params.get('response_type')
  if (responseType === undefined) throw invalidRequest('The response_type parameter is required', 'missing_response_type')
  if (responseType !== 'code') throw new OAuthError('unsupported_response_type', 'Only response_type=code is supported', 'unsupported_response_type')
}

/** OAuth 2.1 §4.1.1 / RFC 7636 §4.4.1: PKCE is required, and only with S256 (`plain` and the default are refused). */
function checkPkce (params: ReadonlyMap<string, string>): string {
  const challenge = params.get('code_challenge')
  if (challenge === undefined) throw invalidRequest('PKCE is required: code_challenge is missing', 'pkce_required')
  const method = params.get('code_challenge_method')
  if (method !== 'S256') throw invalidRequest('PKCE code_challenge_method must be S256', method === undefined ? 'pkce_method_missing' : 'pkce_method_not_supported')
  if (!isS256Challenge(challenge)) throw invalidRequest('The code_challenge is not an S256 challenge', 'bad_code_challenge')
  return challenge
}

/** RFC 8707: exactly one resource, naming one of our MCP servers (the access token's audience). */
function selectResource (params: ReadonlyMap<string, string>, servers: readonly ServerConfig[]): ServerConfig {
  const resource = params.get('resource')
  if (resource === undefined) throw new OAuthError('invalid_target', 'The resource parameter is required and must name one MCP server', 'missing_resource')
  const server = servers.find((s) => sameIdentifier(resource, s.resource))
  if (server === undefined) throw new OAuthError('invalid_target', 'The resource parameter does not name an MCP server of this gateway', 'resource_not_allowed')
  return server
}

/** The IdP's `allowedClients` limits which clients may use it, for its login as for its ID-JAGs. */
function checkClientMayUseIdp (client: ClientConfig, allowedClients: readonly string[] | undefined): void {
  if (allowedClients !== undefined && !allowedClients.includes(client.clientId)) {
    throw new OAuthError('unauthorized_client', 'This client may not log in through this identity provider', 'client_not_allowed')
  }
}
