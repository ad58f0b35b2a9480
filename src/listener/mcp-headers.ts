import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import { decodeMcpHeaderValue, expectedMcpNameHeader } from '../jsonrpc/classify.ts'
import { MODERN_PROTOCOL_VERSION } from '../mcp/exchange.ts'

/**
 * Stage (2026-07-28 "Server Validation"): the Mcp-Method / Mcp-Name headers and the
 * MCP-Protocol-Version header mirror the body; "Intermediaries MUST return an HTTP error (e.g.
 * 400) on validation failure". Decisions are always taken from the body — this check makes
 * sure nothing routing on the headers can be told something else.
 */
export function checkMcpHeaders (request: FastifyRequest, _reply: FastifyReply): void {
  const exchange = request.mcp
  if (exchange === null || request.method !== 'POST') return
  const headerVersion = request.headers['mcp-protocol-version']
  for (const op of exchange.operations) {
    const bodyVersion = op.protocolVersion
    if (bodyVersion === MODERN_PROTOCOL_VERSION || headerVersion === MODERN_PROTOCOL_VERSION) {
      if (op.kind === 'request' && bodyVersion !== headerVersion) {
        throw new GatewayError('PORTCULLIS_ERR_HEADER_MISMATCH', 'MCP-Protocol-Version header does not match the body')
      }
      exchange.protocolVersion = MODERN_PROTOCOL_VERSION
    }
  }
  if (exchange.protocolVersion !== MODERN_PROTOCOL_VERSION) return
  const [op] = exchange.operations
  if (op === undefined || exchange.operations.length !== 1) return
  const method = request.headers['mcp-method']
  if (op.kind === 'request' && method === undefined) {
    throw new GatewayError('PORTCULLIS_ERR_HEADER_MISMATCH', 'Mcp-Method header is required')
  }
  if (method !== undefined && decodeMcpHeaderValue(method) !== op.method) {
    throw new GatewayError('PORTCULLIS_ERR_HEADER_MISMATCH', 'Mcp-Method header does not match the body')
  }
  const expectedName = expectedMcpNameHeader(op)
  const name = request.headers['mcp-name']
  if (expectedName === undefined) {
    if (name !== undefined) throw new GatewayError('PORTCULLIS_ERR_HEADER_MISMATCH', 'Mcp-Name header is not expected for this method')
    return
  }
  if (name === undefined || decodeMcpHeaderValue(name) !== expectedName) {
    throw new GatewayError('PORTCULLIS_ERR_HEADER_MISMATCH', 'Mcp-Name header does not match the body')
  }
}
