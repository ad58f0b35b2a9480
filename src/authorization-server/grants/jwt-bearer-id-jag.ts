import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose'
import type { IdentityProviderConfig } from '../../config/types.ts'
import { OAuthError, invalidGrant, invalidRequest } from '../errors.ts'
import { badClaimReason } from '../reasons.ts'
import type { IdpKeySource } from '../idp-trust.ts'
import type { ReplayStore } from '../replay-cache.ts'
import { constantTimeEqual, type AuthenticatedClient } from '../client-auth.ts'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** Largest assertion accepted (design.md §5: over 16 KiB → invalid_request, before any parsing). */
export const MAX_ASSERTION_BYTES = 16 * 1024

export interface TrustedIssuer {
  readonly config: IdentityProviderConfig
  readonly keys: IdpKeySource
}

export interface IdJagContext {
  /** our own issuer, exactly as published */
  readonly issuer: string
  readonly trusted: ReadonlyMap<string, TrustedIssuer>
  readonly maxLifetimeSeconds: number
  readonly clockSkewSeconds: number
  readonly replay: ReplayStore
}

/** A verified ID-JAG: what the token endpoint may build an access token from. */
export interface IdJag {
  readonly idp: TrustedIssuer
  readonly claims: JWTPayload & { sub: string; jti: string; exp: number; iat: number }
  /** the `resource` claim, normalised to a list (absent → []) */
  readonly resources: readonly string[]
  /** the `scope` claim split on spaces, or undefined when the ID-JAG carries none */
  readonly scopes: readonly string[] | undefined
}

const ID_JAG_TYP = /^(application\/)?oauth-id-jag\+jwt$/i

/**
 * The ID-JAG checks of protocol.md §1.5, in order, each a named step that says which check
 * failed (the `reason`) without echoing the assertion. Single use of the `jti` is claimed by
 * the caller once every other check — resource and scope included — has passed, so a request
 * that fails for another reason does not burn a valid assertion.
 */
export async function verifyIdJagAssertion (assertion: string | undefined, client: AuthenticatedClient, ctx: IdJagContext): Promise<IdJag> {
  const compact = checkAssertionShape(assertion)
  checkTyp(compact)
  const idp = checkIssuer(compact, ctx)
  const claims = await checkSignatureAndTimes(compact, idp, ctx)
  checkAudience(claims, ctx.issuer)
  checkClient(claims, client, idp)
  checkSubjectAndId(claims)
  checkUnsupportedConstraints(claims)
  return { idp, claims, resources: resourceClaim(claims), scopes: scopeClaim(claims) }
}

function checkAssertionShape (assertion: string | undefined): string {
  if (assertion === undefined || assertion === '') throw invalidRequest('The assertion parameter is required', 'missing_assertion')
  if (Buffer.byteLength(assertion) > MAX_ASSERTION_BYTES) throw invalidRequest('The assertion is too large', 'assertion_too_large')
  // RFC 7523 §2.1: a single JWT — a compact JWS (three base64url segments), not a JWE or a list.
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(assertion)) throw invalidGrant('The assertion is not a compact JWS', 'malformed_assertion')
  return assertion
}

function checkTyp (assertion: string): void {
  let typ: unknown
  try {
    typ = decodeProtectedHeader(assertion).typ
  } catch (err) {
    throw invalidGrant('The assertion is not a valid JWT', 'malformed_assertion', err)
  }
  // IETF ID-JAG §3 / EMA: typ MUST be oauth-id-jag+jwt (RFC 7515 §4.1.9 allows the application/ form).
  if (typeof typ !== 'string' || !ID_JAG_TYP.test(typ)) throw invalidGrant('The assertion is not an ID-JAG (typ must be oauth-id-jag+jwt)', 'wrong_typ')
}

function checkIssuer (assertion: string, ctx: IdJagContext): TrustedIssuer {
  let iss: unknown
  try {
    iss = decodeJwt(assertion).iss
  } catch (err) {
    throw invalidGrant('The assertion is not a valid JWT', 'malformed_assertion', err)
  }
  // Compared exactly as configured (design.md §5: no slash tolerance for iss). Our own issuer is
  // never trusted: "an IdP MUST NOT issue access tokens for an ID-JAG it issued itself".
  const idp = typeof iss === 'string' && iss !== ctx.issuer ? ctx.trusted.get(iss) : undefined
  if (idp === undefined) throw invalidGrant('The assertion\'s issuer is not trusted', 'untrusted_issuer')
  return idp
}

