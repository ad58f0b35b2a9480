/**
 * The one registry of errors that hostile or broken traffic can cause.
 *
 * Bad config or wiring is a `ConfigError` (config/load.ts) and stops the process at boot.
 * Everything here is raised by traffic: each has a stable `code`, the HTTP status it is
 * answered with, the JSON-RPC code used when the answer is a JSON-RPC error, and whether its
 * message may be shown to the client (`expose`). An unexposed error is answered with a fixed
 * message; its detail (and `cause`) goes to the log only.
 */

export interface GatewayErrorSpec {
  readonly statusCode: number
  readonly rpcCode: number
  readonly message: string
  readonly expose: boolean
}

export const gatewayErrors = {
  PORTCULLIS_ERR_UNKNOWN_SERVER: { statusCode: 404, rpcCode: -32600, message: 'Not Found: no MCP server at this path', expose: true },
  PORTCULLIS_ERR_METHOD_NOT_ALLOWED: { statusCode: 405, rpcCode: -32600, message: 'Method Not Allowed', expose: true },
  PORTCULLIS_ERR_ORIGIN: { statusCode: 403, rpcCode: -32600, message: 'Forbidden: Origin not allowed', expose: true },
  PORTCULLIS_ERR_NOT_ACCEPTABLE: { statusCode: 406, rpcCode: -32600, message: 'Not Acceptable: Accept must list application/json and text/event-stream', expose: true },
  PORTCULLIS_ERR_NOT_ACCEPTABLE_SSE: { statusCode: 406, rpcCode: -32600, message: 'Not Acceptable: Accept must list text/event-stream', expose: true },
  PORTCULLIS_ERR_UNSUPPORTED_MEDIA_TYPE: { statusCode: 415, rpcCode: -32600, message: 'Unsupported Media Type: Content-Type must be application/json', expose: true },
  PORTCULLIS_ERR_CONTENT_ENCODING: { statusCode: 415, rpcCode: -32600, message: 'Unsupported Media Type: Content-Encoding is not accepted', expose: true },
  PORTCULLIS_ERR_BODY_TOO_LARGE: { statusCode: 413, rpcCode: -32600, message: 'Payload Too Large', expose: true },
  PORTCULLIS_ERR_PARSE: { statusCode: 400, rpcCode: -32700, message: 'Parse error', expose: true },
  PORTCULLIS_ERR_INVALID_REQUEST: { statusCode: 400, rpcCode: -32600, message: 'Invalid Request', expose: true },
  PORTCULLIS_ERR_INVALID_PARAMS: { statusCode: 400, rpcCode: -32602, message: 'Invalid params', expose: true },
  PORTCULLIS_ERR_HEADER_MISMATCH: { statusCode: 400, rpcCode: -32020, message: 'Header mismatch', expose: true },
  PORTCULLIS_ERR_BAD_PROTOCOL_VERSION: { statusCode: 400, rpcCode: -32600, message: 'Bad Request: invalid MCP-Protocol-Version header', expose: true },
  PORTCULLIS_ERR_SESSION_REQUIRED: { statusCode: 400, rpcCode: -32600, message: 'Bad Request: Mcp-Session-Id header is required', expose: true },
  PORTCULLIS_ERR_SESSION_NOT_FOUND: { statusCode: 404, rpcCode: -32001, message: 'Session not found', expose: true },
  PORTCULLIS_ERR_UNAUTHENTICATED: { statusCode: 401, rpcCode: -32600, message: 'Unauthorized', expose: true },
  PORTCULLIS_ERR_INSUFFICIENT_SCOPE: { statusCode: 403, rpcCode: -32600, message: 'Forbidden: the access token lacks a scope this request needs', expose: true },
  PORTCULLIS_ERR_BAD_AUTHORIZATION: { statusCode: 400, rpcCode: -32600, message: 'Bad Request: malformed credentials', expose: true },
  PORTCULLIS_ERR_TOO_MANY_SESSIONS: { statusCode: 503, rpcCode: -32603, message: 'Service Unavailable: too many sessions for this MCP server', expose: true },
  // One code for every rate and concurrency limit, outside the ranges JSON-RPC and MCP reserve (-32768..-32000).
  PORTCULLIS_ERR_RATE_LIMITED: { statusCode: 429, rpcCode: -31029, message: 'Too Many Requests: over a rate or concurrency limit, retry after Retry-After seconds', expose: true },
  PORTCULLIS_ERR_UPSTREAM_UNAVAILABLE: { statusCode: 502, rpcCode: -32603, message: 'Bad Gateway: the MCP server could not be reached', expose: true },
  PORTCULLIS_ERR_UPSTREAM_BAD_RESPONSE: { statusCode: 502, rpcCode: -32603, message: 'Bad Gateway: the MCP server sent an invalid response', expose: true },
  PORTCULLIS_ERR_UPSTREAM_STATUS: { statusCode: 502, rpcCode: -32603, message: 'Bad Gateway: the MCP server failed', expose: true },
  PORTCULLIS_ERR_UPSTREAM_BUSY: { statusCode: 503, rpcCode: -32603, message: 'Service Unavailable: no connection to the MCP server came free in time', expose: true },
  PORTCULLIS_ERR_UPSTREAM_OVERLOADED: { statusCode: 503, rpcCode: -32603, message: 'Service Unavailable: the MCP server is overloaded', expose: true },
  PORTCULLIS_ERR_CIRCUIT_OPEN: { statusCode: 503, rpcCode: -32603, message: 'Service Unavailable: the MCP server is failing; calls are paused', expose: true },
  PORTCULLIS_ERR_UPSTREAM_TIMEOUT: { statusCode: 504, rpcCode: -32603, message: 'Gateway Timeout: the MCP server did not answer in time', expose: true },
  PORTCULLIS_ERR_UPSTREAM_CLOSED: { statusCode: 502, rpcCode: -32603, message: 'Bad Gateway: the MCP server closed the stream before answering', expose: true },
  PORTCULLIS_ERR_UPSTREAM_EXITED: { statusCode: 502, rpcCode: -32603, message: 'Bad Gateway: the MCP server process exited', expose: true },
  PORTCULLIS_ERR_PEER_FORBIDDEN: { statusCode: 403, rpcCode: -32600, message: 'Forbidden: not a request from a replica of this gateway', expose: true },
  PORTCULLIS_ERR_CLIENT_CLOSED: { statusCode: 499, rpcCode: -32603, message: 'Client closed the request', expose: true },
  PORTCULLIS_ERR_INTERNAL: { statusCode: 500, rpcCode: -32603, message: 'Internal error', expose: false },
} as const satisfies Record<string, GatewayErrorSpec>

