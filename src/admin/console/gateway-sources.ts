import type { StateHolder } from '../../state.ts'
import type { Metrics } from '../../telemetry/metrics.ts'
import type { AuthorizationContext } from '../../authorization-server/authorization-server.ts'
import type { UpstreamHealth } from '../../upstream/health.ts'
import type { DecisionRing } from '../../telemetry/decision-ring.ts'
import type { ServerConfig } from '../../config/types.ts'
import type { CompiledPolicy } from '../../policy/decide.ts'
import type { ListedTools } from './listed-tools.ts'
import type { ReloadHistory } from './reload-history.ts'
import type { Replicas } from './replicas.ts'
import { explainOne, explainPrincipal } from './explain.ts'
import { redactConfig, redactUrl } from './redact.ts'
import type { ConsoleSources, Item, KeyView, PlaygroundRow, ServerView, TokenCount } from './sources.ts'

/** The parts of a running gateway the console reads. */
export interface GatewayParts {
  readonly holder: StateHolder
  readonly metrics: Metrics
  readonly auth: AuthorizationContext
  readonly health: UpstreamHealth
  readonly decisions: DecisionRing
  readonly toolNames: ListedTools
  readonly reloads: ReloadHistory
  /** with store.url only */
  readonly replicas: Replicas | undefined
  /** admin.traceUrlTemplate: `{traceId}` in it is replaced by a trace id */
  readonly traceUrlTemplate?: string | undefined
}

const iso = (ms: number): string | undefined => ms > 0 ? new Date(ms).toISOString() : undefined

/** The console's view of a gateway: always of the current config (a reload shows at once). */
export function gatewaySources (parts: GatewayParts): ConsoleSources {
  const { holder, metrics, auth, health, decisions, toolNames, reloads, replicas } = parts
  const lookup = (name: string): { server: ServerConfig; policy: CompiledPolicy } | undefined => {
    const state = holder.current
    const server = Object.hasOwn(state.config.servers, name) ? state.config.servers[name] : undefined
    const policy = state.policies.get(name)
    return server === undefined || policy === undefined ? undefined : { server, policy }
  }
  return {
    async servers () {
      const streams = new Map<string, number>()
      for (const { labels, value } of (await metrics.openStreams.get()).values) {
        const server = String(labels.server)
        streams.set(server, (streams.get(server) ?? 0) + value)
      }
      const state = holder.current
      return Object.values(state.config.servers).map((server): ServerView => {
        const upstream = server.upstream
        const tools = [...toolNames.last(server.name)]
        const rules = state.policies.get(server.name)?.lists.tools ?? []
        return {
          name: server.name,
          transport: upstream.transport,
          url: upstream.transport === 'stdio' ? upstream.command : redactUrl(upstream.url),
          mode: server.mode,
          auth: server.auth,
          health: health.of(server.name),
          sessions: state.upstreams.get(server.name)?.sessionCount() ?? 0,
          streams: streams.get(server.name) ?? 0,
          tools,
          toolRules: tools.map((name) => {
            const ids = rules.filter((r) => r.matches(name)).map((r) => r.rule.id)
            return { name, ruleIds: ids.length === 0 ? ['default'] : ids }
          }),
        }
      })
    },
    decisions: (limit) => decisions.recent(limit),
    serverNames: () => Object.keys(holder.current.config.servers),
    explain (identity, item) {
      const found = lookup(identity.server)
      return found === undefined ? undefined : explainOne(found.server, found.policy, explainPrincipal(identity), item)
    },
    playground (identity, extra) {
      const found = lookup(identity.server)
      if (found === undefined) return undefined
      const principal = explainPrincipal(identity)
      const items: Item[] = []
      const seen = new Set<string>()
      const add = (item: Item): void => {
        const key = `${item.kind}\n${item.name}`
        if (seen.has(key) || item.name === '') return
        seen.add(key)
        items.push(item)
      }
      if (extra !== undefined) add(extra)
      for (const name of toolNames.last(found.server.name)) add({ kind: 'tool', name })
      // exact names the rules mention (globs name no single item)
      const exact = (rules: ServerConfig['tools']): string[] => (rules ?? []).flatMap((r) => r.names.filter((n) => !n.includes('*') && !n.includes('?')))
      for (const name of exact(found.server.tools)) add({ kind: 'tool', name })
      for (const name of exact(found.server.prompts)) add({ kind: 'prompt', name })
      for (const name of exact(found.server.resources)) add({ kind: 'resource', name })
      return items.map((item): PlaygroundRow => ({ ...item, ...explainOne(found.server, found.policy, principal, item) }))
    },
    async tokens () {
      const out: TokenCount[] = []
      for (const { labels, value } of (await metrics.tokenRequests.get()).values) {
        out.push({ grantType: String(labels.grant_type ?? ''), outcome: String(labels.outcome ?? ''), error: String(labels.error ?? ''), reason: String(labels.reason ?? ''), count: value })
      }
      return out.sort((a, b) => b.count - a.count)
    },
    idps: () => [...auth.trusted.values()].map(({ config, keys }) => {
      const state = keys.state
      return {
        issuer: config.issuer,
        jwksUri: config.jwksUri === undefined ? undefined : redactUrl(config.jwksUri),
        lastFetchAt: iso(state.fetchedAt),
        kids: [...state.kids],
        lastError: state.lastError === undefined ? undefined : { at: new Date(state.lastError.at).toISOString(), message: state.lastError.message },
      }
    }),
    keys () {
      let set
      try {
        set = auth.keys
      } catch {
        return [] // not loaded yet
      }
      return set.verificationKeys.map((k): KeyView => ({ kid: k.kid, alg: k.alg, status: k.status, ephemeral: set.ephemeral }))
    },
    config: () => redactConfig(holder.current.config),
    reloads: () => reloads.list(),
    replicas: () => replicas?.list(),
    traceUrl (traceId) {
      const template = parts.traceUrlTemplate
      return template === undefined ? undefined : template.replaceAll('{traceId}', encodeURIComponent(traceId))
    },
  }
}
