import type { FastifyReply, FastifyRequest } from 'fastify'
import { finishRecord, outcomeOf, outcomeOfStatus, type RecordSink } from './records.ts'

/**
 * Stage: watch the exchange to its end. Each response the upstream sends finishes the record of
 * the request it answers (success, tool_error, jsonrpc_error); when the HTTP exchange closes, any
 * request still open is finished from the status (upstream_error, timeout, cancelled …). A raw
 * `close` listener is used because bridged upstreams answer on a hijacked reply, where Fastify's
 * onResponse hooks never run.
 */
export function observeExchange (sink: RecordSink) {
  return function observeExchange (request: FastifyRequest, reply: FastifyReply): void {
    const exchange = request.mcp
    if (exchange === null) return
    exchange.observers.push(function finishOnResponse (message) {
      if (typeof message !== 'object' || message === null || 'method' in message) return undefined
      const id = (message as { id?: unknown }).id
      if (typeof id !== 'string' && typeof id !== 'number') return undefined
      const record = exchange.records.get(id)
      if (record === undefined) return undefined
      const { outcome, errorType } = outcomeOf(message)
      try {
        finishRecord(exchange, record, outcome, sink, errorType, reply.raw.statusCode)
      } catch (err) {
        sink.log.error({ err }, 'could not record the end of a request')
      }
      return undefined
    })
    // `on`, not `once`: a response closes once, and `once` would wrap the listener and then
    // unhook it from the emitter on every request.
    reply.raw.on('close', function finishOpenRecords () {
      const aborted = !reply.raw.writableFinished
      try {
        for (const record of exchange.records.values()) {
          if (record.outcome === undefined) finishRecord(exchange, record, outcomeOfStatus(reply.raw.statusCode, aborted), sink, undefined, reply.raw.statusCode)
        }
      } catch (err) {
        // Telemetry fails soft: a broken metric or log line never takes a request (or the process) down.
        sink.log.error({ err }, 'could not record the end of a request')
      }
      for (const handler of exchange.onClose) {
        try {
          handler()
        } catch (err) {
          sink.log.error({ err }, 'a close handler of the exchange failed')
        }
      }
    })
  }
}
