import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Metrics } from '../telemetry/metrics.ts'
import { GatewayError } from '../errors.ts'
import { extractBearer } from './bearer.ts'
import { ANONYMOUS } from './principal.ts'
import { InvalidAccessToken, type AccessTokenVerifier } from './verify-access-token.ts'

const metadataUrls = new Map<string, string>()

/** RFC 9728 §3.1: the well-known path inserted between the host and the resource's path. */
export function protectedResourceMetadataUrl (resource: string): string {
  let url = metadataUrls.get(resource)
  if (url === undefined) {
    const parsed = new URL(resource)
    url = `${parsed.origin}/.well-known/oauth-protected-resource${parsed.pathname.replace(/\/$/, '')}`
    if (metadataUrls.size < 1000) metadataUrls.set(resource, url)
  }
  return url
}

/**
 * Stage: who is calling. Runs before the body is read, so an unauthenticated client never makes
 * the gateway parse anything. On every request — a session id authenticates nothing (MCP: "MCP
 * Servers MUST NOT use sessions for authentication").
 *
 * `auth: none` servers get the anonymous principal (warned at start). Otherwise the RFC 6750
 * challenge, pointing at the server's RFC 9728 metadata: no `error` when no credentials were
 * sent (§3), `invalid_request` (400) for malformed ones, `invalid_token` (401) for a token that
 * is not ours, not for this server, or expired.
 */
export function authenticate (verifier: AccessTokenVerifier, metrics: Metrics) {
  return async function authenticate (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const exchange = request.mcp
    if (exchange === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'authenticate before resolveServer')
    if (exchange.server.auth === 'none') {
      exchange.principal = ANONYMOUS
      return
    }
    const resource = exchange.server.resource
    const bearer = extractBearer(request.headers.authorization, request.url)
    if (bearer.kind === 'token') {
      try {
        exchange.principal = await verifier.verify(bearer.token, resource)
        metrics.tokenValidationSeries.get('valid', '').inc()
        return
      } catch (err) {
        if (!(err instanceof InvalidAccessToken)) throw err
        metrics.tokenValidationSeries.get('invalid', err.reason).inc()
        throw new GatewayError('PORTCULLIS_ERR_UNAUTHENTICATED', err.message, {
          cause: err,
          headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${err.message}", ${challengeParams(exchange.server)}` },
        })
      }
    }
    if (bearer.kind === 'none') {
      metrics.tokenValidationSeries.get('missing', 'no_token').inc()
      throw new GatewayError('PORTCULLIS_ERR_UNAUTHENTICATED', 'a bearer token is required', { headers: { 'www-authenticate': `Bearer ${challengeParams(exchange.server)}` } })
    }
    metrics.tokenValidationSeries.get('invalid', 'malformed_request').inc()
    throw new GatewayError('PORTCULLIS_ERR_BAD_AUTHORIZATION', bearer.why, {
      headers: { 'www-authenticate': `Bearer error="invalid_request", error_description="${bearer.why}", resource_metadata="${protectedResourceMetadataUrl(resource)}"` },
    })
  }
}

function challengeParams (server: { resource: string; scopes: readonly string[] }): string {
  const scope = server.scopes.length > 0 ? `, scope="${server.scopes.join(' ')}"` : ''
  return `resource_metadata="${protectedResourceMetadataUrl(server.resource)}"${scope}`
}
