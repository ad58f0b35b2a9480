import type { DecisionEntry } from '../../telemetry/decision-ring.ts'

/** What the console shows. The plugin reads only this; gateway-sources.ts builds it. */
export interface ConsoleSources {
  servers (): Promise<ServerView[]>
  /** newest first */
  decisions (limit: number): DecisionEntry[]
  /** the names of the configured servers, for the playground */
  serverNames (): string[]
  /** the request path's decision for one identity and one item; undefined: no such server */
  explain (identity: Identity, item: Item): ExplainAnswer | undefined
  /** every tool, prompt and resource known for the server (and `extra`), decided for one identity */
  playground (identity: Identity, extra: Item | undefined): PlaygroundRow[] | undefined
  tokens (): Promise<TokenCount[]>
  idps (): IdpView[]
  keys (): KeyView[]
  /** the running config, every secret `[redacted]` */
  config (): unknown
  reloads (): ReloadEntry[]
  /** undefined without store.url */
  replicas (): ReplicaView[] | undefined
  /** a link to the trace of an id (admin.traceUrlTemplate), if configured */
  traceUrl (traceId: string): string | undefined
}

export interface ServerView {
  readonly name: string
  readonly transport: 'streamable-http' | 'sse' | 'stdio'
  /** credentials redacted; a stdio upstream shows its command */
  readonly url: string
  readonly mode: 'enforce' | 'shadow'
  readonly auth: 'required' | 'none'
  readonly health: { readonly lastSuccessAt: string | undefined; readonly lastError: { readonly at: string; readonly reason: string } | undefined }
  readonly sessions: number
  readonly streams: number
  /** the tools the upstream last listed, each with the rule that decides it for anyone */
  readonly tools: string[]
  readonly toolRules: ReadonlyArray<{ readonly name: string; readonly ruleIds: string[] }>
}

/** Who asks, as the playground and `policy explain` take it: scopes and claims (sub, client_id, issuer among them). */
export interface Identity {
  readonly server: string
  readonly scopes: readonly string[]
  readonly claims: Readonly<Record<string, unknown>>
}

export interface Item {
  readonly kind: 'tool' | 'prompt' | 'resource'
  readonly name: string
}

export type PolicyVerdict = 'allow' | 'deny' | 'would_deny' | 'step_up'

export interface ExplainAnswer {
  readonly decision: PolicyVerdict
  readonly ruleId: string
  readonly reason: string
  /** for step_up: the scopes a token would need */
  readonly requiredScopes: readonly string[]
}

export interface PlaygroundRow extends ExplainAnswer {
  readonly kind: 'tool' | 'prompt' | 'resource'
  readonly name: string
}

export interface TokenCount {
  readonly grantType: string
  readonly outcome: string
  readonly error: string
  readonly reason: string
  readonly count: number
}

export interface IdpView {
  readonly issuer: string
  readonly jwksUri: string | undefined
  readonly lastFetchAt: string | undefined
  readonly kids: string[]
  readonly lastError: { readonly at: string; readonly message: string } | undefined
}

export interface KeyView {
  readonly kid: string
  readonly alg: string
  readonly status: string
  readonly ephemeral: boolean
}

export interface ReloadEntry {
  readonly at: string
  readonly applied: boolean
  readonly restartNeeded: readonly string[]
}

export interface ReplicaView {
  readonly advertiseUrl: string
  readonly version: string
  readonly startedAt: string
  /** ISO 8601 until which its last heartbeat holds */
  readonly expiresAt: string
  readonly self: boolean
}
