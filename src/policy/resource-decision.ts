import type { Principal } from '../authn/principal.ts'
import { MAX_URI_CHARS } from '../jsonrpc/bounds.ts'
import { decide, decideRemembered, judge, type CompiledPolicy, type CompiledRule, type Decision } from './decide.ts'
import { isJudgeableUri } from './resource-uri.ts'
import { covers, globTokens, overlaps, parseTemplate, skeleton, withoutQuery } from './uri-template.ts'

const NON_CANONICAL: Decision = Object.freeze({ allow: false, ruleId: 'default', reason: 'non_canonical_uri', requiredScopes: [] })

/**
 * The decision on a resource URI — `resources/read`, `subscribe`, `unsubscribe`, each item of
 * `resources/list`. A URI not in its normal form is refused (resource-uri.ts). A deny rule also
 * denies the URI with a query added: `file:///secret/keys.txt?v=1` reads the same file from an
 * upstream that ignores the query.
 */
export function decideResource (policy: CompiledPolicy, uri: string, principal: Principal): Decision {
  if (!isJudgeableUri(uri)) return NON_CANONICAL
  const decision = decideRemembered(policy, 'resources', uri, principal)
  const q = uri.indexOf('?')
  if (!decision.allow || q === -1) return decision
  const bare = decideRemembered(policy, 'resources', uri.slice(0, q), principal)
  return bare.reason === 'denied_by_rule' ? bare : decision
}

/**
 * The decision on a URI template — each item of `resources/templates/list`, a `ref/resource` of
 * `completion/complete` — by the rules for what it can expand to (uri-template.ts). Its literal
 * parts must be in normal form, as a URI's would.
 */
export function decideTemplate (policy: CompiledPolicy, template: string, principal: Principal): Decision {
  const rules = policy.lists.resources
  const tokens = template.length > MAX_URI_CHARS ? undefined : parseTemplate(template)
  if (tokens === undefined || !isJudgeableUri(skeleton(tokens))) return NON_CANONICAL
  if (rules === undefined) return decide(policy, 'resources', template, principal)
  const bare = withoutQuery(template, tokens)
  const globs = new Map(rules.map((rule) => [rule, rule.rule.names.map(globTokens)]))
  const of = (rule: CompiledRule): ReturnType<typeof globTokens>[] => globs.get(rule)!
  return judge(rules, principal,
    (rule) => of(rule).some((glob) => overlaps(glob, tokens) || (bare !== undefined && overlaps(glob, bare))),
    (rule) => of(rule).some((glob) => covers(glob, tokens)))
}
