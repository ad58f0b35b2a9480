import type { Span } from '@opentelemetry/api'
import type { Decision } from '../policy/decide.ts'
import type { JsonRpcId } from '../jsonrpc/types.ts'

/** design.md §6 `outcome` values. */
export type Outcome = 'success' | 'tool_error' | 'jsonrpc_error' | 'denied' | 'unauthenticated' | 'upstream_error'
  | 'timeout' | 'cancelled' | 'invalid_request'

/** One JSON-RPC request of a POST: what it asked, what the policy decided, how it ended. */
export interface RequestRecord {
  readonly id: JsonRpcId
  readonly method: string
  /** tool or prompt name, resource uri; completion/complete: what its ref names */
  readonly target: string | undefined
  /** completion/complete: whether `target` is a prompt name or a resource URI (template) */
  readonly ref?: 'prompt' | 'resource' | undefined
  decision: Decision | undefined
  /** shadow mode: denied by the rules but forwarded */
  shadowDenied: boolean
  outcome: Outcome | undefined
  errorType: string | undefined
  /** the SERVER span of this message, when tracing is on, and its (bounded) name */
  span: Span | undefined
  spanName?: string
}
