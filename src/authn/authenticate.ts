import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import { GatewayError } from '../errors.ts'
import { ANONYMOUS } from './principal.ts'

/** RFC 9728 §3.1: the well-known path inserted between the host and the resource's path. */
export function protectedResourceMetadataUrl (config: Config, server: string): string {
  const url = new URL(config.publicUrl)
  const path = url.pathname === '/' ? '' : url.pathname
  return `${url.origin}/.well-known/oauth-protected-resource${path}/mcp/${server}`
}

/**
 * Stage: who is calling. Runs before the body is read, so an unauthenticated client never
 * makes the gateway parse anything.
 *
 * `auth: none` servers get the anonymous principal (warned at start). `auth: required` servers
 * accept no request until the authorization server lands: every request gets the RFC 6750
 * challenge, with no `error` when no credentials were sent (§3) and `invalid_token` otherwise.
 * TODO(ema): verify the gateway's access tokens here.
 */
export function authenticate (config: Config) {
  return async function authenticate (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const exchange = request.mcp
    if (exchange === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'authenticate before resolveServer')
    if (exchange.server.auth === 'none') {
      exchange.principal = ANONYMOUS
      return
    }
    const metadata = `resource_metadata="${protectedResourceMetadataUrl(config, exchange.server.name)}"`
    const challenge = request.headers.authorization === undefined
      ? `Bearer ${metadata}`
      : `Bearer error="invalid_token", error_description="The access token is not valid", ${metadata}`
    throw new GatewayError('PORTCULLIS_ERR_UNAUTHENTICATED', undefined, { headers: { 'www-authenticate': challenge } })
  }
}
