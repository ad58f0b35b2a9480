import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'

/** pino's `asJson`: the whole line for a record (its level, time and bindings included). */
type AsJson = (this: Record<symbol, unknown>, obj: Record<string, unknown>, msg: unknown, num: number, time: string) => string

const symbols = pino.symbols as typeof pino.symbols & { readonly msgPrefixSym: symbol }

/**
 * The audit lines' logger: Fastify's logger with `"log.type":"audit"` bound, so the lines keep its
 * level, destination, time, bindings and hooks. Only how a line is serialized is its own. An audit
 * record (records.ts) is a flat object of strings and numbers, written once per MCP request; pino
 * serializes any record key by key (a serializer and a stringifier lookup and two escaping passes
 * per field), where one `JSON.stringify` writes the same JSON. Measured in the running gateway on one
 * core, the 16-field line of a tool call took ~10 µs with pino's loop and ~8 µs this way
 * (test/bench/micro/audit.bench.ts compares the two in-process).
 *
 * It is installed through `pino.symbols.asJsonSym`, the integration point pino exposes for this.
 * Whatever it would not write exactly as pino does takes pino's own path: a record with a value
 * that is not a string or a finite-or-not number, or with a key the logger has a serializer or a
 * redaction path for; and a logger with a `formatters.log`, a `mixin`, a `nestedKey`, a message
 * prefix or a wildcard redaction never gets it.
 */
export function auditLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  const audit = log.child({ 'log.type': 'audit' })
  const state = audit as unknown as Record<symbol, unknown>
  const pinos = state[symbols.asJsonSym]
  if (typeof pinos !== 'function') return audit // not pino: Fastify's abstract logger interface only
  const formatters = state[symbols.formattersSym] as { log?: unknown } | undefined
  const stringifiers = (state[symbols.stringifiersSym] ?? {}) as Record<string | symbol, unknown>
  if (formatters?.log !== undefined || state[symbols.mixinSym] !== undefined || state[symbols.nestedKeySym] ||
    state[symbols.msgPrefixSym] !== undefined || stringifiers[symbols.wildcardFirstSym] !== undefined) return audit
  const special = new Set([...Object.keys((state[symbols.serializersSym] ?? {}) as object), ...Object.keys(stringifiers), String(state[symbols.errorKeySym])])
  const pinoAsJson = pinos as AsJson
  const messageKey = JSON.stringify(String(state[symbols.messageKeySym]))
  const asJson: AsJson = function (obj, msg, num, time) {
    if (msg !== undefined && typeof msg !== 'string') return pinoAsJson.call(this, obj, msg, num, time)
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
