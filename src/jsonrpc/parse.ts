import { findStrictJsonViolation } from './strict-json.ts'
import { decodeUtf8Strict } from './utf8.ts'
import { JsonRpcErrorCode, type JsonRpcErrorObject, type JsonRpcId, type JsonRpcMessage } from './types.ts'
import { MAX_ID_CHARS, MAX_NAME_CHARS, longerThan } from './bounds.ts'

/**
 * Strict parsing of a client's POST body (protocol.md §5.6 "parser-differential hardening",
 * design.md §5 "Exact answers"). The policy judges what this returns and the gateway forwards
 * `serializeBody()` of it, never the input bytes, so whatever an upstream parser would read
 * differently is refused here:
 *
 * - not UTF-8, a byte order mark, not JSON (RFC 8259) → -32700;
 * - a member name twice in one object, also when equal only after unescaping (`"a"`, `"\u0061"`);
 *   in a message and in its direct members (`params`, `result`, `error`) also names equal
 *   ignoring case, because Go's encoding/json matches struct fields case-insensitively
 *   (ASCII, `ſ`→`s`, `K`→`k`) and keeps the last one: `"name":"a","Name":"b"` → -32600;
 * - a `__proto__` member anywhere → -32600 (refused rather than made safe: no legitimate MCP
 *   message needs it, and code merging objects with `Object.assign` would be polluted by it);
 *   `constructor` / `prototype` are ordinary own data members after JSON.parse and are allowed;
 * - an escaped lone surrogate (`"\ud800"`) → -32600 (upstreams would replace or reject it);
 * - a number that overflows to ±Infinity (`1e400`, re-serialised as `null`) → -32600;
 * - nesting deeper than `maxDepth` (64) → -32600;
 * - a method name over 128 characters or a string id over 256 (bounds.ts) → -32600, without
 *   echoing either: the answer's id is null, so a huge id never comes back;
 * - anything that is not a JSON-RPC 2.0 message as MCP uses it → -32600.
 *
 * Numbers are IEEE-754 doubles, as in every JavaScript MCP SDK: integers beyond 2^53 lose
 * precision and `1.50` is forwarded as `1.5`. Ids must be safe integers so that an answer
 * always carries exactly the id that was asked.
 */

export interface ParseOptions {
  /** Only the 2025-03-26 revision allows an array of messages. */
  readonly allowBatch: boolean
  /** Arrays and objects nested deeper than this are refused. Default 64. */
  readonly maxDepth?: number
  /** Default 100, as the TS SDK. */
  readonly maxBatchLength?: number
}

export interface ParsedBody {
  readonly batch: boolean
  readonly messages: JsonRpcMessage[]
}

export interface BodyError {
  readonly error: 'parse' | 'invalid'
  readonly code: -32700 | -32600
  readonly message: string
}

export function isBodyError (value: ParsedBody | BodyError | JsonRpcMessage): value is BodyError {
  return 'code' in value && (value.error === 'parse' || value.error === 'invalid')
}

export function parseJsonRpcBody (body: Buffer, opts: ParseOptions): ParsedBody | BodyError {
  const text = decodeUtf8Strict(body)
  if (text === undefined) return parseError('the body is not valid UTF-8')
  const violation = findStrictJsonViolation(text, opts.maxDepth ?? 64)
  if (violation !== undefined) return violation.code === -32700 ? parseError(violation.detail) : invalid(violation.detail)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch /* c8 ignore start */ {
    return parseError('the body is not valid JSON') // unreachable: the scanner is stricter
  } /* c8 ignore stop */
  if (!Array.isArray(value)) {
    const message = toMessage(value)
    return typeof message === 'string' ? invalid(message) : { batch: false, messages: [message] }
  }
  if (!opts.allowBatch) return invalid('batch not allowed')
  if (value.length === 0) return invalid('empty batch')
  if (value.length > (opts.maxBatchLength ?? 100)) return invalid('batch too long')
  const messages: JsonRpcMessage[] = []
  for (let k = 0; k < value.length; k++) {
    const message = toMessage(value[k])
    if (typeof message === 'string') return invalid(`batch element ${k}: ${message}`)
    messages.push(message)
  }
  return { batch: true, messages }
}

/** Check one already-parsed value (e.g. an upstream message) against the JSON-RPC rules above. */
export function validateMessage (value: unknown): JsonRpcMessage | BodyError {
  const message = toMessage(value)
  return typeof message === 'string' ? invalid(message) : message
}

/** What is forwarded: the parsed object, serialised again (never the bytes that came in). */
export function serializeMessage (msg: JsonRpcMessage): string {
  return JSON.stringify(msg.raw)
}

/** What a POST forwards: its messages serialised again, as a batch or one message like the client sent them. */
export function serializeBody (parsed: { readonly batch: boolean, readonly messages: readonly JsonRpcMessage[] }): string {
  return JSON.stringify(parsed.batch ? parsed.messages.map(m => m.raw) : parsed.messages[0]?.raw)
}

function parseError (detail: string): BodyError {
  return { error: 'parse', code: JsonRpcErrorCode.ParseError, message: `Parse error: ${detail}` }
}

function invalid (detail: string): BodyError {
  return { error: 'invalid', code: JsonRpcErrorCode.InvalidRequest, message: `Invalid Request: ${detail}` }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isId (v: unknown): v is JsonRpcId {
  return typeof v === 'string' || Number.isSafeInteger(v)
}

const ID_TOO_LONG = `id longer than ${MAX_ID_CHARS} characters`

/**
 * The message, or why it is not one. Members are read by plain property access: none of the
 * names read here exists on Object.prototype, and `undefined` cannot come out of JSON, so
 * `!== undefined` means "present".
 */
function toMessage (v: unknown): JsonRpcMessage | string {
  if (!isObject(v)) return 'a message must be a JSON object'
  if (v.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"'
  const { id, method, params, result, error } = v
  if (method !== undefined) {
    if (typeof method !== 'string' || method === '') return 'method must be a non-empty string'
    if (longerThan(method, MAX_NAME_CHARS)) return `method name longer than ${MAX_NAME_CHARS} characters`
    if (result !== undefined || error !== undefined) return 'a request cannot carry result or error'
    if (params !== undefined && !isObject(params)) return 'params must be an object'
    if (id === undefined) return { kind: 'notification', method, params, raw: v }
    if (!isId(id)) return 'id must be a string or an integer'
    if (typeof id === 'string' && longerThan(id, MAX_ID_CHARS)) return ID_TOO_LONG
    return { kind: 'request', id, method, params, raw: v }
  }
  if (id === undefined) return 'a message needs a method or an id'
  if (typeof id === 'string' && longerThan(id, MAX_ID_CHARS)) return ID_TOO_LONG
  if ((result === undefined) === (error === undefined)) return 'a response carries exactly one of result and error'
  if (result !== undefined) {
    if (!isId(id)) return 'id must be a string or an integer'
    if (!isObject(result)) return 'result must be an object'
    return { kind: 'result', id, result, raw: v }
  }
  if (id !== null && !isId(id)) return 'id must be a string, an integer or null'
  if (!isObject(error)) return 'error must be an object'
  if (!Number.isSafeInteger(error.code)) return 'error.code must be an integer'
  if (typeof error.message !== 'string') return 'error.message must be a string'
  return { kind: 'error', id, error: error as unknown as JsonRpcErrorObject, raw: v }
}