async function checkSignatureAndTimes (assertion: string, idp: TrustedIssuer, ctx: IdJagContext): Promise<IdJag['claims']> {
  const header = decodeProtectedHeader(assertion)
  // EMA §7.4.1: an explicit asymmetric allow-list; never none, never HS*. Keys come only from
  // the issuer's configured JWKS: jku, x5u and jwk headers are not looked at.
  if (typeof header.alg !== 'string' || !idp.config.algorithms.includes(header.alg)) {
    throw invalidGrant('The assertion\'s signing algorithm is not accepted', 'alg_not_allowed')
  }
  const keys = await idp.keys.keysFor(header.kid)
  try {
    const { payload } = await jwtVerify(assertion, keys, {
      issuer: idp.config.issuer,
      algorithms: [...idp.config.algorithms],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
      clockTolerance: ctx.clockSkewSeconds,
      maxTokenAge: ctx.maxLifetimeSeconds + ctx.clockSkewSeconds,
    })
    checkLifetime(payload, ctx)
    return payload as IdJag['claims']
  } catch (err) {
    throw mapVerifyError(err)
  }
}

function checkLifetime (payload: JWTPayload, ctx: IdJagContext): void {
  const { exp, iat } = payload
  if (typeof exp !== 'number' || typeof iat !== 'number' || !Number.isSafeInteger(exp) || !Number.isSafeInteger(iat)) {
    throw invalidGrant('The assertion\'s exp and iat must be integers', 'bad_time_claims')
  }
  if (iat > Date.now() / 1000 + ctx.clockSkewSeconds) throw invalidGrant('The assertion was issued in the future', 'iat_in_future')
  if (exp - iat > ctx.maxLifetimeSeconds) throw invalidGrant('The assertion\'s lifetime is too long', 'lifetime_too_long')
}

function mapVerifyError (err: unknown): OAuthError {
  if (err instanceof OAuthError) return err
  if (err instanceof joseErrors.JWTExpired) return invalidGrant('The assertion has expired', 'expired', err)
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return invalidGrant('The assertion is not valid yet', 'not_yet_valid', err)
    if (err.claim === 'iat') return invalidGrant('The assertion is too old or was issued in the future', 'bad_iat', err)
    return invalidGrant(`The assertion's ${err.claim} claim is ${err.reason === 'missing' ? 'missing' : 'invalid'}`, badClaimReason(err.claim, 'malformed_assertion'), err)
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return invalidGrant('The assertion is not signed by a known key', 'unknown_key', err)
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalidGrant('The assertion\'s signature is invalid', 'bad_signature', err)
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalidGrant('The assertion\'s signing algorithm is not accepted', 'alg_not_allowed', err)
  return invalidGrant('The assertion could not be verified', 'malformed_assertion', err)
}

function checkAudience (claims: JWTPayload, issuer: string): void {
  // "string or single-element array" — jose's audience option would accept any array holding ours.
  const aud = Array.isArray(claims.aud) ? (claims.aud.length === 1 ? claims.aud[0] : undefined) : claims.aud
  if (typeof aud !== 'string' || !sameIdentifier(aud, issuer)) throw invalidGrant('The assertion is not addressed to this authorization server', 'audience_mismatch')
}

function checkClient (claims: JWTPayload, client: AuthenticatedClient, idp: TrustedIssuer): void {
  const claimed = claims.client_id
  if (typeof claimed !== 'string' || !constantTimeEqual(claimed, client.clientId)) {
    throw invalidGrant('The assertion was issued to another client', 'client_mismatch')
  }
  const allowed = idp.config.allowedClients
  if (allowed !== undefined && !allowed.includes(client.clientId)) {
    throw new OAuthError('unauthorized_client', 'This client may not present assertions from this identity provider', 'client_not_allowed')
  }
}

function checkSubjectAndId (claims: JWTPayload): void {
  if (typeof claims.sub !== 'string' || claims.sub === '' || claims.sub.length > 1024) throw invalidGrant('The assertion\'s sub claim is invalid', 'bad_sub')
  if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) throw invalidGrant('The assertion\'s jti claim is invalid', 'bad_jti')
}

/** IETF ID-JAG: a `cnf` without proof MUST fail; RAR details and actors are not processed here, so they fail closed. */
function checkUnsupportedConstraints (claims: JWTPayload): void {
  for (const claim of ['cnf', 'authorization_details', 'act'] as const) {
    if (claims[claim] !== undefined) throw invalidGrant(`Assertions carrying ${claim} are not supported`, `unsupported_${claim}`)
  }
}

function resourceClaim (claims: JWTPayload): string[] {
  const resource = claims.resource
  if (resource === undefined) return []
  if (typeof resource === 'string') return [resource]
  if (Array.isArray(resource) && resource.length > 0 && resource.every((r) => typeof r === 'string')) return resource as string[]
  throw invalidGrant('The assertion\'s resource claim is invalid', 'bad_resource')
}

function scopeClaim (claims: JWTPayload): string[] | undefined {
  const scope = claims.scope
  if (scope === undefined) return undefined
  // RFC 6749 §3.3 / ID-JAG: a JSON string of space-separated tokens.
  if (typeof scope !== 'string') throw invalidGrant('The assertion\'s scope claim must be a string', 'bad_scope')
  return scope.split(' ').filter((s) => s !== '')
}

/** design.md §5: exact string, plus the single variant that differs by one trailing `/`. */
export function sameIdentifier (candidate: string, ours: string): boolean {
  return candidate === ours || candidate === `${ours}/` || `${candidate}/` === ours
}
