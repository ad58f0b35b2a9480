/**
 * JSON-RPC 2.0 messages as the gateway sees them (protocol.md §5.6).
 *
 * Every message keeps the object it was parsed from in `raw`: what is forwarded is
 * `JSON.stringify(raw)`, so members the gateway does not model (`_meta`, extensions) travel
 * unchanged. `params`, `result` and `error` are the very objects inside `raw` — rewriting
 * one of them rewrites what is forwarded.
 */

/** A request id: a string or an integer (fractions, null, objects and booleans are refused). */
export type JsonRpcId = string | number

export interface JsonRpcRequest {
  readonly kind: 'request'
  readonly id: JsonRpcId
  readonly method: string
  readonly params: Record<string, unknown> | undefined
  readonly raw: Record<string, unknown>
}

export interface JsonRpcNotification {
  readonly kind: 'notification'
  readonly method: string
  readonly params: Record<string, unknown> | undefined
  readonly raw: Record<string, unknown>
}

export interface JsonRpcResultResponse {
  readonly kind: 'result'
  readonly id: JsonRpcId
  readonly result: Record<string, unknown>
  readonly raw: Record<string, unknown>
}

export interface JsonRpcErrorObject {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

export interface JsonRpcErrorResponse {
  readonly kind: 'error'
  /** null when the peer could not tell which request failed (JSON-RPC 2.0 §5) */
  readonly id: JsonRpcId | null
  readonly error: JsonRpcErrorObject
  readonly raw: Record<string, unknown>
}

export type JsonRpcResponse = JsonRpcResultResponse | JsonRpcErrorResponse
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse

/**
 * Error codes: JSON-RPC 2.0 §5.1, plus the MCP codes the gateway emits. The 2026-07-28
 * revision reserves -32020…-32099 for the spec: never emit a code from that range that is
 * not listed there.
 */
export const JsonRpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** MCP: `resources/read` of an unknown (or denied) URI */
  ResourceNotFound: -32002,
  /** MCP 2026-07-28: `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` header disagrees with the body */
  HeaderMismatch: -32020,
  /** MCP 2026-07-28: `data: { supported, requested }` */
  UnsupportedProtocolVersion: -32022
} as const

// eslint-disable-next-line @typescript-eslint/no-redeclare -- the value and its type share the name on purpose
export type JsonRpcErrorCode = typeof JsonRpcErrorCode[keyof typeof JsonRpcErrorCode]

/** A JSON-RPC error response built by the gateway itself, ready for `serializeMessage`. */
export function errorResponse (id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcErrorResponse {
  const error: JsonRpcErrorObject = data === undefined ? { code, message } : { code, message, data }
  return { kind: 'error', id, error, raw: { jsonrpc: '2.0', id, error } }
}
