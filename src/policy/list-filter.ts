import { ANONYMOUS, type Principal } from '../authn/principal.ts'
import type { McpExchange, UpstreamMessageStage } from '../mcp/exchange.ts'
import { MODERN_PROTOCOL_VERSION } from '../mcp/exchange.ts'
import type { ToolNames } from '../telemetry/tool-names.ts'
import { decideRemembered } from './decide.ts'
import { decideResource, decideTemplate } from './resource-decision.ts'

/** Whether a listed item may be seen, by the key it is judged by. */
type Judge = (exchange: McpExchange, key: string, principal: Principal) => boolean

/** The list results the policy filters: the array member, the key each item is judged by, and how. */
const LISTS: ReadonlyArray<{ method: string; member: string; key: string; allowed: Judge }> = [
  { method: 'tools/list', member: 'tools', key: 'name', allowed: (e, name, p) => decideRemembered(e.policy, 'tools', name, p).allow },
  { method: 'prompts/list', member: 'prompts', key: 'name', allowed: (e, name, p) => decideRemembered(e.policy, 'prompts', name, p).allow },
  { method: 'resources/list', member: 'resources', key: 'uri', allowed: (e, uri, p) => decideResource(e.policy, uri, p).allow },
  { method: 'resources/templates/list', member: 'resourceTemplates', key: 'uriTemplate', allowed: (e, t, p) => decideTemplate(e.policy, t, p).allow },
]

/**
 * Response stage: removes from `tools/list`, `prompts/list`, `resources/list` and
 * `resources/templates/list` results every item the policy would refuse — the same decision that
 * gates the calls (a template: uri-template.ts) — in JSON and SSE
 * responses, on POST, GET and resumed streams alike. Upstream order and `nextCursor` are kept
 * untouched; an emptied page is `[]`; 2026-07-28 results become `cacheScope: "private"`, since
 * they now vary per user. A response whose request is unknown (a replay on a GET stream) is
 * filtered by its shape, defensively. Shadow mode filters nothing (it only reports).
 */
export function filterLists (toolNames: ToolNames): UpstreamMessageStage {
  return function filterLists (exchange, message, requestMethod) {
    if (exchange.server.mode === 'shadow') return undefined
    // authenticate always sets one before anything is forwarded; without it, judge as nobody (fail closed)
    const principal = exchange.principal ?? ANONYMOUS
    if (typeof message !== 'object' || message === null || 'method' in message) return undefined
    const result = (message as { result?: unknown }).result
    if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined
    for (const list of LISTS) {
      if (requestMethod !== undefined && requestMethod !== list.method) continue
      const items = (result as Record<string, unknown>)[list.member]
      if (!Array.isArray(items)) continue
      if (list.member === 'tools') toolNames.remember(exchange.server.name, items.map(nameOf).filter((n): n is string => n !== undefined))
      const kept = items.filter((item: unknown) => {
        const key = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)[list.key] : undefined
        return typeof key === 'string' && list.allowed(exchange, key, principal)
      })
      const modern = exchange.protocolVersion === MODERN_PROTOCOL_VERSION
      if (kept.length === items.length && !modern) return undefined
      return { ...message, result: { ...result, [list.member]: kept, ...(modern ? { cacheScope: 'private' } : {}) } }
    }
    return undefined
  }
}

function nameOf (item: unknown): string | undefined {
  const name = typeof item === 'object' && item !== null ? (item as { name?: unknown }).name : undefined
  return typeof name === 'string' ? name : undefined
}
