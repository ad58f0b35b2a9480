import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { decodeJwt } from 'jose'
import type { Config } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { OAuthError, asOAuthError, invalidGrant, invalidRequest } from './errors.ts'
import type { GrantTypeLabel, OAuthErrorCode, OAuthReason } from './reasons.ts'
import { authenticateClient, type ClientAuthContext } from './client-auth.ts'
import { JWT_BEARER, verifyIdJagAssertion, type IdJag, type IdJagContext } from './grants/jwt-bearer-id-jag.ts'
import { AUTHORIZATION_CODE, authorizationCodeGrant, type AuthorizationCodeContext, type GrantOutcome } from './grants/authorization-code.ts'
import { grantScopes, selectServer } from './resource-and-scope.ts'
import { issueAccessToken } from './issue-access-token.ts'
import { mapIdentityClaims } from './login/identity-claims.ts'
import type { SigningKeySet } from './keys.ts'

/** design.md §5: a token request body over 64 KiB → 413. */
export const MAX_TOKEN_REQUEST_BYTES = 64 * 1024

export interface TokenEndpointOptions {
  readonly config: Config
  readonly keys: SigningKeySet
  readonly metrics: Metrics
  readonly clientAuth: ClientAuthContext
  readonly idJag: IdJagContext
  /** the federated login's authorization-code grant; undefined when no IdP has `login` */
  readonly authorizationCode: AuthorizationCodeContext | undefined
}

/**
 * `POST /oauth/token`. Reading `issueToken` is reading the protocol: parse the form → grant type
 * → the grant's named steps (protocol.md §1.5 for jwt-bearer; RFC 6749 §4.1.3 with PKCE for
 * authorization_code) → the access token. Every rejection is an RFC 6749 error body, an audit
 * line and a `portcullis_token_requests_total{outcome="rejected",reason}` count.
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
    let grantType: GrantTypeLabel = 'other'
    try {
      const params = readForm(request)
      grantType = grantTypeLabel(params.get('grant_type'))
      const codeGrant = checkGrantType(params, opts)
      const outcome = codeGrant === undefined
        ? await jwtBearerGrant(params, request.headers.authorization, opts)
        : await authorizationCodeGrant(params, request.headers.authorization, codeGrant)
      countTokenRequest(opts.metrics, { grant_type: grantType, outcome: 'issued', error: '', reason: '' })
      request.log.info({
        'log.type': 'audit',
        'event.name': 'oauth.token',
        outcome: 'issued',
        'oauth.grant_type': grantType,
        ...outcome.audit,
        'portcullis.token.jti': outcome.issued.jti,
        duration_s: (performance.now() - started) / 1000,
      }, 'access token issued')
      return await noStore(reply).send({ access_token: outcome.issued.token, token_type: 'Bearer', expires_in: outcome.issued.expiresIn, scope: outcome.scopes.join(' ') })
    } catch (err) {
      return await rejectTokenRequest(request, reply, asOAuthError(err), grantType, opts.metrics, started)
    }
  })
  app.get('/oauth/token', async function tokenNeedsPost (_request, reply) {
    return await noStore(reply).code(405).header('allow', 'POST').send({ error: 'invalid_request', error_description: 'Use POST' })
  })
  // Browser-based MCP clients redeem codes with fetch(): CORS without credentials, like the SDK's AS router.
  app.options('/oauth/token', async function tokenPreflight (_request, reply) {
    return await reply.code(204).header('access-control-allow-origin', '*').header('access-control-allow-methods', 'POST')
      .header('access-control-allow-headers', 'authorization, content-type').header('access-control-max-age', '600').send()
  })
}

/** protocol.md §1.5: client authentication → the ID-JAG checks → resource → scope → single use of the assertion. */
async function jwtBearerGrant (params: ReadonlyMap<string, string>, authorization: string | undefined, opts: TokenEndpointOptions): Promise<GrantOutcome> {
  const client = await authenticateClient(params, authorization, opts.clientAuth)
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
    claims: mapIdentityClaims(idJag.claims, idJag.idp.config.claims),
  }, opts.keys, opts.config.authorization.issuer, opts.config.authorization.accessTokenTtlSeconds)
  return {
    issued,
    scopes,
    audit: {
      'portcullis.auth.client_id': client.clientId,
      'portcullis.auth.issuer': idJag.idp.config.issuer,
      'portcullis.auth.assertion_jti': idJag.claims.jti,
      'portcullis.server': server.name,
    },
  }
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

/**
 * The client a token request names, unauthenticated (for the per-client rate limit, before any
 * check): the Basic user name, else `client_id`, else the client assertion's `iss`.
 */
export function claimedClientId (request: FastifyRequest): string | undefined {
  const basic = /^basic +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
  if (basic !== undefined) return formDecode(Buffer.from(basic, 'base64').toString('utf8').split(':', 1)[0] ?? '')
  if (!Buffer.isBuffer(request.body)) return undefined
  const params = new URLSearchParams(request.body.toString('utf8'))
  const assertion = params.get('client_assertion')
  if (params.get('client_id') !== null || assertion === null) return params.get('client_id') ?? undefined
  try {
    const { iss } = decodeJwt(assertion)
    return iss
  } catch {
    return undefined
  }
}

/** RFC 6749 §2.3.1: Basic credentials are form-encoded first */
function formDecode (value: string): string {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '))
  } catch {
    return value
  }
}

/** The grant to run: undefined for jwt-bearer, the code context for authorization_code (only when the login is on). */
function checkGrantType (params: ReadonlyMap<string, string>, opts: TokenEndpointOptions): AuthorizationCodeContext | undefined {
  const grantType = params.get('grant_type')
  if (grantType === undefined) throw invalidRequest('The grant_type parameter is required', 'missing_grant_type')
  if (grantType === JWT_BEARER) return undefined
  if (grantType === AUTHORIZATION_CODE && opts.authorizationCode !== undefined) return opts.authorizationCode
  const supported = opts.authorizationCode === undefined ? `${JWT_BEARER} is` : `${JWT_BEARER} and ${AUTHORIZATION_CODE} are`
  throw new OAuthError('unsupported_grant_type', `Only ${supported} supported`, 'unsupported_grant_type')
}

function grantTypeLabel (grantType: string | undefined): GrantTypeLabel {
  if (grantType === JWT_BEARER) return 'jwt_bearer'
  if (grantType === AUTHORIZATION_CODE) return 'authorization_code'
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

/** portcullis_token_requests_total, its labels from their closed sets (reasons.ts): a typo fails typecheck. */
function countTokenRequest (metrics: Metrics, labels: { grant_type: GrantTypeLabel; outcome: 'issued' | 'rejected'; error: OAuthErrorCode | ''; reason: OAuthReason | '' }): void {
  metrics.tokenRequests.inc(labels)
}

function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').header('access-control-allow-origin', '*')
}

async function rejectTokenRequest (request: FastifyRequest, reply: FastifyReply, failure: OAuthError, grantType: GrantTypeLabel,
  metrics: Metrics, started: number): Promise<FastifyReply> {
  countTokenRequest(metrics, { grant_type: grantType, outcome: 'rejected', error: failure.error, reason: failure.reason })
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
