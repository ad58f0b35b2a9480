import { request, type Dispatcher } from 'undici'

export interface FetchLimits {
  /** bound on the whole exchange, connect to last byte */
  readonly timeoutMs: number
  /** largest body read; a larger one fails */
  readonly maxBytes: number
  /** e.g. an Agent that connects only to an address already checked */
  readonly dispatcher?: Dispatcher
}

export interface JsonResponse {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: unknown
}

export class FetchFailed extends Error {
  override readonly name = 'FetchFailed'
}

/**
 * One HTTP exchange whose answer is JSON: bounded in time and size, and — undici's `request`
 * follows none — without redirects (a 3xx is returned like any other status). Any failure is a
 * FetchFailed whose message names no URL query, header or body.
 */
export async function fetchJson (url: string, init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string }, limits: FetchLimits): Promise<JsonResponse> {
  const signal = AbortSignal.timeout(limits.timeoutMs)
  let res: Dispatcher.ResponseData
  try {
    res = await request(url, {
      method: init.method ?? 'GET',
      headers: { accept: 'application/json', ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
      signal,
      ...(limits.dispatcher === undefined ? {} : { dispatcher: limits.dispatcher }),
    })
  } catch (err) {
    throw new FetchFailed(`request failed (${errorCode(err)})`, { cause: err })
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > limits.maxBytes) {
        res.body.destroy()
        throw new FetchFailed('response too large')
      }
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    if (err instanceof FetchFailed) throw err
    throw new FetchFailed(`response failed (${errorCode(err)})`, { cause: err })
  }
  const header = res.headers['content-type']
  const contentType = typeof header === 'string' ? header : undefined
  let body: unknown
  try {
    body = size === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new FetchFailed(`HTTP ${res.statusCode} with a body that is not JSON`)
  }
  return { status: res.statusCode, contentType, body }
}

function errorCode (err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code
  return err instanceof Error ? err.name : 'error'
}

export function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
