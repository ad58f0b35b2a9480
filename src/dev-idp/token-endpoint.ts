/**
 * `POST /token`: form-encoded parameters only, each at most once, in the body (never the URL);
 * the client authenticates first, then the grant runs. Every answer is `Cache-Control: no-store`;
 * every refusal is RFC 6749 §5.2 JSON whose description names no secret value.
 */
import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { authenticateClient } from './client-auth.ts'
import type { IdpContext } from './context.ts'
import { authorizationCodeGrant } from './authorization-code-grant.ts'
import { GRANT_AUTHORIZATION_CODE, GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, noStore, OAuthError, parseTokenForm, required, sendOAuthError } from './oauth.ts'
import { passwordGrant } from './password-grant.ts'
import { tokenExchange } from './token-exchange.ts'

export const TOKEN_BODY_LIMIT = 65_536

export const tokenRoute: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  // Any media type reaches the handler as text, so that a JSON body is refused in OAuth's words.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: TOKEN_BODY_LIMIT }, (_request, body, done) => { done(null, body) })

  app.setErrorHandler((error: FastifyError | OAuthError, request, reply) => {
    if (error instanceof OAuthError) {
      // expected refusals: the code and our own description, which names no value
      request.log.info({ error: error.error, error_description: error.message }, 'token request refused')
      return sendOAuthError(reply, error)
    }
    if (error.statusCode !== undefined && error.statusCode < 500) {
      request.log.info({ code: error.code }, 'token request refused before the handler')
      return sendOAuthError(reply, new OAuthError('invalid_request', 'the request could not be read'))
    }
    request.log.error({ code: error.code, name: error.name }, 'token endpoint failed')
    return sendOAuthError(reply, new OAuthError('server_error', 'the token endpoint failed'))
  })

  app.post('/token', async (request, reply) => {
    if (request.url.includes('?')) {
      throw new OAuthError('invalid_request', 'parameters must be sent in the request body, not the URL')
    }
    const params = parseTokenForm(request.headers['content-type'], request.body)
    const client = authenticateClient(request.headers.authorization, params, ctx.clients)
    const grantType = required(params, 'grant_type')
    let response: Record<string, unknown>
    if (grantType === GRANT_PASSWORD) response = await passwordGrant(ctx, client, params)
    else if (grantType === GRANT_AUTHORIZATION_CODE) response = await authorizationCodeGrant(ctx, client, params)
    else if (grantType === GRANT_TOKEN_EXCHANGE) response = await tokenExchange(ctx, client, params, request.log)
    else throw new OAuthError('unsupported_grant_type', 'grant_type is not supported by this IdP')
    return await noStore(reply).send(response)
  })
}
