/**
 * `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): the code from the user
 * picker, once, by the client it was issued to, with the same redirect URI and the PKCE
 * verifier; the answer carries the ID token (with the request's `nonce`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { DevIdpClient } from './config.ts'
import type { IdpContext } from './context.ts'
import { OAuthError, required, type TokenParams } from './oauth.ts'
import { issueIdToken } from './password-grant.ts'

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

export async function authorizationCodeGrant (ctx: IdpContext, client: DevIdpClient, params: TokenParams): Promise<Record<string, unknown>> {
  const code = required(params, 'code')
  const redirectUri = required(params, 'redirect_uri')
  const verifier = required(params, 'code_verifier')
  const issued = ctx.login.redeem(code)
  if (issued === undefined) throw new OAuthError('invalid_grant', 'code is invalid, expired or already used')
  if (issued.request.clientId !== client.clientId) throw new OAuthError('invalid_grant', 'code was issued to another client')
  if (issued.request.redirectUri !== redirectUri) throw new OAuthError('invalid_grant', 'redirect_uri does not match the authorization request')
  if (!VERIFIER.test(verifier) || !sameText(createHash('sha256').update(verifier).digest('base64url'), issued.request.codeChallenge)) {
    throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge')
  }
  const user = ctx.usersBySub.get(issued.sub)
  if (user === undefined) throw new OAuthError('invalid_grant', 'the user of this code no longer exists')
  const idToken = await issueIdToken(ctx, user, client.clientId, {
    authTime: issued.authTime,
    ...(issued.request.nonce === undefined ? {} : { nonce: issued.request.nonce }),
  })
  return {
    id_token: idToken,
    access_token: randomBytes(32).toString('base64url'),
    token_type: 'Bearer',
    expires_in: ctx.config.idTokenTtlSeconds,
    scope: issued.request.scope,
  }
}

function sameText (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
