import type { FastifyReply, FastifyRequest } from 'fastify'
import { SpanKind, incomingContext, tracer, tracingActive } from './tracing.ts'
import type { ToolNames } from './tool-names.ts'

/**
 * Stage: one SERVER span per client JSON-RPC request, named `{mcp.method.name} {target}` (MCP
 * semantic conventions), continuing the W3C context of the message's `_meta` or the HTTP headers.
 * A tool name outside the bounded set gets no target in the name. Ended by finishRecord.
 * The method is given at creation (a sampler may look at it); the rest only to a sampled span;
 * `mcp.session.id`, a pseudonym of the session, when the span ends (records.ts).
 */
export function startSpans (toolNames: ToolNames) {
  return function startSpans (request: FastifyRequest, reply: FastifyReply): void {
    const exchange = request.mcp
    if (exchange === null || !tracingActive()) return
    for (const message of exchange.messages) {
      if (message.kind === 'notification') {
        // Per client message a SERVER span: a notification's ends with its HTTP exchange.
        const span = tracer().startSpan(message.method, {
          kind: SpanKind.SERVER,
          attributes: { 'mcp.method.name': message.method, 'mcp.protocol.version': exchange.protocolVersion, 'portcullis.server': exchange.server.name },
        }, incomingContext(request.headers, message.params))
        exchange.notificationSpans.push(span)
        reply.raw.once('close', () => span.end())
        continue
      }
      if (message.kind !== 'request') continue
      const record = exchange.records.get(message.id)
      if (record === undefined) continue
      const isToolCall = record.method === 'tools/call'
      const boundedTarget = isToolCall
        ? (toolNames.label(exchange.policy, record.target) === '_unknown' ? undefined : record.target)
        : record.method === 'prompts/get' ? record.target : undefined
      record.spanName = boundedTarget === undefined ? record.method : `${record.method} ${boundedTarget}`
      const span = tracer().startSpan(record.spanName, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': record.method } },
        incomingContext(request.headers, message.params))
      record.span = span
      // An unsampled span records nothing: its attributes would be built and validated for nothing.
      if (!span.isRecording()) continue
      span.setAttributes({
        'jsonrpc.request.id': String(record.id),
        'mcp.protocol.version': exchange.protocolVersion,
        'portcullis.server': exchange.server.name,
        ...(isToolCall && record.target !== undefined ? { 'gen_ai.tool.name': record.target, 'gen_ai.operation.name': 'execute_tool' } : {}),
        ...(record.method === 'prompts/get' && record.target !== undefined ? { 'gen_ai.prompt.name': record.target } : {}),
        ...(exchange.principal?.clientId === undefined ? {} : { 'portcullis.auth.client_id': exchange.principal.clientId }),
      })
    }
  }
}
