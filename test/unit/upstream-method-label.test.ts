// portcullis_upstream_request_duration_seconds{method} is bounded: a method the client makes up
// is `_other` (it was once the raw name, a series per name), known methods and the HTTP method
// of a GET or DELETE are themselves.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { McpExchange } from '../../src/mcp/exchange.ts'
import { Metrics } from '../../src/telemetry/metrics.ts'
import { UpstreamCall } from '../../src/upstream/upstream-call.ts'

function exchangeOf (methods: string[], records: boolean): McpExchange {
  return {
    server: { name: 's', upstream: { transport: 'streamable-http' } },
    records: new Map(records ? methods.map((method, i) => [i, { method }]) : []),
    operations: methods.map((method) => ({ method })),
    messages: [],
    notificationSpans: [],
  } as unknown as McpExchange
}

async function labels (exchange: McpExchange, httpMethod: string): Promise<string[]> {
  const metrics = new Metrics()
  new UpstreamCall(exchange, { method: httpMethod, headers: {} } as FastifyRequest, metrics).answered()
  return (await metrics.upstreamRequestDuration.get()).values
    .filter((v) => v.metricName === 'portcullis_upstream_request_duration_seconds_count')
    .map((v) => String(v.labels.method))
}

t.test('a request: its method when known, else _other', async (t) => {
  t.same(await labels(exchangeOf(['tools/call'], true), 'POST'), ['tools/call'])
  t.same(await labels(exchangeOf(['x/made-up-1'], true), 'POST'), ['_other'])
  t.same(await labels(exchangeOf(['x/made-up-2'], true), 'POST'), ['_other'])
})

t.test('notifications only: the first one, bounded the same way', async (t) => {
  t.same(await labels(exchangeOf(['notifications/initialized'], false), 'POST'), ['notifications/initialized'])
  t.same(await labels(exchangeOf(['notifications/made-up'], false), 'POST'), ['_other'])
})

t.test('GET and DELETE: the HTTP method', async (t) => {
  t.same(await labels(exchangeOf([], false), 'GET'), ['GET'])
  t.same(await labels(exchangeOf([], false), 'DELETE'), ['DELETE'])
})
