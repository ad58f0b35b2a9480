import { LRUCache } from 'lru-cache'
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { SigningKeySet } from './signing-keys.ts'
import type { Principal } from './principal.ts'
import { badClaimReason, type InvalidTokenReason } from './reasons.ts'

/** Claims of our access tokens that are not identity claims (design.md §5). */
const REGISTERED = new Set(['iss', 'aud', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp', 'nbf', 'idp_iss', 'idp_jti'])

export class InvalidAccessToken extends Error {
  override readonly name = 'InvalidAccessToken'
  /** bounded label for `portcullis_access_token_validations_total{reason}` */
  readonly reason: InvalidTokenReason
  constructor (reason: InvalidTokenReason, description: string, cause?: unknown) {
    super(description, { cause })
    this.reason = reason
  }
}

interface Verified {
  readonly principal: Principal
  readonly audience: string
  readonly exp: number
}

/**
 * The resource-server check of every MCP request: our own RFC 9068 token (typ at+jwt, our
 * issuer, one of our keys), `aud` exactly this server's resource id, not expired. Anything else —
 * an ID token, an ID-JAG, another issuer's token, a token for another server — is refused.
 * Verified tokens are cached until their `exp`: a hit costs a small fraction of a verify (test/bench/README.md).
 */
export class AccessTokenVerifier {
  readonly #issuer: string
  readonly #keys: () => SigningKeySet
  #jwks: { set: SigningKeySet; lookup: JWTVerifyGetKey } | undefined
  // maxSize, not max: lru-cache preallocates arrays of `max` entries; this grows with the tokens seen
  readonly #cache = new LRUCache<string, Verified>({ maxSize: 50_000, sizeCalculation: () => 1 })

  constructor (issuer: string, keys: () => SigningKeySet) {
    this.#issuer = issuer
    this.#keys = keys
  }

  async verify (token: string, resource: string): Promise<Principal> {
    const cached = this.#cache.get(token)
    if (cached !== undefined) {
      if (cached.exp * 1000 <= Date.now()) {
        this.#cache.delete(token)
        throw new InvalidAccessToken('expired', 'The access token has expired')
      }
      if (cached.audience !== resource) throw new InvalidAccessToken('audience_mismatch', 'The access token is for another MCP server')
      return cached.principal
    }
    const payload = await this.#verifySignature(token)
    const { aud, exp, sub } = payload
    if (typeof aud !== 'string') throw new InvalidAccessToken('audience_mismatch', 'The access token must name exactly one resource')
    if (typeof sub !== 'string' || typeof exp !== 'number') throw new InvalidAccessToken('malformed', 'The access token is malformed')
    const principal = toPrincipal(payload, sub)
    this.#cache.set(token, { principal, audience: aud, exp }, { ttl: Math.max(1, exp * 1000 - Date.now()) })
    if (aud !== resource) throw new InvalidAccessToken('audience_mismatch', 'The access token is for another MCP server')
    return principal
  }

  async #verifySignature (token: string): Promise<JWTPayload> {
    const keys = this.#keys()
    if (this.#jwks?.set !== keys) this.#jwks = { set: keys, lookup: createLocalJWKSet({ keys: [...keys.publicJwks.keys] }) }
    try {
      const { payload } = await jwtVerify(token, this.#jwks.lookup, {
        issuer: this.#issuer,
        typ: 'at+jwt',
        algorithms: [...new Set(keys.verificationKeys.map((k) => k.alg))],
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
        clockTolerance: 5,
      })
      return payload
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new InvalidAccessToken('expired', 'The access token has expired', err)
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new InvalidAccessToken(badClaimReason(err.claim), 'The access token is not valid here', err)
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new InvalidAccessToken('bad_signature', 'The access token is not valid', err)
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new InvalidAccessToken('unknown_key', 'The access token is not valid', err)
      throw new InvalidAccessToken('malformed', 'The access token is not valid', err)
    }
  }
}

function toPrincipal (payload: JWTPayload, sub: string): Principal {
  const claims: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(payload)) if (!REGISTERED.has(name)) claims[name] = value
  const issuer = typeof payload.idp_iss === 'string' ? payload.idp_iss : undefined
  return Object.freeze({
    key: `${issuer ?? ''}#${sub}`,
    subject: sub,
    issuer,
    clientId: typeof payload.client_id === 'string' ? payload.client_id : undefined,
    scopes: Object.freeze(typeof payload.scope === 'string' ? payload.scope.split(' ').filter((s) => s !== '') : []),
    claims: Object.freeze(claims),
    anonymous: false,
    assertionJti: typeof payload.idp_jti === 'string' ? payload.idp_jti : undefined,
    tokenJti: typeof payload.jti === 'string' ? payload.jti : undefined,
  })
}
