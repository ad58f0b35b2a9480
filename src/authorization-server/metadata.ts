import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Config } from '../config/types.ts'
import { JWT_BEARER } from './grants/jwt-bearer-id-jag.ts'

export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

/** RFC 9728 §3.1 / RFC 8414 §3.1: the well-known path goes between the host and the identifier's path. */
export function wellKnownPath (identifier: string, suffix: string): string {
  const path = new URL(identifier).pathname.replace(/\/$/, '')
  return `/.well-known/${suffix}${path}`
}

/**
 * Discovery: one RFC 9728 protected-resource document per `auth: required` server, and the
 * RFC 8414 authorization-server document. No trusted issuer appears in either (IETF ID-JAG:
 * the profile "MUST NOT" be used to disclose issuer allow-lists). Served without authentication
 * and with CORS `*`, like the SDK's metadata handler.
 */
export async function discoveryRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  const issuer = config.authorization.issuer
  const base = config.publicUrl
  const servers = Object.values(config.servers).filter((s) => s.auth === 'required')
  const { registration } = config.authorization
  // The federated authorization-code login is on when an IdP has `login` (config allows one).
  const login = config.authorization.identityProviders.some((idp) => idp.login !== undefined)
  const asMetadata = Object.freeze({
    issuer,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    jwks_uri: `${base}/oauth/jwks`,
    ...(registration.dynamic ? { registration_endpoint: `${base}/oauth/register` } : {}),
    // RFC 8414 requires response_types_supported, and the SDK 2.x client refuses metadata without
    // an authorization endpoint; without a login IdP it answers per RFC 6749 §4.1.2.1.
    response_types_supported: ['code'],
    grant_types_supported: login ? [JWT_BEARER, 'authorization_code'] : [JWT_BEARER],
    authorization_grant_profiles_supported: [ID_JAG_PROFILE],
    // `none`: public clients, for the PKCE-bound authorization code only (never jwt-bearer)
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', ...(login ? ['none'] : [])],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: [...new Set(servers.flatMap((s) => s.scopes))],
    client_id_metadata_document_supported: registration.clientIdMetadataDocuments,
    // RFC 9207: every authorization response (codes and errors) carries `iss`
    ...(login ? { authorization_response_iss_parameter_supported: true } : {}),
  })
  const sendJson = async (reply: FastifyReply, body: unknown): Promise<FastifyReply> =>
    await reply.header('access-control-allow-origin', '*').header('cache-control', 'public, max-age=300').send(body)

  app.get(wellKnownPath(issuer, 'oauth-authorization-server'), async function authorizationServerMetadata (_request, reply) {
    return await sendJson(reply, asMetadata)
  })
  for (const server of servers) {
    const prm = Object.freeze({
      resource: server.resource,
      authorization_servers: [issuer],
      scopes_supported: server.scopes,
      bearer_methods_supported: ['header'],
      resource_name: server.name,
    })
    app.get(wellKnownPath(server.resource, 'oauth-protected-resource'), async function protectedResourceMetadata (_request, reply) {
      return await sendJson(reply, prm)
    })
  }
}
