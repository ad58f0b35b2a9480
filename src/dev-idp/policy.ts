/**
 * The dev IdP's admin policy for ID-JAGs (design.md §8): which (audience, resource) pairs exist,
 * who may reach them, with which scopes. EMA §7.6.1: the IdP keeps the map of valid
 * (audience, resource) pairs and rejects a mismatched pair.
 *
 *   audience unknown, or resource not listed under it      → invalid_target
 *   pair known, but no entry admits this user and client   → access_denied
 *   scopes requested, none of them granted by the entries   → invalid_scope
 */
import type { DevIdpClient, DevIdpGrant, DevIdpUser } from './config.ts'
import { OAuthError } from './oauth.ts'

export interface GrantRequest {
  readonly audience: string
  /** absent: the one resource this user may reach under the audience, if there is exactly one */
  readonly resource?: string
  /** absent: every scope the matching entries allow */
  readonly scopes?: readonly string[]
  readonly user: DevIdpUser
  readonly client: DevIdpClient
}

export interface Decision {
  /** the audience as the policy writes it (the request may differ by a trailing slash) */
  readonly audience: string
  readonly resource: string
  readonly scopes: readonly string[]
}

export function decide (policy: readonly DevIdpGrant[], request: GrantRequest): Decision {
  const forAudience = policy.filter((grant) => sameIssuer(grant.audience, request.audience))
  if (forAudience.length === 0) throw new OAuthError('invalid_target', 'audience is not an authorization server this IdP issues grants for')
  let resource = request.resource
  if (resource !== undefined && !forAudience.some((grant) => grant.resources.includes(resource ?? ''))) {
    throw new OAuthError('invalid_target', 'resource is not a resource of that audience')
  }
  const admitted = forAudience.filter((grant) => admits(grant, request.user, request.client))
  if (resource === undefined) {
    const reachable = [...new Set(admitted.flatMap((grant) => grant.resources))]
    if (reachable.length > 1) throw new OAuthError('invalid_target', 'resource is required: several resources of that audience may be reached')
    resource = reachable[0]
  }
  const matching = admitted.filter((grant) => resource !== undefined && grant.resources.includes(resource))
  const [first] = matching
  if (first === undefined || resource === undefined) {
    throw new OAuthError('access_denied', 'the policy does not allow this user and client a grant for that audience and resource')
  }
  const allowed = [...new Set(matching.flatMap((grant) => grant.scopes))]
  const scopes = request.scopes === undefined ? allowed : request.scopes.filter((scope) => allowed.includes(scope))
  if (request.scopes !== undefined && scopes.length === 0) {
    throw new OAuthError('invalid_scope', 'none of the requested scopes may be granted for that audience and resource')
  }
  return { audience: first.audience, resource, scopes }
}

function admits (grant: DevIdpGrant, user: DevIdpUser, client: DevIdpClient): boolean {
  return (grant.users === undefined || grant.users.includes(user.username)) &&
    (grant.groups === undefined || grant.groups.some((group) => user.groups.includes(group))) &&
    (grant.clients === undefined || grant.clients.includes(client.clientId))
}

/**
 * Issuer strings are compared exactly, except that one trailing `/` is forgiven: clients build
 * the audience from PRM or AS metadata, and URL libraries add `/` to a bare origin. The ID-JAG
 * then carries the policy's spelling (IETF ID-JAG: an IdP may resolve an alias to the issuer).
 */
function sameIssuer (configured: string, requested: string): boolean {
  return configured === requested || configured === `${requested}/` || `${configured}/` === requested
}
