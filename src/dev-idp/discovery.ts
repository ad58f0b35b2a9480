/**
 * `GET /.well-known/openid-configuration` (OIDC Discovery) and the same document at
 * `/.well-known/oauth-authorization-server` (RFC 8414), with the IdP metadata of the
 * ID-JAG draft (`identity_chaining_requested_token_types_supported`).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { IdpContext } from './context.ts'
import { GRANT_AUTHORIZATION_CODE, GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ID_JAG } from './oauth.ts'

export function discoveryDocument (ctx: IdpContext): Record<string, unknown> {
  return {
    issuer: ctx.issuer(),
    // the user picker (authorize.ts): code flow with PKCE S256, state and nonce
    authorization_endpoint: ctx.endpoint('/authorize'),
    token_endpoint: ctx.endpoint('/token'),
    jwks_uri: ctx.endpoint('/jwks'),
    grant_types_supported: [GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, GRANT_AUTHORIZATION_CODE],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'],
    // RFC 9207: authorization responses carry `iss`
    authorization_response_iss_parameter_supported: true,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [ctx.keys.alg],
    scopes_supported: ['openid', 'email', 'profile'],
    claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'auth_time', 'nonce', 'email', 'email_verified', 'name', 'groups'],
    identity_chaining_requested_token_types_supported: [TOKEN_TYPE_ID_JAG],
  }
}

export const discoveryRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    app.get(path, async (_request, reply) => await reply.header('cache-control', 'max-age=300').send(discoveryDocument(ctx)))
  }
}
