/**
 * The closed sets of `portcullis_access_token_validations_total{result,reason}`: how the bearer
 * token of an MCP request fared. A value outside a set fails typecheck, so a typo cannot start a
 * new series. Dashboards (grafana/) and tests depend on these exact strings: add, never rename.
 */

export const TOKEN_VALIDATION_RESULTS = ['valid', 'invalid', 'missing'] as const
export type TokenValidationResult = typeof TOKEN_VALIDATION_RESULTS[number]

/** Why an access token was refused: `InvalidAccessToken.reason` (verify-access-token.ts). */
export const INVALID_TOKEN_REASONS = [
  'expired', 'audience_mismatch', 'malformed', 'bad_signature', 'unknown_key',
  // a token whose authorization code was replayed (authorization-server/login/revocation.ts)
  'revoked',
  // a JWT claim jose refused (badClaimReason)
  'bad_typ', 'bad_iss', 'bad_sub', 'bad_aud', 'bad_exp', 'bad_iat', 'bad_nbf', 'bad_jti', 'bad_client_id',
] as const
export type InvalidTokenReason = typeof INVALID_TOKEN_REASONS[number]

/**
 * The `reason` label: an invalid token's reason, `no_token` (no credentials), `malformed_request`
 * (not `Bearer <token>`, or a token in the query string), or empty for a valid token.
 */
export const TOKEN_VALIDATION_REASONS = [...INVALID_TOKEN_REASONS, 'no_token', 'malformed_request', ''] as const
export type TokenValidationReason = typeof TOKEN_VALIDATION_REASONS[number]

/** The JWT claims jose's JWTClaimValidationFailed can name when it verifies our access tokens, as `bad_<claim>` reasons. */
const BAD_CLAIM_REASONS = {
  typ: 'bad_typ',
  iss: 'bad_iss',
  sub: 'bad_sub',
  aud: 'bad_aud',
  exp: 'bad_exp',
  iat: 'bad_iat',
  nbf: 'bad_nbf',
  jti: 'bad_jti',
  client_id: 'bad_client_id',
} as const satisfies Record<string, InvalidTokenReason>

/**
 * The reason for a claim jose refused (`JWTClaimValidationFailed.claim`, a string from outside):
 * `bad_<claim>` for the claims the verification checks, `malformed` for any other.
 */
export function badClaimReason (claim: string): InvalidTokenReason {
  return Object.hasOwn(BAD_CLAIM_REASONS, claim) ? BAD_CLAIM_REASONS[claim as keyof typeof BAD_CLAIM_REASONS] : 'malformed'
}
