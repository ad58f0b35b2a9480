import type { ServerResponse } from 'node:http'
import type { ServerConfig } from '../config/types.ts'
import type { JsonRpcMessage } from '../jsonrpc/types.ts'
import type { McpOperation } from '../jsonrpc/classify.ts'
import type { Principal } from '../authn/principal.ts'
import type { CompiledPolicy } from '../policy/decide.ts'
import type { RequestRecord } from './request-record.ts'
import type { Span } from '@opentelemetry/api'
import type { SessionState } from '../session/sealed-session-id.ts'

/** The MCP protocol revisions this gateway understands (protocol.md §5.1). */
export const KNOWN_PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'] as const
/** The revision whose requests carry Mcp-Method / Mcp-Name headers that must match the body. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28'
/** "If the server does not receive an MCP-Protocol-Version header … it SHOULD assume 2025-03-26." */
export const DEFAULT_PROTOCOL_VERSION = '2025-03-26'

/**
 * A stage of the response half: called for every JSON-RPC message the upstream sends towards
 * the client, in order. `requestMethod` is the method of the client request a response answers,
 * when known. Return a replacement message to rewrite it in flight, or `undefined` to forward it
 * as is (the next stage sees the replacement).
 */
export type UpstreamMessageStage = (exchange: McpExchange, message: unknown, requestMethod: string | undefined) => unknown

/** A stage run when the client's HTTP exchange closes (after its response, or when the client left). */
export type CloseStage = (exchange: McpExchange) => void

/** The response half of the pipeline (pipeline.ts): what happens to an answer, in order. */
export interface ResponseStages {
  readonly onUpstreamMessage: readonly UpstreamMessageStage[]
  readonly onClose: readonly CloseStage[]
}

/** For exchanges nothing observes (a peer replica's forwarded request: the peer observes it). */
export const NO_RESPONSE_STAGES: ResponseStages = Object.freeze({ onUpstreamMessage: [], onClose: [] })

/** A new exchange for a request to `server`, judged by `policy` (the config current when it arrived) to its end. */
export function newExchange (server: ServerConfig, policy: CompiledPolicy, response: ResponseStages, res: ServerResponse): McpExchange {
  // Only a POST carries messages. A GET stream may stay open for hours: its exchange shares the
  // empty collections below instead of holding empty ones of its own (they refuse additions).
  const bodyless = res.req !== undefined && res.req.method !== 'POST'
  return {
    server,
    policy,
    response,
    res,
    started: performance.now(),
    principal: null,
    protocolVersion: DEFAULT_PROTOCOL_VERSION,
    sessionId: undefined,
    session: undefined,
    messages: NO_MESSAGES,
    operations: NO_OPERATIONS,
    batch: false,
    pending: bodyless ? NO_PENDING : new Map(),
    records: bodyless ? NO_RECORDS : new Map(),
    notificationSpans: bodyless ? NO_SPANS : [],
    cancels: [],
  }
}

/** A Map that stays empty: shared by every exchange without messages. */
class EmptyMap<K, V> extends Map<K, V> {
  override set (): this {
    throw new TypeError('an exchange without messages has no requests to track')
  }
}

const NO_MESSAGES: readonly JsonRpcMessage[] = Object.freeze([])
const NO_OPERATIONS: readonly McpOperation[] = Object.freeze([])
const NO_PENDING: Map<string | number, string> = new EmptyMap()
const NO_RECORDS: Map<string | number, RequestRecord> = new EmptyMap()
const NO_SPANS: Span[] = Object.freeze([]) as unknown as Span[]

/** Everything the stages of the MCP request path learn about one HTTP request. */
export interface McpExchange {
  /** the server and policy this request is judged by, from start to end, whatever a reload does meanwhile */
  readonly server: ServerConfig
  readonly policy: CompiledPolicy
  /** the pipeline's response half, run for this exchange */
  readonly response: ResponseStages
  /** the client's response */
  readonly res: ServerResponse
  /** when the HTTP request arrived (performance.now()) */
  readonly started: number
  principal: Principal | null
  /** MCP-Protocol-Version header, or the body's 2026-07-28 `_meta` version, or the default */
  protocolVersion: string
  /** the Mcp-Session-Id as the client sent it (sealed), once judged to be this principal's */
  sessionId: string | undefined
  /** what that id carries: the upstream's own session id, or the replica that owns a bridged session */
  session: SessionState | undefined
  /** POST only: the parsed messages and what each asks for */
  messages: readonly JsonRpcMessage[]
  operations: readonly McpOperation[]
  batch: boolean
  /** request id → method, for the responses this POST will receive */
  readonly pending: Map<string | number, string>
  /** one per JSON-RPC request of this POST, by id: what was asked, decided, and how it ended */
  readonly records: Map<string | number, RequestRecord>
  /** SERVER spans of the notifications of this POST (requests keep theirs in their record) */
  readonly notificationSpans: Span[]
  /** how to stop what this exchange started upstream, if the client leaves first (the close stage cancelUpstream runs them) */
  readonly cancels: Array<() => void>
}
