/**
 * RFC 8693 token exchange of an ID token for an ID-JAG (protocol.md §1.3, IETF ID-JAG §4.3):
 * the subject token must be an ID token this IdP issued to the authenticated client; the policy
 * decides the (audience, resource) pair and narrows the scopes; the ID-JAG carries what was granted.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { jwtVerify, type JWTPayload } from 'jose'
import type { DevIdpClient, DevIdpUser } from './config.ts'
import { type IdpContext, nowSeconds } from './context.ts'
import { decide } from './policy.ts'
import {
  OAuthError, parseScope, required, TOKEN_TYPE_ID_JAG, TOKEN_TYPE_ID_TOKEN, type TokenParams, TYP_ID_JAG,
} from './oauth.ts'

/** Parameters this IdP cannot honour; ignoring them would issue a grant broader than asked. */
const UNSUPPORTED = ['actor_token', 'actor_token_type', 'authorization_details']
/** Seconds of clock difference forgiven on the subject token (it is ours: the clock is the same). */
const CLOCK_TOLERANCE = 5

export async function tokenExchange (
  ctx: IdpContext, client: DevIdpClient, params: TokenParams, log: FastifyBaseLogger
): Promise<Record<string, unknown>> {
  if (required(params, 'requested_token_type') !== TOKEN_TYPE_ID_JAG) {
    throw new OAuthError('invalid_request', `requested_token_type must be ${TOKEN_TYPE_ID_JAG}`)
  }
  if (required(params, 'subject_token_type') !== TOKEN_TYPE_ID_TOKEN) {
    throw new OAuthError('invalid_request', `subject_token_type must be ${TOKEN_TYPE_ID_TOKEN}`)
  }
  const subjectToken = required(params, 'subject_token')
  const audience = required(params, 'audience')
  for (const name of UNSUPPORTED) {
    if (params.has(name)) throw new OAuthError('invalid_request', `parameter ${name} is not supported`)
  }
  const resource = params.get('resource')
  if (resource !== undefined && !isAbsoluteUri(resource)) {
    throw new OAuthError('invalid_target', 'resource must be an absolute URI without a fragment')
  }
  const scopes = parseScope(params.get('scope'))
  const user = await subjectUser(ctx, client, subjectToken)
  const decision = decide(ctx.config.policy, {
    audience, user, client, ...(resource !== undefined && { resource }), ...(scopes !== undefined && { scopes }),
  })
  const iat = nowSeconds()
  const scope = decision.scopes.length > 0 ? decision.scopes.join(' ') : undefined
  const jti = randomUUID()
  const idJag = await ctx.keys.sign({
    iss: ctx.issuer(),
    sub: user.sub,
    aud: decision.audience,
    client_id: client.idJagClientId,
    jti,
    iat,
    exp: iat + ctx.config.idJagTtlSeconds,
    resource: decision.resource,
    ...(scope !== undefined && { scope }),
    email: user.email,
    groups: [...user.groups],
  }, TYP_ID_JAG)
  log.info({ jti, sub: user.sub, aud: decision.audience, client_id: client.idJagClientId, resource: decision.resource, scope }, 'issued an ID-JAG')
  return {
    issued_token_type: TOKEN_TYPE_ID_JAG,
    access_token: idJag,
    token_type: 'N_A',
    expires_in: ctx.config.idJagTtlSeconds,
    ...(scope !== undefined && { scope }),
  }
}

/** IETF ID-JAG §4.3.3: a valid ID token of this IdP, whose audience is the authenticated client. */
async function subjectUser (ctx: IdpContext, client: DevIdpClient, token: string): Promise<DevIdpUser> {
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(token, ctx.keys.verifyKey, {
      issuer: ctx.issuer(),
      audience: client.clientId,
      algorithms: [ctx.keys.alg],
      typ: 'JWT',
      requiredClaims: ['sub', 'exp', 'iat'],
      maxTokenAge: ctx.config.idTokenTtlSeconds + CLOCK_TOLERANCE,
      clockTolerance: CLOCK_TOLERANCE,
    }))
  } catch {
    throw new OAuthError('invalid_grant', 'subject_token is not a valid ID token issued by this IdP to this client')
  }
  // jose accepts an `aud` array that merely contains the client; an ID token for several audiences is not for us alone.
  if (Array.isArray(payload.aud) && payload.aud.length !== 1) {
    throw new OAuthError('invalid_grant', 'subject_token is not a valid ID token issued by this IdP to this client')
  }
  const user = payload.sub === undefined ? undefined : ctx.usersBySub.get(payload.sub)
  if (user === undefined) throw new OAuthError('invalid_grant', 'the subject of subject_token is not a known user')
  return user
}

function isAbsoluteUri (value: string): boolean {
  if (value.includes('#')) return false
  try {
    return new URL(value).protocol !== ''
  } catch {
    return false
  }
}
