/**
 * Micro-benchmark of the audit line of a tool call: pino's own serializer vs the audit logger's
 * (src/telemetry/audit-logger.ts), each through the gateway's logger options, once into a discarding
 * stream (serializing alone) and once into the gateway's buffered log destination on /dev/null (as stdout).
 * Run: node_modules/.bin/node test/bench/micro/audit.bench.ts   (prints ops/s; asserts nothing)
 */
import { openSync } from 'node:fs'
import pino, { type DestinationStream, type LoggerOptions } from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { loggerOptions } from '../../../src/gateway.ts'
import { auditLogger } from '../../../src/telemetry/audit-logger.ts'
import { LogDestination } from '../../../src/telemetry/log-destination.ts'
import { bench } from './loop.ts'

/** The fields records.ts writes for an authorized tool call of an EMA-authenticated user. */
const line = {
  trace_id: '0af7651916cd43dd8448eb211c80319c',
  span_id: 'b7ad6b7169203331',
  'event.name': 'mcp.tool_call',
  'mcp.method.name': 'tools/call',
  'gen_ai.tool.name': 'search_issues',
  'jsonrpc.request.id': '42',
  'enduser.pseudo.id': 'u_9c1d2e3f4a5b6c7d',
  'portcullis.server': 'tickets',
  'mcp.protocol.version': '2025-11-25',
  'mcp.session.id': 'c0ffee00-1234-4abc-8def-0123456789ab',
  'portcullis.auth.client_id': 'https://agent.example/client.json',
  'portcullis.auth.issuer': 'https://login.example.org',
  'portcullis.auth.assertion_jti': 'a1b2c3d4-e5f6-4789-abcd-ef0123456789',
  'portcullis.policy.decision': 'allow',
  'portcullis.policy.reason': 'allowed_by_rule',
  'portcullis.policy.rule_id': 'readers',
  outcome: 'success',
  'http.response.status_code': 200,
  duration_s: 0.00123456789,
}

function logger (stream: DestinationStream): FastifyBaseLogger {
  const { stream: _ignored, ...options } = loggerOptions('info') as LoggerOptions & { stream?: unknown }
  return pino(options, stream) as unknown as FastifyBaseLogger
}
const discard: DestinationStream = { write () {} }
/** As loggerOptions' stdout destination (src/telemetry/log-destination.ts), on /dev/null. */
const devNull = (): DestinationStream => new LogDestination({ fd: openSync('/dev/null', 'w'), minLength: 4096, periodicFlush: 0 })

console.log(`audit line of a tool call: ${Object.keys(line).length} fields`)
const serialized = [
  bench('pino serializer, discarded', ((l) => () => { l.info(line, 'tool call') })(logger(discard).child({ 'log.type': 'audit' }))),
  bench('audit serializer, discarded', ((l) => () => { l.info(line, 'tool call') })(auditLogger(logger(discard)))),
]
const written = [
  bench('pino serializer, /dev/null destination', ((l) => () => { l.info(line, 'tool call') })(logger(devNull()).child({ 'log.type': 'audit' }))),
  bench('audit serializer, /dev/null destination', ((l) => () => { l.info(line, 'tool call') })(auditLogger(logger(devNull())))),
]
console.log(`audit serializer / pino: ${(serialized[1]! / serialized[0]!).toFixed(2)}× the time discarded, ${(written[1]! / written[0]!).toFixed(2)}× written`)
