import type { PolicyRule, ServerConfig } from '../config/types.ts'
import type { Principal } from '../authn/principal.ts'
import { compileGlob, type NameMatcher } from './glob.ts'

/** What a rule list governs, and how a denial is answered (design.md §5). */
export type PolicyKind = 'tools' | 'prompts' | 'resources'

/**
 * Why the policy decided as it did: `Decision.reason`, the `reason` label of
 * portcullis_policy_decisions_total and `portcullis.policy.reason` in the audit line. Dashboards
 * depend on these exact strings: add, never rename.
 */
export const DECISION_REASONS = [
  'allowed_by_rule',      // an allow rule matched, with its scopes and claims
  'default_allow',        // no rule list for prompts/resources: anyone authorized for the server
  'denied_by_rule',       // a deny rule matched (deny wins)
  'no_matching_rule',     // no allow rule names it (default deny)
  'claims_not_matched',   // allow rules name it, but the identity is not one they admit
  'insufficient_scope',   // an allow rule would admit it with scopes the token lacks (step-up)
  'scope_not_held',       // the same, for a principal that can't step up (auth: none)
  'non_canonical_uri',    // a resource URI (template) not in its normal form (policy/resource-uri.ts)
  'no_rules',             // the server has no tools list: no tool is allowed
] as const
export type DecisionReason = typeof DECISION_REASONS[number]

/** The `decision` label of portcullis_policy_decisions_total (design.md §6): `would_deny` is a denial in shadow mode. */
export const DECISION_LABELS = ['allow', 'deny', 'would_deny'] as const
export type DecisionLabel = typeof DECISION_LABELS[number]

export interface Decision {
  readonly allow: boolean
  /** the rule that decided, or `default` */
  readonly ruleId: string
  readonly reason: DecisionReason
  /** for insufficient_scope: every scope of the cheapest rule that would allow it */
  readonly requiredScopes: readonly string[]
}

export interface CompiledRule {
  readonly rule: PolicyRule
  readonly matches: NameMatcher
}

export interface CompiledPolicy {
  readonly server: string
  readonly lists: Readonly<Record<PolicyKind, readonly CompiledRule[] | undefined>>
  /** exact names the rules mention, for bounded metric labels */
  readonly namedTools: ReadonlySet<string>
}

/** Compile a server's rules once per config load. */
export function compilePolicy (server: ServerConfig): CompiledPolicy {
  const compile = (rules: readonly PolicyRule[] | undefined): CompiledRule[] | undefined => rules?.map((rule) => {
    const matchers = rule.names.map(compileGlob)
    return { rule, matches: (name: string) => matchers.some((m) => m(name)) }
  })
  return {
    server: server.name,
    lists: { tools: compile(server.tools), prompts: compile(server.prompts), resources: compile(server.resources) },
    namedTools: new Set((server.tools ?? []).flatMap((r) => r.names.filter((n) => !n.includes('*') && !n.includes('?')))),
  }
}

/**
 * The one decision that gates `tools/call` (and `prompts/get`, `resources/read`) and filters the
 * lists: deny wins; an allow rule must name the item and its every scope and claim condition must
 * hold; nothing matching means deny. Pure and synchronous: it runs per call and per listed item.
 */
export function decide (policy: CompiledPolicy, kind: PolicyKind, name: string, principal: Principal): Decision {
  const rules = policy.lists[kind]
  if (rules === undefined) {
    return kind === 'tools' ? deny('default', 'no_rules') : { allow: true, ruleId: 'default', reason: 'default_allow', requiredScopes: [] }
  }
  return judge(rules, principal, (rule) => rule.matches(name), (rule) => rule.matches(name))
}

/**
 * decide()'s logic over one rule list, with the tests of "a deny rule hits" and "an allow rule
 * admits" given apart (a URI template is denied by overlapping a deny rule, admitted only when an
 * allow rule covers it whole: policy/uri-template.ts).
 */
