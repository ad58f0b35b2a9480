/**
 * `grant_type=password` (RFC 6749 §4.3), the dev IdP's stand-in for an SSO login: a user of the
 * YAML gets an OIDC ID token whose `aud` is the authenticated client. The access token beside it
 * is an opaque random string that nothing accepts: the ID token is what EMA's token exchange wants.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { DevIdpClient, DevIdpUser } from './config.ts'
import { type IdpContext, nowSeconds } from './context.ts'
import { OAuthError, parseScope, required, type TokenParams } from './oauth.ts'

export interface IdTokenOptions {
  readonly nonce?: string
  readonly authTime?: number
}

/** Signs an ID token (`typ: JWT`) for `user`, audience `clientId`. */
export async function issueIdToken (ctx: IdpContext, user: DevIdpUser, clientId: string, opts: IdTokenOptions = {}): Promise<string> {
  const iat = nowSeconds()
  return await ctx.keys.sign({
    iss: ctx.issuer(),
    sub: user.sub,
    aud: clientId,
    iat,
    exp: iat + ctx.config.idTokenTtlSeconds,
    auth_time: opts.authTime ?? iat,
    ...(opts.nonce !== undefined && { nonce: opts.nonce }),
    email: user.email,
    email_verified: true,
    ...(user.name !== undefined && { name: user.name }),
    groups: [...user.groups],
  }, 'JWT')
}

export async function passwordGrant (ctx: IdpContext, client: DevIdpClient, params: TokenParams): Promise<Record<string, unknown>> {
  const username = required(params, 'username')
  const password = required(params, 'password')
  parseScope(params.get('scope')) // checked for syntax; the ID token's claims do not depend on it
  const user = ctx.usersByName.get(username)
  const matches = passwordMatches(password, user?.password ?? UNKNOWN_USER_PASSWORD)
  if (user === undefined || !matches) throw new OAuthError('invalid_grant', 'the username or password is wrong')
  const nonce = params.get('nonce')
  const idToken = await issueIdToken(ctx, user, client.clientId, nonce === undefined ? {} : { nonce })
  return {
    id_token: idToken,
    access_token: randomBytes(32).toString('base64url'),
    token_type: 'Bearer',
    expires_in: ctx.config.idTokenTtlSeconds,
  }
}

const UNKNOWN_USER_PASSWORD = randomBytes(16).toString('hex')

function passwordMatches (given: string, expected: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()
  return timingSafeEqual(digest(given), digest(expected))
}
