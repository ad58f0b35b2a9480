import { errors as undiciErrors } from 'undici'
import { GatewayError, isGatewayError } from '../errors.ts'

/**
 * Map a failure to reach or read the upstream onto the gateway's answer (design.md §7):
 * refused/reset → 502, slow → 504. The undici error stays as `cause`, for the log only.
 */
export function upstreamFailure (err: unknown): GatewayError {
  if (isGatewayError(err)) return err
  if (err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError) {
    return new GatewayError('PORTCULLIS_ERR_UPSTREAM_TIMEOUT', undefined, { cause: err })
  }
  if (err instanceof undiciErrors.HeadersOverflowError || err instanceof undiciErrors.HTTPParserError ||
      err instanceof undiciErrors.ResponseContentLengthMismatchError) {
    return new GatewayError('PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE', undefined, { cause: err })
  }
  return new GatewayError('PORTCULLIS_ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: err })
}

/** Which failure an upstream HTTP status means, for statuses that are not passed through. */
export function upstreamStatusFailure (statusCode: number, retryAfter: string | undefined): GatewayError {
  if (statusCode === 503) {
    return new GatewayError('PORTCULLIS_ERR_UPSTREAM_OVERLOADED', undefined,
      retryAfter !== undefined && /^\d{1,6}$/.test(retryAfter) ? { headers: { 'retry-after': retryAfter } } : {})
  }
  if (statusCode === 504) return new GatewayError('PORTCULLIS_ERR_UPSTREAM_TIMEOUT')
  // An upstream 401/407 challenge names the upstream's own authorization server; passed on,
  // it would send the client to the wrong AS (protocol.md §4.7), so it is a gateway failure.
  return new GatewayError('PORTCULLIS_ERR_UPSTREAM_STATUS', `HTTP ${statusCode}`)
}
