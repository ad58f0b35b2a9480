import type { JsonRpcId } from './types.ts'

/** A JSON-RPC error object, as sent to clients (`id` null when the request's id is unknown). */
export function jsonRpcError (id: JsonRpcId | null, code: number, message: string): { jsonrpc: '2.0'; id: JsonRpcId | null; error: { code: number; message: string } } {
  return { jsonrpc: '2.0', id, error: { code, message } }
}