export type GatewayErrorCode = keyof typeof gatewayErrors

export class GatewayError extends Error {
  override readonly name = 'GatewayError'
  readonly code: GatewayErrorCode
  readonly statusCode: number
  readonly rpcCode: number
  readonly expose: boolean
  /** what the client is told: the registry message, plus `detail` when the error is exposed */
  readonly publicMessage: string
  /** extra response headers (Allow, Retry-After, WWW-Authenticate) */
  readonly headers: Readonly<Record<string, string>>

  constructor (code: GatewayErrorCode, detail?: string, opts: { cause?: unknown; headers?: Record<string, string> } = {}) {
    const spec: GatewayErrorSpec = gatewayErrors[code]
    super(detail === undefined ? spec.message : `${spec.message}: ${detail}`, { cause: opts.cause })
    this.code = code
    this.statusCode = spec.statusCode
    this.rpcCode = spec.rpcCode
    this.expose = spec.expose
    this.publicMessage = spec.expose ? this.message : spec.message
    this.headers = opts.headers ?? {}
  }
}

export function isGatewayError (err: unknown): err is GatewayError {
  return err instanceof GatewayError
}

/**
 * Why a call to an upstream failed: the `reason` label of portcullis_upstream_errors_total, the
 * upstream's last error on the console and its CLIENT span's `error.type`. Here, beside the
 * answers those failures become, so that telemetry/metrics.ts can take exactly these values
 * (telemetry/ may not import upstream/). Dashboards and alerts depend on them: add, never rename.
 */
export const UPSTREAM_ERROR_REASONS = [
  'refused', 'timeout', 'status_5xx', 'status_401', 'bad_response', 'stream_closed',
  'process_exited', 'start_failed', 'overloaded', 'pool_timeout', 'circuit_open',
] as const
export type UpstreamErrorReason = typeof UPSTREAM_ERROR_REASONS[number]
