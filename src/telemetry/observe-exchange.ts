import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CloseStage, McpExchange, UpstreamMessageStage } from '../mcp/exchange.ts'
import { finishRecord, outcomeOf, outcomeOfStatus, type RecordSink } from './records.ts'

/**
 * Stage (request half): when the client's HTTP exchange closes, run the pipeline's close stages.
 * A raw `close` listener, because bridged upstreams answer on a hijacked reply, where Fastify's
 * onResponse hooks never run.
 */
export function watchClose (request: FastifyRequest, reply: FastifyReply): void {
  const exchange = request.mcp
  if (exchange === null || exchange.response.onClose.length === 0) return
  // `on`, not `once`: a response closes once, and `once` would wrap the listener and then
  // unhook it from the emitter on every request.
  reply.raw.on('close', function exchangeClosed () {
    for (const stage of exchange.response.onClose) stage(exchange)
  })
}

/**
 * Response stage: each response the upstream sends finishes the record of the request it
 * answers (success, tool_error, jsonrpc_error).
 */
export function finishAnswered (sink: RecordSink): UpstreamMessageStage {
  return function finishAnswered (exchange, message) {
    if (typeof message !== 'object' || message === null || 'method' in message) return undefined
    const id = (message as { id?: unknown }).id
    if (typeof id !== 'string' && typeof id !== 'number') return undefined
    const record = exchange.records.get(id)
    if (record === undefined) return undefined
    const { outcome, errorType } = outcomeOf(message)
    try {
      finishRecord(exchange, record, outcome, sink, errorType, exchange.res.statusCode)
    } catch (err) {
      sink.log.error({ err }, 'could not record the end of a request')
    }
    return undefined
  }
}

/**
 * Close stage: any request of the exchange still open when it closes is finished from the
 * status (upstream_error, timeout, cancelled …).
 */
export function finishUnanswered (sink: RecordSink): CloseStage {
  return function finishUnanswered (exchange: McpExchange) {
    const aborted = !exchange.res.writableFinished
    try {
      for (const record of exchange.records.values()) {
        if (record.outcome === undefined) finishRecord(exchange, record, outcomeOfStatus(exchange.res.statusCode, aborted), sink, undefined, exchange.res.statusCode)
      }
    } catch (err) {
      // Telemetry fails soft: a broken metric or log line never takes a request (or the process) down.
      sink.log.error({ err }, 'could not record the end of a request')
    }
  }
}

/**
 * Close stage: stop what the exchange started upstream (2026-07-28: closing the stream is
 * cancellation) — each upstream call registers how in `exchange.cancels`.
 */
export function cancelUpstream (sink: Pick<RecordSink, 'log'>): CloseStage {
  return function cancelUpstream (exchange) {
    for (const cancel of exchange.cancels) {
      try {
        cancel()
      } catch (err) {
        sink.log.error({ err }, 'cancelling an upstream request failed')
      }
    }
  }
}
