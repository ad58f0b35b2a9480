import type { ServerConfig } from '../../config/types.ts'
import type { Principal } from '../../authn/principal.ts'
import { decide, type CompiledPolicy, type PolicyKind } from '../../policy/decide.ts'
import { decideResource } from '../../policy/resource-decision.ts'
import type { ExplainAnswer, Identity, Item } from './sources.ts'

const KINDS: Readonly<Record<Item['kind'], PolicyKind>> = { tool: 'tools', prompt: 'prompts', resource: 'resources' }

/**
 * The principal `portcullis policy explain` builds from scopes and claims: a signed-in user whose
 * `sub`, `issuer` and `client_id` are taken from the claims when given.
 */
export function explainPrincipal (identity: Identity): Principal {
  const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined
  return {
    key: 'explain',
    subject: str(identity.claims.sub) ?? 'explain',
    issuer: str(identity.claims.issuer),
    clientId: str(identity.claims.client_id),
    scopes: identity.scopes,
    claims: identity.claims,
    anonymous: false,
    assertionJti: undefined,
  }
}

/**
 * The request path's decision — and `policy explain`'s — on the compiled policy the requests are
 * judged by: `decide()`, or for a resource URI `decideResource()` (not in normal form → denied);
 * shadow mode turns a denial into would_deny, an insufficient scope is a step-up.
 */
export function explainOne (server: ServerConfig, policy: CompiledPolicy, principal: Principal, item: Item): ExplainAnswer {
  const decision = item.kind === 'resource' ? decideResource(policy, item.name, principal) : decide(policy, KINDS[item.kind], item.name, principal)
  return {
    decision: decision.allow ? 'allow' : server.mode === 'shadow' ? 'would_deny' : decision.reason === 'insufficient_scope' ? 'step_up' : 'deny',
    ruleId: decision.ruleId,
    reason: decision.reason,
    requiredScopes: decision.requiredScopes,
  }
}
