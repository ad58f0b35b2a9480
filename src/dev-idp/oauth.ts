/**
 * Token-endpoint plumbing shared by the grants: RFC 6749 §5.2 errors, `Cache-Control: no-store`,
 * and the one place where an untrusted form body becomes parameters.
 */
import type { FastifyReply } from 'fastify'

export const GRANT_PASSWORD = 'password'
export const GRANT_AUTHORIZATION_CODE = 'authorization_code'
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const TOKEN_TYPE_ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag'
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
export const TYP_ID_JAG = 'oauth-id-jag+jwt'

export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type'
  | 'invalid_scope' | 'invalid_target' | 'access_denied' | 'server_error'

/**
 * An error the token endpoint answers with. The description is sent to the client and logged:
 * it names parameters, never their values (which may be passwords, secrets or tokens).
 */
export class OAuthError extends Error {
  readonly error: OAuthErrorCode
  readonly status: number
  /** send `WWW-Authenticate: Basic` (the client tried HTTP Basic; RFC 6749 §5.2) */
  readonly basicChallenge: boolean

  constructor (error: OAuthErrorCode, description: string, opts: { status?: number; basicChallenge?: boolean } = {}) {
    super(description)
    this.name = 'OAuthError'
    this.error = error
    this.status = opts.status ?? (error === 'invalid_client' ? 401 : error === 'server_error' ? 500 : 400)
    this.basicChallenge = opts.basicChallenge ?? false
  }
}

export function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

export function sendOAuthError (reply: FastifyReply, error: OAuthError): FastifyReply {
  if (error.basicChallenge) reply.header('www-authenticate', 'Basic realm="portcullis-dev-idp", charset="UTF-8"')
  return noStore(reply).code(error.status).send({ error: error.error, error_description: error.message })
}

/** The token request's parameters: each name once (RFC 6749 §3.2), an empty value counts as absent. */
export type TokenParams = ReadonlyMap<string, string>

const FORM = 'application/x-www-form-urlencoded'

/** Narrows the raw body (a string from the catch-all parser, or nothing) to parameters. */
export function parseTokenForm (contentType: string | undefined, body: unknown): TokenParams {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase()
  if (mediaType !== FORM) throw new OAuthError('invalid_request', `the request body must be ${FORM}`)
  if (typeof body !== 'string') throw new OAuthError('invalid_request', 'the request has no body')
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase()
  if (charset !== undefined && charset !== 'utf-8') throw new OAuthError('invalid_request', 'the request body must be UTF-8')
  const params = new Map<string, string>()
  const seen = new Set<string>()
  for (const [name, value] of new URLSearchParams(body)) {
    if (seen.has(name)) throw new OAuthError('invalid_request', `parameter ${safeName(name)} is repeated`)
    seen.add(name)
    if (value !== '') params.set(name, value)
  }
  return params
}

/** A parameter name is echoed only if it looks like one. */
function safeName (name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : '(unnamed)'
}

export function required (params: TokenParams, name: string): string {
  const value = params.get(name)
  if (value === undefined) throw new OAuthError('invalid_request', `parameter ${name} is required`)
  return value
}

/** RFC 6749 §3.3: scope = scope-token *( SP scope-token ). Undefined when absent. */
export function parseScope (value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  if (!/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(value)) throw new OAuthError('invalid_scope', 'scope is malformed')
  return [...new Set(value.split(' '))]
}
