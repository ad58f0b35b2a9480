import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { ClientAuthMethod } from '../config/types.ts'
import { findStrictJsonViolation } from '../jsonrpc/strict-json.ts'
import { OAuthError, asOAuthError, type OAuthReason } from './errors.ts'
import type { LoginContext } from './login/context.ts'
import { isObject } from './login/http.ts'
import { redirectUriProblem } from './login/redirect-uri.ts'

const MAX_REGISTRATION_BYTES = 16 * 1024
const REGISTRABLE_AUTH: readonly ClientAuthMethod[] = ['none', 'client_secret_basic', 'client_secret_post']
/** Members a client may not set: the server assigns them, or they need trust this endpoint cannot give. */
const REFUSED_MEMBERS = ['client_id', 'client_secret', 'client_id_issued_at', 'client_secret_expires_at', 'registration_access_token',
  'registration_client_uri', 'software_statement', 'jwks', 'jwks_uri'] as const

interface Registration {
  readonly auth: ClientAuthMethod
  readonly redirectUris: readonly string[]
  readonly clientName: string | undefined
}

/**
 * `POST /oauth/register` (RFC 7591), served only when `registration.dynamic` is on, for clients
 * that log in through the browser. The server assigns the client_id (a client can neither pick
 * one nor collide with a configured client), redirect URIs must name an allowed host, and what
 * the client may ask for is narrowed to what this AS does: the authorization-code grant,
 * response type `code`, authentication `none` or a generated secret — returned once, and kept in
 * the shared store only as its SHA-256. When the store cannot answer: 503 temporarily_unavailable.
 */
export async function registrationRoute (app: FastifyInstance, { login }: { login: LoginContext }): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_REGISTRATION_BYTES }, function keepRawBody (_request, body, done) { done(null, body) })
  app.setErrorHandler(async function registrationErrorHandler (err: FastifyError, request, reply) {
    const failure = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? new OAuthError('invalid_client_metadata', 'The registration request is too large', 'body_too_large', { statusCode: 413 })
      : asOAuthError(err)
    return await reject(reply, request.log, failure)
  })
  app.options('/oauth/register', async function registrationPreflight (_request, reply) {
    return await cors(reply).code(204).header('access-control-allow-methods', 'POST').header('access-control-allow-headers', 'content-type').send()
  })
  app.post('/oauth/register', async function registerClient (request, reply) {
    try {
      const metadata = readMetadata(request.headers['content-type'], request.body)
      const registration = checkMetadata(metadata, login.registration.allowedRedirectHosts)
      const secret = registration.auth === 'none' ? undefined : randomBytes(32).toString('base64url')
      const client = await login.clients.register({
        auth: registration.auth,
        secret,
        jwksUri: undefined,
        jwks: undefined,
        redirectUris: registration.redirectUris,
        ...(registration.clientName === undefined ? {} : { clientName: registration.clientName }),
      })
      request.log.info({ 'event.name': 'oauth.register', outcome: 'registered', 'portcullis.auth.client_id': client.clientId, 'portcullis.auth.method': client.auth }, 'client registered')
      return await cors(reply).code(201).header('cache-control', 'no-store').header('pragma', 'no-cache').send({
        client_id: client.clientId,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
        redirect_uris: client.redirectUris,
        token_endpoint_auth_method: client.auth,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        ...(registration.clientName === undefined ? {} : { client_name: registration.clientName }),
      })
    } catch (err) {
      return await reject(reply, request.log, asOAuthError(err))
    }
  })
}

function readMetadata (contentType: string | undefined, body: unknown): Record<string, unknown> {
  if ((contentType ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/json') throw invalid('Content-Type must be application/json', 'wrong_content_type')
  if (typeof body !== 'string' || findStrictJsonViolation(body, 8) !== undefined) throw invalid('The body is not a JSON object (strict JSON, no duplicate members)', 'malformed_metadata')
  const parsed: unknown = JSON.parse(body)
  if (!isObject(parsed)) throw invalid('The body is not a JSON object', 'malformed_metadata')
  return parsed
}

/** RFC 7591 §2 and §3.2.2, as named checks. */
function checkMetadata (metadata: Record<string, unknown>, allowedHosts: readonly string[]): Registration {
  const refused = REFUSED_MEMBERS.find((name) => metadata[name] !== undefined)
  if (refused !== undefined) throw invalid(`${refused} cannot be registered here${refused === 'client_id' ? ': the server assigns it' : ''}`, `refused_${refused}`)
  const uris = metadata.redirect_uris
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > 10 || !uris.every((u): u is string => typeof u === 'string')) {
    throw new OAuthError('invalid_redirect_uri', 'redirect_uris must be a list of 1 to 10 URLs', 'bad_redirect_uris')
  }
  for (const uri of uris) {
    const problem = redirectUriProblem(uri, allowedHosts)
    if (problem !== undefined) throw new OAuthError('invalid_redirect_uri', `A redirect URI ${problem}`, 'forbidden_redirect_uri')
  }
  // RFC 7591 §2: the default is client_secret_basic.
  const auth = metadata.token_endpoint_auth_method ?? 'client_secret_basic'
  if (typeof auth !== 'string' || !REGISTRABLE_AUTH.includes(auth as ClientAuthMethod)) {
    throw invalid(`token_endpoint_auth_method must be one of ${REGISTRABLE_AUTH.join(', ')}`, 'unsupported_auth_method')
  }
  checkListMember(metadata.response_types, 'response_types', 'code')
  checkListMember(metadata.grant_types, 'grant_types', 'authorization_code')
  const name = metadata.client_name
  if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw invalid('client_name must be a string of at most 200 characters', 'bad_client_name')
  return { auth: auth as ClientAuthMethod, redirectUris: [...new Set(uris)], clientName: name }
}

/** A list the client may send, as long as it includes what we do; the response narrows it (RFC 7591 §3.2.1). */
function checkListMember (value: unknown, name: 'response_types' | 'grant_types', required: string): void {
  if (value === undefined) return
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string') || !value.includes(required)) {
    throw invalid(`${name} must include ${required}`, `bad_${name}`)
  }
}

function invalid (description: string, reason: OAuthReason): OAuthError {
  return new OAuthError('invalid_client_metadata', description, reason)
}

function cors (reply: FastifyReply): FastifyReply {
  return reply.header('access-control-allow-origin', '*')
}

async function reject (reply: FastifyReply, log: FastifyInstance['log'], failure: OAuthError): Promise<FastifyReply> {
  log[failure.statusCode >= 500 ? 'error' : 'info']({ 'event.name': 'oauth.register', outcome: 'rejected', 'error.type': failure.error, 'portcullis.auth.reason': failure.reason },
    `client registration rejected: ${failure.reason}`)
  return await cors(reply).code(failure.statusCode).header('cache-control', 'no-store').send(failure.toJSON())
}
