import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { OAuthError, invalidGrant, invalidRequest } from './errors.ts'
import { authenticateClient, type ClientAuthContext } from './client-auth.ts'
import { JWT_BEARER, verifyIdJagAssertion, type IdJag, type IdJagContext } from './grants/jwt-bearer-id-jag.ts'
import { grantScopes, selectServer } from './resource-and-scope.ts'
import { issueAccessToken } from './issue-access-token.ts'
import type { SigningKeySet } from './keys.ts'

/** design.md §5: a token request body over 64 KiB → 413. */
export const MAX_TOKEN_REQUEST_BYTES = 64 * 1024

export interface TokenEndpointOptions {
  readonly config: Config
  readonly keys: SigningKeySet
  readonly metrics: Metrics
  readonly clientAuth: ClientAuthContext
  readonly idJag: IdJagContext
}

/**
 * `POST /oauth/token`. Reading `issueToken` is reading the protocol (protocol.md §1.5): parse the
 * form → grant type → client authentication → the ID-JAG checks → resource → scope → single use
 * of the assertion → the access token. Every rejection is an RFC 6749 error body, an audit line
 * and a `portcullis_token_requests_total{outcome="rejected",reason}` count.
 */
export async function tokenEndpoint (app: FastifyInstance, opts: TokenEndpointOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_TOKEN_REQUEST_BYTES },
    function keepRawBody (_request, body, done) { done(null, body) })
  app.setErrorHandler(function tokenErrorHandler (err: FastifyError, request, reply) {
    const failure = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? new OAuthError('invalid_request', 'The request body is too large', 'body_too_large', { statusCode: 413 })
      : typeof err.statusCode === 'number' && err.statusCode < 500
        ? invalidRequest('The request could not be read')
        : new OAuthError('server_error', 'The request could not be processed', 'internal', { cause: err })
    return rejectTokenRequest(request, reply, failure, 'other', opts.metrics, performance.now())
  })
  app.post('/oauth/token', async function issueToken (request, reply) {
    const started = performance.now()
    let grantType = 'other'
    try {
      const params = readForm(request)
      grantType = grantTypeLabel(params.get('grant_type'))
      checkGrantType(params)
      const client = await authenticateClient(params, request.headers.authorization, opts.clientAuth)
      const idJag = await verifyIdJagAssertion(params.get('assertion'), client, opts.idJag)
      const server = selectServer(Object.values(opts.config.servers), idJag.resources, params.get('resource'))
      const scopes = grantScopes(params.get('scope'), idJag.scopes, server)
      await claimSingleUse(idJag, opts.idJag)
      const issued = await issueAccessToken({
        subject: idJag.claims.sub,
        clientId: client.clientId,
        resource: server.resource,
        scopes,
        idpIssuer: idJag.idp.config.issuer,
        assertionJti: idJag.claims.jti,
        claims: mapIdentityClaims(idJag),
      }, opts.keys, opts.config.authorization.issuer, opts.config.authorization.accessTokenTtlSeconds)
      opts.metrics.tokenRequests.inc({ grant_type: grantType, outcome: 'issued', error: '', reason: '' })
      request.log.info({
        'log.type': 'audit',
        'event.name': 'oauth.token',
        outcome: 'issued',
        'portcullis.auth.client_id': client.clientId,
        'portcullis.auth.issuer': idJag.idp.config.issuer,
        'portcullis.auth.assertion_jti': idJag.claims.jti,
        'portcullis.server': server.name,
        'portcullis.token.jti': issued.jti,
        duration_s: (performance.now() - started) / 1000,
      }, 'access token issued')
      return await noStore(reply).send({ access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn, scope: scopes.join(' ') })
    } catch (err) {
      const failure = err instanceof OAuthError ? err : new OAuthError('server_error', 'The request could not be processed', 'internal', { cause: err })
      return await rejectTokenRequest(request, reply, failure, grantType, opts.metrics, started)
    }
  })
  app.get('/oauth/token', async function tokenNeedsPost (_request, reply) {
    return await noStore(reply).code(405).header('allow', 'POST').send({ error: 'invalid_request', error_description: 'Use POST' })
  })
}

/** RFC 6749 §3.2: form-encoded, and "Request and response parameters MUST NOT be included more than once". */
function readForm (request: FastifyRequest): Map<string, string> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') throw invalidRequest('Content-Type must be application/x-www-form-urlencoded', 'wrong_content_type')
  if (request.headers['content-encoding'] !== undefined) throw invalidRequest('Content-Encoding is not accepted', 'wrong_content_type')
  if (Object.keys(request.query as object).length > 0) throw invalidRequest('Parameters must be in the body, not the query string', 'query_parameters')
  const body = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : ''
  const params = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(body)) {
    if (params.has(name)) throw invalidRequest(`The ${name.slice(0, 40)} parameter is repeated`, 'duplicate_parameter')
    params.set(name, value)
  }
  return params
}

function checkGrantType (params: ReadonlyMap<string, string>): void {
  const grantType = params.get('grant_type')
  if (grantType === undefined) throw invalidRequest('The grant_type parameter is required', 'missing_grant_type')
  if (grantType !== JWT_BEARER) throw new OAuthError('unsupported_grant_type', 'Only urn:ietf:params:oauth:grant-type:jwt-bearer is supported', 'unsupported_grant_type')
}

function grantTypeLabel (grantType: string | undefined): string {
  if (grantType === JWT_BEARER) return 'jwt_bearer'
  if (grantType === 'authorization_code') return 'authorization_code'
  return 'other'
}

/** EMA §7.4.2: the `jti` is single-use per issuer until it expires (plus skew). */
async function claimSingleUse (idJag: IdJag, ctx: IdJagContext): Promise<void> {
  let first: boolean
  try {
    first = await ctx.replay.claim(idJag.idp.config.issuer, idJag.claims.jti, idJag.claims.exp + ctx.clockSkewSeconds)
  } catch (err) {
    // Fail closed: without the replay check no assertion is redeemed.
    throw new OAuthError('temporarily_unavailable', 'The replay check is unavailable; try again later', 'store_unavailable', { cause: err })
  }
  if (!first) throw invalidGrant('The assertion has already been used', 'replayed_jti')
}

/** The configured identity claims (access-token name ← ID-JAG name); only plain JSON values cross. */
function mapIdentityClaims (idJag: IdJag): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [target, source] of Object.entries(idJag.idp.config.claims)) {
    const value = idJag.claims[source]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[target] = value
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[target] = value
  }
  return out
}

function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

async function rejectTokenRequest (request: FastifyRequest, reply: FastifyReply, failure: OAuthError, grantType: string,
  metrics: Metrics, started: number): Promise<FastifyReply> {
  metrics.tokenRequests.inc({ grant_type: grantType, outcome: 'rejected', error: failure.error, reason: failure.reason })
  request.log[failure.statusCode >= 500 ? 'error' : 'info']({
    'log.type': 'audit',
    'event.name': 'oauth.token',
    outcome: 'rejected',
    'error.type': failure.error,
    'portcullis.auth.reason': failure.reason,
    duration_s: (performance.now() - started) / 1000,
    ...(failure.statusCode >= 500 && failure.cause !== undefined ? { err: failure.cause } : {}),
  }, `token request rejected: ${failure.reason}`)
  for (const [name, value] of Object.entries(failure.headers)) reply.header(name, value)
  return await noStore(reply).code(failure.statusCode).send(failure.toJSON())
}
