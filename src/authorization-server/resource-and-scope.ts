import type { ServerConfig } from '../config/types.ts'
import { OAuthError, invalidGrant } from './errors.ts'
import { sameIdentifier } from './grants/jwt-bearer-id-jag.ts'

/**
 * Which one of our MCP servers the access token is for (design.md §5): the ID-JAG `resource`
 * claim, else the `resource` form parameter; it must name one of our servers, and both must
 * agree when both are present. A bad claim is `invalid_grant`; a bad form parameter is RFC 8707
 * `invalid_target`.
 */
export function selectServer (servers: readonly ServerConfig[], claimed: readonly string[], param: string | undefined): ServerConfig {
  const fromParam = param === undefined ? undefined : findServer(servers, param)
  if (param !== undefined && fromParam === undefined) {
    throw new OAuthError('invalid_target', 'The resource parameter does not name an MCP server of this gateway', 'resource_not_allowed')
  }
  if (claimed.length === 0) {
    if (fromParam === undefined) throw invalidGrant('Neither the assertion nor the request names a resource', 'missing_resource')
    return fromParam
  }
  const fromClaim = claimed.map((r) => findServer(servers, r))
  if (claimed.length === 1) {
    const [only] = fromClaim
    if (only === undefined) throw invalidGrant('The assertion\'s resource is not an MCP server of this gateway', 'resource_not_allowed')
    if (fromParam !== undefined && fromParam !== only) throw invalidGrant('The resource parameter and the assertion name different resources', 'resource_mismatch')
    return only
  }
  // A multi-valued claim (RFC 8707 allows it) is accepted only when the parameter selects one of ours from it.
  if (fromParam === undefined || !fromClaim.includes(fromParam)) {
    throw invalidGrant('The assertion names several resources; the resource parameter must select one of them', 'resource_mismatch')
  }
  return fromParam
}

function findServer (servers: readonly ServerConfig[], resource: string): ServerConfig | undefined {
  return servers.find((s) => sameIdentifier(resource, s.resource))
}

/**
 * Scope granted = (requested, or the ID-JAG's scope when none requested) ∩ ID-JAG scope ∩
 * server scopes (EMA §7.2.1: the intersection). An ID-JAG without `scope` limits nothing; a
 * request whose scope comes out empty is `invalid_scope`.
 */
export function grantScopes (requested: string | undefined, idJagScopes: readonly string[] | undefined, server: ServerConfig): string[] {
  const asked = requested === undefined ? undefined : requested.split(' ').filter((s) => s !== '')
  const base = asked ?? idJagScopes ?? server.scopes
  const granted = [...new Set(base)].filter((s) => (idJagScopes === undefined || idJagScopes.includes(s)) && server.scopes.includes(s))
  if (asked !== undefined && asked.length > 0 && granted.length === 0) {
    throw new OAuthError('invalid_scope', 'None of the requested scopes can be granted', 'scope_not_allowed')
  }
  return granted
}
