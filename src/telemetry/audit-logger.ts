import { tracingChannel } from 'node:diagnostics_channel'
import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'

/** pino's `asJson`: the whole line for a record (its level, time and bindings included). */
type AsJson = (this: Record<symbol, unknown>, obj: Record<string, unknown>, msg: unknown, num: number, time: string) => string

const symbols = pino.symbols as typeof pino.symbols & { readonly msgPrefixSym: symbol }

/** The diagnostics channel pino traces its serialization on (tools.js); subscribers get pino's path. */
const asJsonChannel = tracingChannel('pino_asJson')

/**
 * The audit lines' logger: Fastify's logger with `"log.type":"audit"` bound, so the lines keep its
 * level, destination, time, bindings and hooks. Only how a line is serialized is its own. An audit
 * record (records.ts) is a flat object of strings and numbers, written once per MCP request; pino
 * serializes any record key by key (a serializer and a stringifier lookup and two escaping passes
 * per field), where one `JSON.stringify` writes the same JSON for less (figures in
 * test/bench/README.md).
 *
 * It is installed through `pino.symbols.asJsonSym`, which pino exposes for integrations but not as
 * a stable API; it writes the line's head and end from three more of pino's symbols (the level
 * cache, the bindings, the line end) and reads the logger's options from others. Checked against
 * pino 10.4.0, hence pino pinned to 10.4.x. Should those parts not be there as expected, the logger
 * stays as pino made it, and test/unit/audit-logger.test.ts fails when the gateway's audit lines
 * stop taking this path.
 *
 * Whatever it would not write exactly as pino does takes pino's own path: a record with a value
 * that is not a string or a number, or with a key the logger has a serializer or a redaction path
 * for, or logged through a child given serializers, formatters or redaction of its own; and a
 * logger with a `formatters.log`, a `mixin`, a `nestedKey`, a message prefix, a wildcard
 * redaction or a serializer or redaction for the message never gets it. While anything listens on
 * pino's `pino_asJson` diagnostics channel, pino writes every line, so the listener sees them all.
 */
export function auditLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  const audit = log.child({ 'log.type': 'audit' })
  const state = audit as unknown as Record<symbol, unknown>
  const pinos = state[symbols.asJsonSym]
  if (typeof pinos !== 'function') return audit // not pino: Fastify's abstract logger interface only
  const formatters = state[symbols.formattersSym] as { log?: unknown } | undefined
  const serializers = state[symbols.serializersSym]
  const ownStringifiers = state[symbols.stringifiersSym]
  const stringifiers = (ownStringifiers ?? {}) as Record<string | symbol, unknown>
  const special = new Set([...Object.keys(serializers ?? {}), ...Object.keys(stringifiers), String(state[symbols.errorKeySym])])
  const messageKeyName = String(state[symbols.messageKeySym])
  if (formatters?.log !== undefined || state[symbols.mixinSym] !== undefined || state[symbols.nestedKeySym] ||
    state[symbols.msgPrefixSym] !== undefined || stringifiers[symbols.wildcardFirstSym] !== undefined || special.has(messageKeyName)) return audit
  if (!hasLineParts(audit, state)) return audit
  const pinoAsJson = pinos as AsJson
  const messageKey = JSON.stringify(messageKeyName)
  const asJson: AsJson = function (obj, msg, num, time) {
    // a child with serializers, formatters or redaction of its own has its own objects for them
    if ((msg !== undefined && typeof msg !== 'string') || asJsonChannel.hasSubscribers || this[symbols.serializersSym] !== serializers ||
      this[symbols.stringifiersSym] !== ownStringifiers || this[symbols.formattersSym] !== formatters) return pinoAsJson.call(this, obj, msg, num, time)
    for (const key in obj) {
      const value = obj[key]
      if ((typeof value !== 'string' && typeof value !== 'number') || special.has(key)) return pinoAsJson.call(this, obj, msg, num, time)
    }
    const fields = JSON.stringify(obj)
    return (this[symbols.lsCacheSym] as Record<number, string>)[num]! + time + (this[symbols.chindingsSym] as string) +
      (fields.length > 2 ? ',' + fields.slice(1, -1) : '') +
      (msg === undefined ? '' : ',' + messageKey + ':' + JSON.stringify(msg)) + (this[symbols.endSym] as string)
  }
  state[symbols.asJsonSym] = asJson
  return audit
}

/** pino's level cache (the line's head up to the time, by level), bindings and line end, as pino 10.4 keeps them. */
function hasLineParts (audit: FastifyBaseLogger, state: Record<symbol, unknown>): boolean {
  const heads = state[symbols.lsCacheSym]
  const levels = (audit as unknown as { levels?: { values?: Record<string, number> } }).levels?.values
  return typeof heads === 'object' && heads !== null && typeof levels === 'object' &&
    Object.values(levels).every((level) => typeof (heads as Record<number, unknown>)[level] === 'string') &&
    typeof state[symbols.chindingsSym] === 'string' && typeof state[symbols.endSym] === 'string'
}
