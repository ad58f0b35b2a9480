import t from 'tap'
import { tracingChannel } from 'node:diagnostics_channel'
import pino, { type LoggerOptions } from 'pino'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { auditLogger } from '../../src/telemetry/audit-logger.ts'
import { loggerOptions } from '../../src/gateway.ts'

// The audit logger serializes its records itself (src/telemetry/audit-logger.ts). Whatever it is
// given, each line must be what pino writes for the same call: the gateway's own logger options,
// two audit loggers side by side, one with pino's serializer and one with ours, lines compared.

interface Capture { lines: string[]; logger: FastifyBaseLogger }

function gatewayLogger (extra: LoggerOptions = {}): Capture {
  const { stream: _stream, ...options } = loggerOptions('info') as LoggerOptions & { stream?: unknown }
  const lines: string[] = []
  const logger = pino({ ...options, ...extra }, { write (line: string) { lines.push(line) } }) as unknown as FastifyBaseLogger
  return { lines, logger }
}

/** The wall clock differs between the two calls. */
const timeless = (line: string): string => line.replace(/"time":\d+/, '"time":0')

function both (extra?: LoggerOptions): { ours: Capture & { audit: FastifyBaseLogger }; pinos: Capture & { audit: FastifyBaseLogger } } {
  const a = gatewayLogger(extra)
  const b = gatewayLogger(extra)
  return { ours: { ...a, audit: auditLogger(a.logger) }, pinos: { ...b, audit: b.logger.child({ 'log.type': 'audit' }) } }
}

const toolCall = {
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  span_id: '00f067aa0ba902b7',
  'event.name': 'mcp.tool_call',
  'mcp.method.name': 'tools/call',
  'gen_ai.tool.name': 'create_issue',
  'jsonrpc.request.id': '17',
  'enduser.pseudo.id': 'u_3f1c9a7be2d04a55',
  'portcullis.server': 'tickets',
  'mcp.protocol.version': '2025-11-25',
  'mcp.session.id': '7d2f3c1e-5b8a-4f6e-9c0d-1a2b3c4d5e6f',
  'portcullis.auth.client_id': 'https://client.example/cimd.json',
  'portcullis.auth.issuer': 'https://idp.example.com',
  'portcullis.auth.assertion_jti': 'b7c1e2d3-4f5a-6b7c-8d9e-0f1a2b3c4d5e',
  'portcullis.policy.decision': 'allow',
  'portcullis.policy.reason': 'allowed_by_rule',
  'portcullis.policy.rule_id': 'tickets-readers',
  outcome: 'success',
  'http.response.status_code': 200,
  duration_s: 0.012345678901234,
}

// [what, record, message]: every one must come out as pino writes it, byte for byte.
const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
  ['a tool call with every EMA field', toolCall, 'tool call'],
  ['a refused request', { 'event.name': 'mcp.request', 'portcullis.server': 'open', outcome: 'unauthenticated', 'error.type': 'invalid_token', 'http.response.status_code': 401, duration_s: 0.0004 }, 'mcp request refused: the access token is expired'],
  ['quotes and backslashes', { 'gen_ai.tool.name': 'say "hi" \\ bye', 'jsonrpc.request.id': '"quoted"' }, 'a "quoted" \\ message'],
  ['control characters', { 'gen_ai.tool.name': 'line\nbreak\ttab\u0001\u001f', 'mcp.resource.uri': 'file:///tmp/a\rb' }, 'carriage\rreturn'],
  ['non-ASCII and separators', { 'gen_ai.tool.name': 'météo_東京_🔐', 'mcp.resource.uri': 'x\u2028y\u2029z', é: 'clé' }, 'ünïcode ✓'],
  ['numbers', { zero: 0, negative: -1, tiny: 1.5e-7, huge: 1e21, int: 9007199254740991, negZero: -0 }, 'n'],
  ['numbers that are not finite', { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY }, 'nf'],
  ['empty strings and an empty key', { '': '', a: '' }, ''],
  ['keys that need escaping', { 'a"b': 'q', 'c\\d': 'b', 'e\nf': 'n' }, 'k'],
  ['integer-like keys', { b: 'x', 2: 'two', 1: 'one', a: 'y' }, 'order'],
  ['no fields', {}, 'empty'],
  ['no message', { outcome: 'success' }, undefined],
  ['a long value', { 'mcp.resource.uri': 'https://example.com/' + 'segment/'.repeat(40) }, 'long'],
  // these take pino's own path, so they too must match
  ['a key the logger redacts and serializes', { req: { method: 'POST', url: '/mcp/x?token=secret', headers: { authorization: 'Bearer secret' } }, outcome: 'success' }, 'r'],
  ['a nested object', { outcome: 'success', detail: { a: 1, b: ['x'] } }, 'nested'],
  ['a boolean', { outcome: 'success', shadow: true }, 'bool'],
  ['an undefined value', { outcome: 'success', missing: undefined }, 'undef'],
  ['a null value', { outcome: 'success', nothing: null }, 'null'],
  ['an error', { err: new Error('boom') }, 'err'],
]

