/**
 * The closed sets of the authorization server's labels: what `portcullis_token_requests_total`
 * carries (grant_type, error, reason) and what the audit lines of every /oauth/*
 * endpoint carry (`error.type`, `portcullis.auth.reason`). A value outside a set fails
 * typecheck, so a typo cannot start a new series. Dashboards (grafana/), alerts (deploy/), tests
 * and design.md §6 depend on these exact strings: add, never rename.
 */

/** RFC 6749 §5.2 (and RFC 8707, RFC 6750) `error` codes; RFC 6749 §4.1.2.1 and RFC 7591 §3.2.2 for the authorize and registration endpoints. */
export const OAUTH_ERROR_CODES = [
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type',
  'invalid_scope', 'invalid_target', 'access_denied', 'server_error', 'temporarily_unavailable',
  'unsupported_response_type', 'invalid_redirect_uri', 'invalid_client_metadata',
] as const
export type OAuthErrorCode = typeof OAUTH_ERROR_CODES[number]

/** `grant_type` of portcullis_token_requests_total (design.md §6). */
export const GRANT_TYPE_LABELS = ['jwt_bearer', 'authorization_code', 'other'] as const
export type GrantTypeLabel = typeof GRANT_TYPE_LABELS[number]

/**
 * Why an OAuth request was refused: `OAuthError.reason`, the `reason` label of
 * portcullis_token_requests_total and `portcullis.auth.reason` in the audit lines of the token,
 * authorize, callback, consent and registration endpoints.
 */
export const OAUTH_REASONS = [
  // any endpoint
  'invalid_request', 'internal', 'store_unavailable', 'body_too_large', 'wrong_content_type', 'duplicate_parameter',
  // token endpoint: the request
  'query_parameters', 'missing_grant_type', 'unsupported_grant_type',
  // client authentication (client-auth.ts, grants/authorization-code.ts)
  'no_client_auth', 'bad_client_auth', 'multiple_client_auth', 'bad_client_credentials', 'bad_client_assertion', 'client_mismatch',
  'unknown_client', 'client_quota',
  // jwt-bearer: the ID-JAG (grants/jwt-bearer-id-jag.ts) and its keys (idp-trust.ts)
  'missing_assertion', 'assertion_too_large', 'malformed_assertion', 'wrong_typ', 'untrusted_issuer', 'alg_not_allowed',
  'bad_time_claims', 'iat_in_future', 'lifetime_too_long', 'expired', 'not_yet_valid', 'unknown_key', 'bad_signature',
  'audience_mismatch', 'client_not_allowed', 'bad_resource', 'bad_scope', 'replayed_jti', 'jwks_unavailable',
  'unsupported_cnf', 'unsupported_authorization_details', 'unsupported_act',
  // a JWT claim jose refused (badClaimReason)
  'bad_iss', 'bad_sub', 'bad_aud', 'bad_exp', 'bad_iat', 'bad_nbf', 'bad_jti', 'bad_client_id', 'bad_nonce',
  // resource and scope (resource-and-scope.ts)
  'missing_resource', 'resource_not_allowed', 'resource_mismatch', 'scope_not_allowed',
  // authorization_code (grants/authorization-code.ts)
  'missing_code', 'unknown_code', 'replayed_code', 'missing_redirect_uri', 'redirect_uri_mismatch', 'missing_code_verifier', 'pkce_mismatch',
  // authorize (authorize.ts)
  'login_disabled', 'missing_client_id', 'bad_state', 'missing_response_type', 'unsupported_response_type',
  'pkce_required', 'pkce_method_missing', 'pkce_method_not_supported', 'bad_code_challenge',
  // client ID metadata documents (login/client-metadata-document.ts)
  'bad_client_id_url', 'cimd_fetch_failed', 'cimd_bad_document', 'cimd_dns_failed', 'cimd_forbidden_address',
  'cimd_client_id_mismatch', 'cimd_bad_redirect_uri',
  // the federated login: callback, the IdP, its ID token (login/)
  'unknown_state', 'browser_mismatch', 'idp_issuer_mismatch', 'idp_error', 'idp_missing_code', 'too_many_pending_logins',
  'idp_discovery_failed', 'idp_token_failed', 'idp_token_refused', 'idp_no_id_token', 'malformed_id_token', 'nonce_mismatch',
  // consent (login/consent-route.ts)
  'malformed_form', 'consent_not_post', 'unknown_consent', 'csrf_mismatch', 'cross_origin', 'unexpected_parameter',
  'missing_csrf', 'bad_decision',
  // dynamic client registration (registration.ts)
  'malformed_metadata', 'bad_redirect_uris', 'forbidden_redirect_uri', 'unsupported_auth_method', 'bad_response_types',
  'bad_grant_types', 'bad_client_name',
  'refused_client_id', 'refused_client_secret', 'refused_client_id_issued_at', 'refused_client_secret_expires_at',
  'refused_registration_access_token', 'refused_registration_client_uri', 'refused_software_statement', 'refused_jwks',
  'refused_jwks_uri',
] as const
export type OAuthReason = typeof OAUTH_REASONS[number]

/** The JWT claims jose's JWTClaimValidationFailed can name on our verifications, as `bad_<claim>` reasons. */
const BAD_CLAIM_REASONS = {
  iss: 'bad_iss',
  sub: 'bad_sub',
  aud: 'bad_aud',
  exp: 'bad_exp',
  iat: 'bad_iat',
  nbf: 'bad_nbf',
  jti: 'bad_jti',
  client_id: 'bad_client_id',
  nonce: 'bad_nonce',
} as const satisfies Record<string, OAuthReason>

/**
 * The reason for a claim jose refused (`JWTClaimValidationFailed.claim`, a string from outside):
 * `bad_<claim>` for the claims our verifications check, `fallback` for any other.
 */
export function badClaimReason (claim: string, fallback: OAuthReason): OAuthReason {
  return Object.hasOwn(BAD_CLAIM_REASONS, claim) ? BAD_CLAIM_REASONS[claim as keyof typeof BAD_CLAIM_REASONS] : fallback
}
