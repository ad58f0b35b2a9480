import { request, type Dispatcher } from 'undici'
import { eventsOf, readEventStream } from './sse-reader.ts'

export const POST_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

export interface RawSession {
  readonly sessionId: string
  readonly protocolVersion: string
}

/** initialize + notifications/initialized with plain HTTP, as a client would on the wire. */
export async function rawInitialize (url: string, headers: Record<string, string> = {}): Promise<RawSession> {
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  })
  const sessionId = res.headers['mcp-session-id']
  const messages = await readMessages(res)
  if (typeof sessionId !== 'string') throw new Error(`no session id (HTTP ${res.statusCode})`)
  const result = messages.find((m) => m.id === 0)?.result as { protocolVersion?: string } | undefined
  const protocolVersion = result?.protocolVersion ?? '2025-11-25'
  const ack = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  })
  await ack.body.dump()
  return { sessionId, protocolVersion }
}

export interface RpcMessage { id?: unknown, method?: string, result?: unknown, error?: { code: number, message: string }, params?: unknown }

/** All JSON-RPC messages of a JSON or SSE response body. */
export async function readMessages (res: Dispatcher.ResponseData): Promise<RpcMessage[]> {
  const type = String(res.headers['content-type'] ?? '')
  const text = await res.body.text()
  if (type.startsWith('application/json')) {
    const parsed = JSON.parse(text) as RpcMessage | RpcMessage[]
    return Array.isArray(parsed) ? parsed : [parsed]
  }
  if (!type.startsWith('text/event-stream')) return []
  return readEventStream(text)
    .filter((e) => e.data !== '')
    .map((e) => JSON.parse(e.data) as RpcMessage)
}

/**
 * Read SSE events one by one as they arrive (sse-reader.ts, as EventSource would): `id` is the
 * last event ID at each event (undefined while none was set), `message` its data parsed
 * (undefined for empty data, e.g. a priming event `id: 7\ndata:\n\n`).
 */
export async function * sseEvents (res: Dispatcher.ResponseData): AsyncGenerator<{ id: string | undefined, message: RpcMessage | undefined }> {
  for await (const event of eventsOf(res.body as AsyncIterable<Buffer>)) {
    yield { id: event.lastEventId === '' ? undefined : event.lastEventId, message: event.data === '' ? undefined : JSON.parse(event.data) as RpcMessage }
  }
}
