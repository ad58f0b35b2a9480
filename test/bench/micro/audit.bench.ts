/**
 * Micro-benchmark of the audit line of a tool call, three ways: pino's own serializer; the audit
 * logger (src/telemetry/audit-logger.ts); and, for comparison, the record written with one
 * `JSON.stringify` straight into the destination, pino not involved past its level check. Each
 * through the gateway's logger options, once into a discarding stream (serializing alone) and once
 * into a destination on /dev/null (as stdout): pino.destination in its default string mode, and
 * the gateway's log destination (src/telemetry/log-destination.ts, bytes to sonic-boom).
 * Run: node_modules/.bin/node test/bench/micro/audit.bench.ts [reverse] [rounds=N]   (prints µs/op; asserts nothing)
 * Each case runs in a process of its own, N rounds in alternating order (isolated.ts).
 */
import { openSync } from 'node:fs'
import { hostname } from 'node:os'
import pino, { type DestinationStream, type LoggerOptions } from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { loggerOptions } from '../../../src/gateway.ts'
import { auditLogger } from '../../../src/telemetry/audit-logger.ts'
import { LogDestination } from '../../../src/telemetry/log-destination.ts'
import { isolated } from './isolated.ts'

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

/** The least a line written without pino's serializer needs: its level, time, bindings, record and message. */
function direct (stream: DestinationStream): (record: Record<string, string | number>, msg: string) => void {
  const audit = pino(discard).child({ 'log.type': 'audit' })
  const bindings = JSON.stringify({ pid: process.pid, hostname: hostname(), 'log.type': 'audit' }).slice(1, -1)
  return (record, msg) => {
    if (!audit.isLevelEnabled('info')) return
    for (const key in record) {
      const value = record[key]
      if (typeof value !== 'string' && typeof value !== 'number') throw new Error('not flat')
    }
    const fields = JSON.stringify(record)
    stream.write('{"level":30,"time":' + Date.now() + ',' + bindings + (fields.length > 2 ? ',' + fields.slice(1, -1) : '') + ',"msg":' + JSON.stringify(msg) + '}\n')
  }
}

const discard: DestinationStream = { write () {} }
const devNull = (): number => openSync('/dev/null', 'w')
/** pino.destination as pino makes it by default (strings), buffered as the gateway's. */
const stringMode = (): DestinationStream => pino.destination({ dest: devNull(), sync: true, minLength: 4096, periodicFlush: 0 })
/** As loggerOptions' stdout destination. */
const bufferMode = (): DestinationStream => new LogDestination({ fd: devNull(), minLength: 4096, periodicFlush: 0 })

const cases: Array<[string, () => () => void]> = [
  ['pino serializer, discarded', () => ((l) => () => { l.info(line, 'tool call') })(logger(discard).child({ 'log.type': 'audit' }))],
  ['audit logger, discarded', () => ((l) => () => { l.info(line, 'tool call') })(auditLogger(logger(discard)))],
  ['one JSON.stringify, discarded', () => ((w) => () => { w(line, 'tool call') })(direct(discard))],
  ['pino serializer, string-mode destination', () => ((l) => () => { l.info(line, 'tool call') })(logger(stringMode()).child({ 'log.type': 'audit' }))],
  ['pino serializer, log destination (bytes)', () => ((l) => () => { l.info(line, 'tool call') })(logger(bufferMode()).child({ 'log.type': 'audit' }))],
  ['audit logger, string-mode destination', () => ((l) => () => { l.info(line, 'tool call') })(auditLogger(logger(stringMode())))],
  ['audit logger, log destination (bytes)', () => ((l) => () => { l.info(line, 'tool call') })(auditLogger(logger(bufferMode())))],
  ['one JSON.stringify, string-mode destination', () => ((w) => () => { w(line, 'tool call') })(direct(stringMode()))],
  ['one JSON.stringify, log destination (bytes)', () => ((w) => () => { w(line, 'tool call') })(direct(bufferMode()))],
]

if (!process.argv.includes('--case')) console.log(`audit line of a tool call: ${Object.keys(line).length} fields, each case in a process of its own`)
const results = isolated(import.meta.filename, cases)
const ratio = (a: string, b: string): string => (results.get(a)! / results.get(b)!).toFixed(2)
console.log(`audit logger / pino: ${ratio('audit logger, discarded', 'pino serializer, discarded')}× the time discarded, ${ratio('audit logger, log destination (bytes)', 'pino serializer, log destination (bytes)')}× written`)
console.log(`one JSON.stringify / audit logger: ${ratio('one JSON.stringify, discarded', 'audit logger, discarded')}× discarded, ${ratio('one JSON.stringify, log destination (bytes)', 'audit logger, log destination (bytes)')}× written`)
console.log(`bytes / string-mode destination: ${ratio('pino serializer, log destination (bytes)', 'pino serializer, string-mode destination')}× (pino), ${ratio('audit logger, log destination (bytes)', 'audit logger, string-mode destination')}× (audit logger)`)
