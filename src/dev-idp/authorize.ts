/**
 * `GET /authorize`: placeholder until the interactive login lands. It is advertised because
 * RFC 8414 and OIDC Discovery require `authorization_endpoint`, and MCP SDK discovery refuses
 * metadata without it; until then it answers 501 and never redirects anywhere.
 */
import type { FastifyPluginAsync } from 'fastify'

export const authorizeRoute: FastifyPluginAsync = async (app) => {
  app.get('/authorize', async (_request, reply) => await reply.code(501).header('cache-control', 'no-store').send({
    error: 'temporarily_unavailable',
    error_description: 'interactive login is not implemented by the dev IdP yet; use grant_type=password at the token endpoint',
  }))
}
