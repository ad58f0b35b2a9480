import type { JsonRpcId, JsonRpcMessage } from './types.ts'
import { decodeUtf8Strict } from './utf8.ts'
import { MAX_ID_CHARS, MAX_NAME_CHARS, MAX_URI_CHARS, longerThan } from './bounds.ts'

/**
 * What one JSON-RPC message asks for, in the terms the policy and telemetry use.
 * Names are exact strings as the body carries them: no case folding, no Unicode
 * normalisation, no trimming (tool names "SHOULD be considered case-sensitive").
 */
export interface McpOperation {
  readonly kind: JsonRpcMessage['kind']
  /** undefined for responses */
  readonly method: string | undefined
  /** undefined for notifications and for error responses with a null id */
  readonly id: JsonRpcId | undefined
  /**
   * `params.name` of tools/call and prompts/get; `params.uri` of resources/read, subscribe,
   * unsubscribe; `params.ref.name` or `params.ref.uri` of completion/complete (see `ref`)
   */
  readonly target: string | undefined
  /** completion/complete: what its target names, a prompt or a resource (URI or URI template) */
  readonly ref: 'prompt' | 'resource' | undefined
  /** `params._meta.progressToken` */
  readonly progressToken: string | number | undefined
  /** `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28) */
  readonly protocolVersion: string | undefined
  /**
   * Set when a message whose method needs a target lacks it (or it is not a string): the
   * request is malformed and must be answered with InvalidParams (-32602), never forwarded.
   */
  readonly invalid: string | undefined
}

/** Methods whose target the policy judges, and the `params` member that carries it. */
const TARGET_MEMBER: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'resources/subscribe': 'uri',
  'resources/unsubscribe': 'uri'
}

/** What each target is called in an error, and its bound (bounds.ts). */
const TARGET_BOUND: Readonly<Record<'name' | 'uri', number>> = { name: MAX_NAME_CHARS, uri: MAX_URI_CHARS }
const TARGET_NOUN: Readonly<Record<string, string>> = {
  'tools/call': 'tool name',
  'prompts/get': 'prompt name',
}

/** The methods whose 2026-07-28 requests carry an `Mcp-Name` header. */
const MCP_NAME_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read'])

const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion'

/**
 * Classify a validated message. Notifications are classified like requests: a `tools/call`
 * sent without an id is judged (and refused when malformed) all the same.
 */
export function classify (msg: JsonRpcMessage): McpOperation {
  if (msg.kind === 'result' || msg.kind === 'error') {
    return {
      kind: msg.kind,
      method: undefined,
      id: msg.id ?? undefined,
      target: undefined,
      ref: undefined,
      progressToken: undefined,
      protocolVersion: undefined,
      invalid: undefined
    }
  }
  const params = msg.params
  const meta = params === undefined ? undefined : ownMember(params, '_meta')
  let progressToken: string | number | undefined
  let protocolVersion: string | undefined
  let invalid: string | undefined
  if (isObject(meta)) {
    const token = ownMember(meta, 'progressToken')
    if (typeof token === 'string' || typeof token === 'number') progressToken = token
    if (typeof token === 'string' && longerThan(token, MAX_ID_CHARS)) invalid = `progress token longer than ${MAX_ID_CHARS} characters`
    const version = ownMember(meta, PROTOCOL_VERSION_META)
    if (typeof version === 'string') protocolVersion = version
  }
  let target: string | undefined
  let ref: 'prompt' | 'resource' | undefined
  const member = ownMember(TARGET_MEMBER, msg.method)
  if (member !== undefined) {
    const value = params === undefined ? undefined : ownMember(params, member)
    if (typeof value === 'string') target = value
    else invalid = `${msg.method} requires params.${member} to be a string`
  } else if (msg.method === 'completion/complete') {
    const found = completionRef(params)
    if (found === undefined) invalid = 'completion/complete requires params.ref: a ref/prompt with a string name or a ref/resource with a string uri'
    else ({ target, ref } = found)
  }
  const bound = target === undefined ? undefined : targetBound(msg.method, target, ref)
  if (bound !== undefined) {
    target = undefined
    invalid = bound
  }
  return {
    kind: msg.kind,
    method: msg.method,
    id: msg.kind === 'request' ? msg.id : undefined,
    target,
    ref,
    progressToken,
    protocolVersion,
    invalid
  }
}

/** completion/complete's `params.ref`: a prompt by name or a resource by URI (template). */
function completionRef (params: Record<string, unknown> | undefined): { target: string; ref: 'prompt' | 'resource' } | undefined {
  const ref = params === undefined ? undefined : ownMember(params, 'ref')
  if (!isObject(ref)) return undefined
  const type = ownMember(ref, 'type')
  const key = type === 'ref/prompt' ? 'name' : type === 'ref/resource' ? 'uri' : undefined
  const value = key === undefined ? undefined : ownMember(ref, key)
  if (typeof value !== 'string') return undefined
  return { target: value, ref: type === 'ref/prompt' ? 'prompt' : 'resource' }
}

/** Why a target is out of bounds (never quoting it), or undefined. */
function targetBound (method: string, target: string, ref: 'prompt' | 'resource' | undefined): string | undefined {
  const kind = ref === 'prompt' || ownMember(TARGET_MEMBER, method) === 'name' ? 'name' : 'uri'
  const noun = kind === 'uri' ? 'resource URI' : ref === 'prompt' ? 'prompt name' : TARGET_NOUN[method] ?? 'name'
  if (kind === 'name' && target === '') return `${noun} is empty`
  const max = TARGET_BOUND[kind]
  return longerThan(target, max) ? `${noun} longer than ${max} characters` : undefined
}

/**
 * The value the 2026-07-28 `Mcp-Name` header must carry for this operation (before any
 * Base64 sentinel encoding), or undefined when the method has no `Mcp-Name` header.
 */
export function expectedMcpNameHeader (op: McpOperation): string | undefined {
  if (op.method === undefined || !MCP_NAME_METHODS.has(op.method)) return undefined
  return op.target
}

const SENTINEL_PREFIX = '=?base64?'
const SENTINEL_SUFFIX = '?='
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Decode an `Mcp-Name` / `Mcp-Method` / `Mcp-Param-*` header value (2026-07-28 "Value
 * Encoding"): a value wearing both markers, `=?base64?{standard Base64 of UTF-8}?=`, is
 * decoded — strictly: canonical padded Base64 of valid UTF-8, else undefined; any other
 * value is returned as is (the markers are lowercase and case-sensitive, and a value with
 * only one of them is literal). A repeated header (an array) is undefined.
 */
export function decodeMcpHeaderValue (value: string | readonly string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined
  if (value.length < SENTINEL_PREFIX.length + SENTINEL_SUFFIX.length ||
      !value.startsWith(SENTINEL_PREFIX) || !value.endsWith(SENTINEL_SUFFIX)) return value
  const payload = value.slice(SENTINEL_PREFIX.length, -SENTINEL_SUFFIX.length)
  if (!BASE64.test(payload)) return undefined
  const bytes = Buffer.from(payload, 'base64')
  // non-zero bits in the last, partial group would decode too: refuse non-canonical forms
  if (bytes.toString('base64') !== payload) return undefined
  return decodeUtf8Strict(bytes)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A member of the object itself, never one inherited from Object.prototype (`toString`, …). */
function ownMember<T> (obj: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}
