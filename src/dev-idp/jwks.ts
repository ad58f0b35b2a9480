/** `GET /jwks`: the public signing keys (RFC 7517 JWK Set); private members never leave keys.ts. */
import type { FastifyPluginAsync } from 'fastify'
import type { IdpContext } from './context.ts'

export const jwksRoute: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.get('/jwks', async (_request, reply) =>
    await reply.header('cache-control', 'max-age=300').type('application/jwk-set+json').send(ctx.keys.jwks))
}
