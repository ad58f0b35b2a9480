import type { FastifyInstance } from 'fastify'
import type { SigningKeySet } from './keys.ts'

/** `GET /oauth/jwks`: the public keys of the access-token signing keys (current, next, retired). */
export async function jwksRoute (app: FastifyInstance, { keys }: { keys: SigningKeySet }): Promise<void> {
  app.get('/oauth/jwks', async function jwks (_request, reply) {
    return await reply.header('access-control-allow-origin', '*').header('cache-control', 'public, max-age=300').send(keys.publicJwks)
  })
}
