import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { SigningKeySet } from './keys.ts'

export interface AccessTokenGrant {
  readonly subject: string
  readonly clientId: string
  /** the one resource id the token is for (its `aud`) */
  readonly resource: string
  readonly scopes: readonly string[]
  readonly idpIssuer: string
  /** the ID-JAG `jti` that led to this token, so an IdP decision can be followed to every call it allowed */
  readonly assertionJti: string | undefined
  /** identity claims for policy (groups, email, tenant …), already mapped */
  readonly claims: Readonly<Record<string, unknown>>
}

export interface IssuedAccessToken {
  readonly token: string
  readonly jti: string
  readonly expiresIn: number
}

/**
 * An RFC 9068 JWT access token: `typ: at+jwt`, signed with the current key, `aud` exactly the
 * one resource, short-lived (design.md §5 claims). Identity claims cannot override the
 * registered ones: they are written first.
 */
export async function issueAccessToken (grant: AccessTokenGrant, keys: SigningKeySet, issuer: string, ttlSeconds: number): Promise<IssuedAccessToken> {
  const jti = randomUUID()
  const token = await new SignJWT({
    ...grant.claims,
    client_id: grant.clientId,
    scope: grant.scopes.join(' '),
    idp_iss: grant.idpIssuer,
    ...(grant.assertionJti === undefined ? {} : { idp_jti: grant.assertionJti }),
  })
    .setProtectedHeader({ alg: keys.current.alg, kid: keys.current.kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setSubject(grant.subject)
    .setAudience(grant.resource)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(keys.current.privateKey)
  return { token, jti, expiresIn: ttlSeconds }
}
