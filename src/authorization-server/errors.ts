import { isStoreUnavailable } from '../store/store.ts'
import type { OAuthErrorCode, OAuthReason } from './reasons.ts'

export type { OAuthErrorCode, OAuthReason } from './reasons.ts'

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  access_denied: 400,
  server_error: 500,
  temporarily_unavailable: 503,
  unsupported_response_type: 400,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
}

/**
 * RFC 6749 §5.2 (and RFC 8707, RFC 6750) errors of the token endpoint, one class per `error`
 * code, as oidc-provider shapes them. `description` is what the client reads — precise, and free
 * of any token, assertion or secret; `reason` is the bounded label for the audit log and the
 * `portcullis_token_requests_total{reason}` metric (observability.md §3.6), one of the closed set
 * in reasons.ts.
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError'
  readonly error: OAuthErrorCode
  readonly statusCode: number
  readonly reason: OAuthReason
  readonly headers: Record<string, string>

  constructor (error: OAuthErrorCode, description: string, reason: OAuthReason, opts: { cause?: unknown; statusCode?: number; headers?: Record<string, string> } = {}) {
    super(description, { cause: opts.cause })
    this.error = error
    this.statusCode = opts.statusCode ?? STATUS[error]
    this.reason = reason
    this.headers = opts.headers ?? {}
  }

  toJSON (): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.message }
  }
}

export const invalidRequest = (description: string, reason: OAuthReason = 'invalid_request'): OAuthError => new OAuthError('invalid_request', description, reason)
export const invalidGrant = (description: string, reason: OAuthReason, cause?: unknown): OAuthError => new OAuthError('invalid_grant', description, reason, { cause })

/** The shared store did not answer (design.md §7): fail closed — no token, no code, no registration — and say to retry. */
export const storeUnavailable = (cause: unknown): OAuthError =>
  new OAuthError('temporarily_unavailable', 'The authorization server cannot reach its shared state; try again later', 'store_unavailable', { cause })

/** Any failure as the OAuth error it is: an unreachable store is 503 temporarily_unavailable, anything unexpected 500 server_error. */
export function asOAuthError (err: unknown): OAuthError {
  if (err instanceof OAuthError) return err
  if (isStoreUnavailable(err)) return storeUnavailable(err)
  return new OAuthError('server_error', 'The request could not be processed', 'internal', { cause: err })
}
