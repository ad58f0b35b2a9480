import { connect } from 'node:net'
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'
import { readEventStream } from './sse-reader.ts'

/**
 * Raw HTTP for MCP tests: what a client sends byte for byte and what comes back, without an
 * SDK in between that would refuse to send hostile bytes or hide a status code.
 */

export const ACCEPT_BOTH = 'application/json, text/event-stream'
export const POST_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'application/json', accept: ACCEPT_BOTH }

export interface HttpResult {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  /** from sending the request to the end of the response body */
  readonly ms: number
  /** the JSON-RPC messages in the body: the JSON value (each element of an array), or each SSE event's data */
  readonly messages: unknown[]
}

export interface SendOptions {
  readonly method?: 'POST' | 'GET' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS'
  /** a flat [name, value, name, value, …] list sends repeated headers */
  readonly headers?: Record<string, string> | string[]
  readonly body?: string | Buffer
  /** the request is aborted after this long (so a hang fails the test instead of stalling it) */
  readonly timeoutMs?: number
}

/** One request with undici; the whole body is read. */
export async function send (url: string, opts: SendOptions = {}): Promise<HttpResult> {
  const started = performance.now()
  const res = await request(url, {
    method: opts.method ?? 'POST',
    headers: opts.headers ?? POST_HEADERS,
    body: opts.body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  })
  const text = await res.body.text()
  const ms = performance.now() - started
  const contentType = String(res.headers['content-type'] ?? '')
  return { status: res.statusCode, headers: res.headers, text, ms, messages: messagesOf(contentType, text) }
}

export function messagesOf (contentType: string, text: string): unknown[] {
  if (contentType.startsWith('text/event-stream')) return sseMessages(text)
  try {
    const value: unknown = JSON.parse(text)
    return Array.isArray(value) ? value : [value]
  } catch {
    return []
  }
}

/** The data of each SSE event (sse-reader.ts), parsed; events with empty data are skipped. */
export function sseMessages (text: string): unknown[] {
  const out: unknown[] = []
  for (const { data } of readEventStream(text)) {
    if (data === '') continue
    try { out.push(JSON.parse(data)) } catch { out.push({ unparsable: data }) }
  }
  return out
}

export interface RpcErrorMessage {
  readonly jsonrpc: string
  readonly id: string | number | null
  readonly error: { readonly code: number; readonly message: string; readonly data?: unknown }
}

/** The first JSON-RPC error message in a result, if any. */
export function rpcError (result: HttpResult): RpcErrorMessage | undefined {
  return result.messages.find((m): m is RpcErrorMessage =>
    typeof m === 'object' && m !== null && 'error' in m && typeof (m as { error?: unknown }).error === 'object') as RpcErrorMessage | undefined
}

export function initialize (id: string | number, protocolVersion = '2025-03-26'): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'portcullis-test', version: '1.0.0' } },
  })
}

export function toolsCall (id: string | number, name: string, args: Record<string, unknown> = {}, progressToken?: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, ...(progressToken === undefined ? {} : { _meta: { progressToken } }) },
  })
}

/** Does this text carry a stack frame, a file path or a Node internal? */
export const LEAK = /\bat [\w.<>#]+ \(|\(?file:\/\/|node:internal|\/work\/|\/srv\/|\/home\/|\/usr\/|\.[cm]?[jt]s:\d+|GatewayError|\bcaused by\b|ECONN|EPIPE|ENOENT|UND_ERR/

export interface RawResponse {
  readonly status: number
  /** lower-cased names; repeated headers as arrays */
  readonly headers: Record<string, string | string[]>
  readonly body: string
}

/**
 * Send bytes exactly as given over a fresh TCP connection (which the request must ask to
 * close: `Connection: close`), and read the response until the server closes it. For what
 * undici refuses to send: Connection-listed headers, TE, Keep-Alive, Upgrade, Transfer-Encoding.
 */
export async function rawHttp (url: string, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  const chunks: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`rawHttp: no end after ${timeoutMs} ms`)) }, timeoutMs)
    socket.on('connect', () => socket.write(bytes))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', (err) => { clearTimeout(timer); reject(err) })
    socket.on('close', () => { clearTimeout(timer); resolve() })
  })
  const all = Buffer.concat(chunks)
  const split = all.indexOf('\r\n\r\n')
  if (split === -1) throw new Error(`rawHttp: no response head in ${JSON.stringify(all.toString('latin1').slice(0, 200))}`)
  const [statusLine = '', ...lines] = all.subarray(0, split).toString('latin1').split('\r\n')
  const headers: Record<string, string | string[]> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const prior = headers[name]
    headers[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value]
  }
  let body: Buffer = all.subarray(split + 4)
  if (String(headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) body = dechunk(body)
  return { status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') }
}

function dechunk (buf: Buffer): Buffer {
  const out: Buffer[] = []
  let i = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', i)
    if (eol === -1) break
    const size = parseInt(buf.subarray(i, eol).toString('latin1'), 16)
    if (!Number.isFinite(size) || size === 0) break
    out.push(buf.subarray(eol + 2, eol + 2 + size))
    i = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}

/** A raw HTTP/1.1 request head + body, with Content-Length computed unless `headers` already frames it. */
export function rawRequest (method: string, url: string, headers: readonly (readonly [string, string])[], body: string | Buffer = ''): Buffer {
  const { host, pathname, search } = new URL(url)
  const bodyBuf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
  const framed = headers.some(([name]) => /^(content-length|transfer-encoding)$/i.test(name))
  const lines = [`${method} ${pathname}${search} HTTP/1.1`, `Host: ${host}`, ...headers.map(([n, v]) => `${n}: ${v}`)]
  if (!framed && (bodyBuf.length > 0 || method === 'POST')) lines.push(`Content-Length: ${bodyBuf.length}`)
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), bodyBuf])
}

/**
 * Drop the test process's own pooled keep-alive connections (undici's global dispatcher, which
 * `send` and the SDK clients' fetch use), so that closing a gateway does not wait for them.
 * Call it last, in teardown: the global dispatcher is replaced by a fresh one.
 */
export async function dropClientConnections (): Promise<void> {
  const old = getGlobalDispatcher()
  setGlobalDispatcher(new Agent())
  await old.destroy()
}