t.test('each audit line is byte for byte the line pino writes', async (t) => {
  const { ours, pinos } = both()
  t.not((ours.audit as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym], (pinos.audit as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym],
    'the gateway logger gets the audit serializer')
  for (const [what, record, msg] of cases) {
    if (msg === undefined) { ours.audit.info(record); pinos.audit.info(record) } else { ours.audit.info(record, msg); pinos.audit.info(record, msg) }
    const mine = ours.lines.at(-1)!
    t.equal(timeless(mine), timeless(pinos.lines.at(-1)!), what)
    t.ok(JSON.parse(mine), `${what}: parses`)
  }
  t.equal(ours.lines.length, cases.length, 'one line per call')
  t.match(ours.lines[0], /^\{"level":30,"time":\d+,"pid":\d+,"hostname":"[^"]+","log\.type":"audit","trace_id":/, 'level, time, base bindings and the audit binding come first')
  t.notMatch(ours.lines.join(''), /secret/, 'redaction and the request serializer still apply')
})

t.test('a lone surrogate is escaped where pino writes it raw: the parsed lines are equal', async (t) => {
  const { ours, pinos } = both()
  ours.audit.info({ 'gen_ai.tool.name': 'a\ud800b' }, 'm')
  pinos.audit.info({ 'gen_ai.tool.name': 'a\ud800b' }, 'm')
  t.same(JSON.parse(timeless(ours.lines[0]!)), JSON.parse(timeless(pinos.lines[0]!)))
  t.match(ours.lines[0], /a\\ud800b/, 'well-formed JSON: the surrogate as an escape (so the line took the audit serializer)')
  t.notMatch(pinos.lines[0], /a\\ud800b/, 'pino writes it raw')
  ours.audit.child({ c: 1 }).info({ 'gen_ai.tool.name': 'a\ud800b' }, 'm')
  t.match(ours.lines[1], /"c":1,"gen_ai\.tool\.name":"a\\ud800b"/, 'a child without options of its own takes the audit serializer too')
})

t.test('the level of the audit logger still decides', async (t) => {
  const { ours } = both()
  ours.audit.level = 'warn'
  ours.audit.info(toolCall, 'tool call')
  t.equal(ours.lines.length, 0, 'below the level: nothing')
  ours.audit.level = 'info'
  ours.audit.info(toolCall, 'tool call')
  t.equal(ours.lines.length, 1)
  const child = ours.audit.child({ extra: 'binding' })
  child.info({ outcome: 'success' }, 'from a child')
  t.match(ours.lines[1], /"log\.type":"audit","extra":"binding","outcome":"success","msg":"from a child"\}\n$/, 'a child keeps both bindings')
})

t.test('children with serializers, formatters or redaction of their own are written by pino', async (t) => {
  const childOptions: Array<[string, Parameters<FastifyBaseLogger['child']>[1]]> = [
    ['its own serializer', { serializers: { outcome: (v: string) => `<${v}>` } }],
    ['its own redaction', { redact: { paths: ['outcome'], censor: '[redacted]' } } as Parameters<FastifyBaseLogger['child']>[1]],
    ['its own level formatter', { formatters: { level: (label: string) => ({ severity: label }) } }],
    ['empty options', {}],
  ]
  for (const [what, options] of childOptions) {
    const { ours, pinos } = both()
    ours.audit.child({ c: 1 }, options).info({ outcome: 'success', 'portcullis.server': 'open' }, 'm')
    pinos.audit.child({ c: 1 }, options).info({ outcome: 'success', 'portcullis.server': 'open' }, 'm')
    t.equal(timeless(ours.lines[0]!), timeless(pinos.lines[0]!), what)
  }
  const { ours } = both()
  ours.audit.child({}, { serializers: { outcome: (v: string) => `<${v}>` } }).info({ outcome: 'success' }, 'm')
  t.match(ours.lines[0], /"outcome":"<success>"/, 'the child\'s serializer applied')
})

// Loggers that write lines in a way the serializer does not: it is not installed, pino writes.
const configured: Array<[string, LoggerOptions]> = [
  ['a serializer for the message', { serializers: { msg: (m: string) => m.toUpperCase() } }],
  ['formatters.log', { formatters: { log: (o: Record<string, unknown>) => ({ ...o, formatted: true }) } }],
  ['mixin', { mixin: () => ({ mixed: 'in' }) }],
  ['nestedKey', { nestedKey: 'payload' }],
  ['msgPrefix', { msgPrefix: '[audit] ' }],
  ['a wildcard redaction', { redact: { paths: ['*.secret'], censor: '[redacted]' } }],
]

