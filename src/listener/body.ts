import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import { parseJsonRpcBody } from '../jsonrpc/parse.ts'
import { classify } from '../jsonrpc/classify.ts'
import { DEFAULT_PROTOCOL_VERSION, KNOWN_PROTOCOL_VERSIONS } from '../mcp/exchange.ts'

const KNOWN_VERSIONS = new Set<string>(KNOWN_PROTOCOL_VERSIONS)

/**
 * MCP bodies arrive as bytes, bounded by limits.maxBodyBytes (Fastify answers 413 past it and
 * 415 for any content type but application/json); `parseMcpBody` turns them into messages.
 */
export function registerMcpBodyParser (app: FastifyInstance, maxBodyBytes: number): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: maxBodyBytes },
    function keepRawBody (_request, body, done) { done(null, body) })
}

/**
 * Stage: what is being asked. The body is parsed strictly (jsonrpc/parse.ts) — every element
 * of a batch, and batches only where the revision allows them (2025-03-26) — and each
 * message classified. From here on the gateway judges and forwards these parsed messages,
 * never the bytes it received.
 */
export function parseMcpBody (request: FastifyRequest, _reply: FastifyReply): void {
  const exchange = request.mcp
  if (exchange === null) throw new GatewayError('PORTCULLIS_ERR_INTERNAL', 'parseMcpBody before resolveServer')
  if (request.method !== 'POST') return
  const body = request.body
  if (!Buffer.isBuffer(body)) throw new GatewayError('PORTCULLIS_ERR_UNSUPPORTED_MEDIA_TYPE')
  const parsed = parseJsonRpcBody(body, { allowBatch: exchange.protocolVersion === DEFAULT_PROTOCOL_VERSION })
  if ('error' in parsed) {
    throw new GatewayError(parsed.code === -32700 ? 'PORTCULLIS_ERR_PARSE' : 'PORTCULLIS_ERR_INVALID_REQUEST', parsed.message)
  }
  const operations = parsed.messages.map(classify)
  // Set before any further check throws, so the error answer carries the request's id.
  exchange.messages = parsed.messages
  for (const op of operations) {
    if (op.invalid !== undefined) throw new GatewayError('PORTCULLIS_ERR_INVALID_PARAMS', op.invalid)
  }
  // Responses are paired with their request by id: two requests with one id would let a
  // response be judged (and a list filtered) as the answer to the other.
  const ids = new Set<string | number>()
  for (const message of parsed.messages) {
    if (message.kind !== 'request') continue
    if (ids.has(message.id)) throw new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', 'request ids in a batch must be unique')
    ids.add(message.id)
  }
  // "The initialize request MUST NOT be part of a JSON-RPC batch" (2025-03-26 lifecycle).
  if (parsed.batch && operations.some((op) => op.method === 'initialize')) {
    throw new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', 'initialize must not be part of a batch')
  }
  exchange.operations = operations
  // initialize carries its revision in the body, not yet in the MCP-Protocol-Version header.
  const init = parsed.messages.find((m) => m.kind === 'request' && m.method === 'initialize')
  const requested = init?.kind === 'request' ? init.params?.protocolVersion : undefined
  if (typeof requested === 'string' && KNOWN_VERSIONS.has(requested)) exchange.protocolVersion = requested
  exchange.batch = parsed.batch
  for (const [i, message] of parsed.messages.entries()) {
    if (message.kind !== 'request') continue
    exchange.pending.set(message.id, message.method)
    exchange.records.set(message.id, {
      id: message.id,
      method: message.method,
      target: operations[i]?.target,
      ref: operations[i]?.ref,
      decision: undefined,
      shadowDenied: false,
      outcome: undefined,
      errorType: undefined,
      span: undefined,
    })
  }
}