export function judge (rules: readonly CompiledRule[], principal: Principal, denies: (rule: CompiledRule) => boolean, admits: (rule: CompiledRule) => boolean): Decision {
  for (const compiled of rules) {
    const { rule } = compiled
    if (rule.effect === 'deny' && denies(compiled) && claimsHold(rule, principal) && scopesHeld(rule, principal)) return deny(rule.id, 'denied_by_rule')
  }
  let named = false
  let stepUp: PolicyRule | undefined
  for (const compiled of rules) {
    const { rule } = compiled
    if (rule.effect !== 'allow' || !admits(compiled)) continue
    named = true
    if (!claimsHold(rule, principal)) continue
    if (scopesHeld(rule, principal)) return { allow: true, ruleId: rule.id, reason: 'allowed_by_rule', requiredScopes: [] }
    if (stepUp === undefined || rule.scopes.length < stepUp.scopes.length) stepUp = rule
  }
  // Step-up only makes sense for a principal that can come back with more scope.
  if (stepUp !== undefined) {
    return principal.anonymous ? deny(stepUp.id, 'scope_not_held') : { allow: false, ruleId: stepUp.id, reason: 'insufficient_scope', requiredScopes: stepUp.scopes }
  }
  return deny('default', named ? 'claims_not_matched' : 'no_matching_rule')
}

/** Most decisions remembered per (policy, principal, kind). */
const MEMO_PER_PRINCIPAL = 2048
const memo = new WeakMap<CompiledPolicy, WeakMap<Principal, Map<PolicyKind, Map<string, Decision>>>>()

/**
 * `decide()`, remembered per compiled policy and principal object. A verified access token
 * yields the same (frozen) principal object until it expires, and a reload compiles new policy
 * objects, so a remembered decision can never outlive either; the memo is weakly held.
 */
export function decideRemembered (policy: CompiledPolicy, kind: PolicyKind, name: string, principal: Principal): Decision {
  let byPrincipal = memo.get(policy)
  if (byPrincipal === undefined) memo.set(policy, byPrincipal = new WeakMap())
  let byKind = byPrincipal.get(principal)
  if (byKind === undefined) byPrincipal.set(principal, byKind = new Map())
  // by kind, then by name: no key string to build and hash per call
  let decisions = byKind.get(kind)
  if (decisions === undefined) byKind.set(kind, decisions = new Map())
  let decision = decisions.get(name)
  if (decision === undefined) {
    decision = decide(policy, kind, name, principal)
    if (decisions.size < MEMO_PER_PRINCIPAL) decisions.set(name, decision)
  }
  return decision
}

export function deny (ruleId: string, reason: DecisionReason): Decision {
  return { allow: false, ruleId, reason, requiredScopes: [] }
}

function scopesHeld (rule: PolicyRule, principal: Principal): boolean {
  return rule.scopes.every((scope) => principal.scopes.includes(scope))
}

function claimsHold (rule: PolicyRule, principal: Principal): boolean {
  for (const [claim, accepted] of Object.entries(rule.claims)) {
    const values = claimValues(principal, claim)
    if (!values.some((v) => accepted.includes(v))) return false
  }
  return true
}

/**
 * A principal's values for a claim condition. Besides the mapped identity claims (groups, email,
 * tenant …): `sub`, `client_id`, `issuer` (the IdP that vouched for the user) and `email_domain`
 * (the part after the last `@` of `email`, lowercased — domains are case-insensitive, RFC 4343).
 */
export function claimValues (principal: Principal, claim: string): string[] {
  switch (claim) {
    case 'sub': return principal.anonymous ? [] : [principal.subject]
    case 'client_id': return principal.clientId === undefined ? [] : [principal.clientId]
    case 'issuer': return principal.issuer === undefined ? [] : [principal.issuer]
    case 'email_domain': {
      const email = principal.claims.email
      const at = typeof email === 'string' ? email.lastIndexOf('@') : -1
      return at === -1 ? [] : [(email as string).slice(at + 1).toLowerCase()]
    }
  }
  const value = Object.hasOwn(principal.claims, claim) ? principal.claims[claim] : undefined
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string')
  return []
}