t.test('loggers configured beyond what the serializer writes keep pino\'s', async (t) => {
  for (const [what, extra] of configured) {
    const { ours, pinos } = both(extra)
    t.equal((ours.audit as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym], (pinos.audit as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym], `${what}: not installed`)
    ours.audit.info(toolCall, 'tool call')
    pinos.audit.info(toolCall, 'tool call')
    t.equal(timeless(ours.lines[0]!), timeless(pinos.lines[0]!), `${what}: pino's line`)
  }
})

type AsJson = (this: unknown, ...args: unknown[]) => string

t.test('the gateway\'s audit lines take the audit serializer (pino calls it, and it writes the line)', async (t) => {
  // What audit-logger.ts relies on of pino 10.4: should a pino release stop calling asJsonSym,
  // or keep the line's parts elsewhere, this fails (the lines would still be right, only slower).
  const { logger, lines } = gatewayLogger()
  const root = logger as unknown as Record<symbol, AsJson>
  const pinos = root[pino.symbols.asJsonSym]!
  let pinoCalls = 0
  root[pino.symbols.asJsonSym] = function (...args) { pinoCalls++; return pinos.apply(this, args) }
  const audit = auditLogger(logger) as unknown as Record<symbol, AsJson> & FastifyBaseLogger
  const ours = audit[pino.symbols.asJsonSym]!
  t.not(ours, root[pino.symbols.asJsonSym], 'installed')
  let ourCalls = 0
  audit[pino.symbols.asJsonSym] = function (...args) { ourCalls++; return ours.apply(this, args) }
  audit.info(toolCall, 'tool call')
  audit.child({ c: 1 }).info(toolCall, 'tool call')
  t.same({ ourCalls, pinoCalls, lines: lines.length }, { ourCalls: 2, pinoCalls: 0, lines: 2 }, 'both lines written by the audit serializer alone')
  audit.info({ outcome: 'success', shadow: true }, 'bool')
  t.same({ ourCalls, pinoCalls }, { ourCalls: 3, pinoCalls: 1 }, 'a record it does not write goes to pino\'s')
})

t.test('a pino without the line parts the serializer writes from keeps pino\'s serializer', async (t) => {
  for (const symbol of [pino.symbols.lsCacheSym, pino.symbols.chindingsSym, pino.symbols.endSym]) {
    const { logger } = gatewayLogger()
    const pinos = (logger as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym]
    // as a pino release that keeps one of them elsewhere would look
    const changed = Object.assign(Object.create(logger) as FastifyBaseLogger, {
      child (...args: Parameters<FastifyBaseLogger['child']>) {
        const child = logger.child(...args)
        ;(child as unknown as Record<symbol, unknown>)[symbol] = undefined
        return child
      },
    })
    t.equal((auditLogger(changed) as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym], pinos, `without ${String(symbol)}: not installed`)
  }
})

t.test('a logger that is not pino is used as it is', async (t) => {
  const calls: unknown[] = []
  const plain = { child: () => plain, info: (...args: unknown[]) => calls.push(args) } as unknown as FastifyBaseLogger
  const audit = auditLogger(plain)
  audit.info({ outcome: 'success' }, 'm')
  t.same(calls, [[{ outcome: 'success' }, 'm']])
})

t.test('while something listens on pino\'s diagnostics channel, pino writes the audit lines', async (t) => {
  const seen: unknown[] = []
  const handlers = { start: (message: unknown) => { seen.push(message) }, end () {}, asyncStart () {}, asyncEnd () {}, error () {} }
  const channel = tracingChannel('pino_asJson')
  channel.subscribe(handlers)
  t.teardown(() => { channel.unsubscribe(handlers) })
  const { ours, pinos } = both()
  ours.audit.info({ 'gen_ai.tool.name': 'a\ud800b' }, 'm')
  pinos.audit.info({ 'gen_ai.tool.name': 'a\ud800b' }, 'm')
  t.equal(seen.length, 2, 'the listener saw both lines')
  t.equal(timeless(ours.lines[0]!), timeless(pinos.lines[0]!), 'pino\'s line, raw surrogate and all')
})

t.test('the logger Fastify builds from the gateway\'s options gets the audit serializer', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { ...(loggerOptions('info') as object), stream: { write (line: string) { lines.push(line) } } } })
  t.teardown(() => app.close())
  auditLogger(app.log).info({ 'gen_ai.tool.name': 'a\ud800b', outcome: 'success' }, 'tool call')
  t.match(lines.at(-1), /^\{"level":30,"time":\d+,"pid":\d+,"hostname":"[^"]+","log\.type":"audit","gen_ai\.tool\.name":"a\\ud800b","outcome":"success","msg":"tool call"\}\n$/)
})
