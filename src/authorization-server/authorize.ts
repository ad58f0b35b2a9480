import type { FastifyInstance } from 'fastify'

/**
 * `GET /oauth/authorize`, published because RFC 8414 and the SDK 2.x client require an
 * authorization endpoint. Until the federated login lands, every request is refused per
 * RFC 6749 §4.1.2.1: the redirect URI has not been validated against a registration, so the
 * error is shown here — never a redirect (no open redirector), never a 404 or a 500.
 * TODO(federated-login): validate the client and redirect URI, then log in at the IdP.
 */
export async function authorizeRoute (app: FastifyInstance): Promise<void> {
  app.get('/oauth/authorize', async function authorize (_request, reply) {
    return await reply.code(400).header('cache-control', 'no-store').send({
      error: 'unauthorized_client',
      error_description: 'The authorization code flow is not enabled on this gateway; use Enterprise-Managed Authorization (jwt-bearer with an ID-JAG)',
    })
  })
}
