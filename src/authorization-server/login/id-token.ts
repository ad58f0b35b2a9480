import { timingSafeEqual } from 'node:crypto'
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose'
import { OAuthError } from '../errors.ts'
import { badClaimReason } from '../reasons.ts'
import { denied, type LoginIdp } from './idp-login.ts'

const MAX_ID_TOKEN_BYTES = 16 * 1024
/** OIDC Core §3.1.3.7: how old an ID token may be when it arrives (it is minted at the code exchange). */
const MAX_ID_TOKEN_AGE_SECONDS = 3600

export type IdTokenClaims = JWTPayload & { readonly sub: string }

/**
 * OIDC Core §3.1.3.7, as named steps: the ID token the IdP returned for our login is a JWS in an
 * accepted algorithm, not some other kind of token, signed with a key of the *configured*
 * issuer, from exactly that issuer, for us (our client id, or `azp` when there are several
 * audiences), not expired, and carries the `nonce` of this login. Every failure is
 * `access_denied` with a reason; none echoes the token.
 */
export async function verifyIdToken (idToken: string, idp: LoginIdp, nonce: string, clockSkewSeconds: number): Promise<IdTokenClaims> {
  const alg = checkShapeAndHeader(idToken, idp)
  const payload = await checkSignatureAndClaims(idToken, alg, idp, clockSkewSeconds)
  checkAudience(payload, idp.login.clientId)
  checkNonce(payload, nonce)
  if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 1024) throw denied('The ID token\'s sub claim is invalid', 'bad_sub')
  return payload as IdTokenClaims
}

function checkShapeAndHeader (idToken: string, idp: LoginIdp): string {
  if (Buffer.byteLength(idToken) > MAX_ID_TOKEN_BYTES || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(idToken)) {
    throw denied('The identity provider returned a malformed ID token', 'malformed_id_token')
  }
  let header
  try {
    header = decodeProtectedHeader(idToken)
  } catch (err) {
    throw denied('The identity provider returned a malformed ID token', 'malformed_id_token', err)
  }
  // Token confusion: an ID-JAG, an access token or a logout token is not an ID token.
  if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'jwt')) {
    throw denied('The identity provider returned a token that is not an ID token', 'wrong_typ')
  }
  if (typeof header.alg !== 'string' || !idp.trusted.config.algorithms.includes(header.alg)) {
    throw denied('The ID token\'s signing algorithm is not accepted', 'alg_not_allowed')
  }
  return header.alg
}

async function checkSignatureAndClaims (idToken: string, alg: string, idp: LoginIdp, skew: number): Promise<JWTPayload> {
  const keys = await idp.trusted.keys.keysFor(decodeProtectedHeader(idToken).kid)
  try {
    const { payload } = await jwtVerify(idToken, keys, {
      issuer: idp.trusted.config.issuer,
      algorithms: [alg],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce'],
      clockTolerance: skew,
      maxTokenAge: MAX_ID_TOKEN_AGE_SECONDS + skew,
    })
    return payload
  } catch (err) {
    throw mapVerifyError(err)
  }
}

function mapVerifyError (err: unknown): OAuthError {
  if (err instanceof OAuthError) return err
  if (err instanceof joseErrors.JWTExpired) return denied('The ID token has expired', 'expired', err)
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return denied('The ID token was not issued by the trusted identity provider', 'untrusted_issuer', err)
    return denied(`The ID token's ${err.claim} claim is ${err.reason === 'missing' ? 'missing' : 'invalid'}`, badClaimReason(err.claim, 'malformed_id_token'), err)
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return denied('The ID token is not signed by a key of the identity provider', 'unknown_key', err)
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return denied('The ID token\'s signature is invalid', 'bad_signature', err)
  return denied('The ID token could not be verified', 'malformed_id_token', err)
}

/** OIDC Core §3.1.3.7 items 3–5: our client id in `aud`; with several audiences, `azp` must be us. */
function checkAudience (payload: JWTPayload, clientId: string): void {
  const aud = payload.aud
  const ok = typeof aud === 'string'
    ? aud === clientId
    : Array.isArray(aud) && aud.includes(clientId) && (aud.length === 1 || payload.azp === clientId)
  if (!ok) throw denied('The ID token was issued to another client', 'audience_mismatch')
}

function checkNonce (payload: JWTPayload, nonce: string): void {
  const claimed = typeof payload.nonce === 'string' ? Buffer.from(payload.nonce) : undefined
  const expected = Buffer.from(nonce)
  const same = claimed !== undefined && claimed.length === expected.length && timingSafeEqual(claimed, expected)
  if (!same) throw denied('The ID token does not belong to this login (nonce mismatch)', 'nonce_mismatch')
}
