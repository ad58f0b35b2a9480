import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerConfig, ServerRateLimit } from '../config/types.ts'
import type { McpExchange } from '../mcp/exchange.ts'
import type { McpOperation } from '../jsonrpc/classify.ts'
import type { Store } from '../store/store.ts'
import { GatewayError } from '../errors.ts'
import { jsonRpcError } from '../jsonrpc/errors.ts'
import { limitKey } from '../limits/limit-key.ts'
import { finishRecord, type RecordSink } from '../telemetry/records.ts'
import { compileGlob, type NameMatcher } from '../policy/glob.ts'
import { MAX_KEY_LENGTH, RateLimiter, type Limited, type RateBackend } from './rate-limiter.ts'
import { rateBackend } from './rate-backend.ts'

/** A rule with its tool globs compiled (undefined: every request counts). */
interface Rule extends ServerRateLimit {
  readonly matches: NameMatcher | undefined
}

interface ServerLimiter {
  readonly signature: string
  readonly limiter: RateLimiter<Rule>
}

/**
 * Stage: `servers.*.rateLimits`, after the policy — a call the policy refused never reached the
 * upstream, so it does not use up anyone's share of it. Every JSON-RPC request of a POST counts
 * (each element of a batch; notifications, responses, GET and DELETE do not) against each rule
 * that applies: a rule with `tools` only for `tools/call` of a matching name, else every request.
 * Keys: the principal (per address on `auth: none`, limit-key.ts), the client id, or the server.
 * Over any → 429 + Retry-After, -31029 with the request's id, nothing forwarded; a batch is
 * refused whole. Shadow mode too: the limits protect the upstream, not the policy's rollout.
 */
export function enforceRateLimits (store: Store, keyPrefix: string, sink: RecordSink) {
  const limiters = serverLimiters(rateBackend(store, keyPrefix, sink.log))
  return function enforceRateLimits (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> | undefined {
    const exchange = request.mcp
    if (exchange === null || exchange.server.rateLimits.length === 0) return undefined
    const requests = exchange.operations.filter((op) => op.kind === 'request' && op.id !== undefined)
    if (requests.length === 0) return undefined
    const limiter = limiters(exchange.server)
    return check(limiter, exchange, request, requests, reply, sink)
  }
}

async function check (limiter: RateLimiter<Rule>, exchange: McpExchange, request: FastifyRequest, requests: readonly McpOperation[], reply: FastifyReply, sink: RecordSink): Promise<FastifyReply | undefined> {
  const limited = new Map<string | number, Limited<Rule>>()
  await Promise.all(requests.map(async (op) => {
    const hit = await limiter.check((rule) => keyOf(rule, op, exchange, request))
    if (hit !== undefined && op.id !== undefined) limited.set(op.id, hit)
  }))
  if (limited.size === 0) return undefined
  return await refuse(exchange, limited, reply, sink)
}

/** The bucket a request counts in for `rule`, or undefined when the rule does not apply to it. */
function keyOf (rule: Rule, op: McpOperation, exchange: McpExchange, request: FastifyRequest): string | undefined {
  if (rule.matches !== undefined && (op.method !== 'tools/call' || op.target === undefined || !rule.matches(op.target))) return undefined
  switch (rule.per) {
    case 'server': return 'server'
    case 'subject': return bounded(limitKey(exchange, request))
    // no client id (auth: none): per address, like the subject
    case 'client': return bounded(exchange.principal?.clientId === undefined ? limitKey(exchange, request) : `client:${exchange.principal.clientId}`)
  }
}

/** Keys longer than the limiter's bound are hashed, not cut: two long subjects never share a bucket. */
function bounded (key: string): string {
  return key.length <= MAX_KEY_LENGTH ? key : `sha256:${createHash('sha256').update(key).digest('base64url')}`
}

/**
 * One limiter per server, kept across reloads while its rules stay the same (so do their counts).
 * Changed rules get a new one: fresh memory counts; Redis counters (by rule index) run out their window.
 */
function serverLimiters (backend: RateBackend): (server: ServerConfig) => RateLimiter<Rule> {
  const byName = new Map<string, ServerLimiter>()
  const bySource = new WeakMap<readonly ServerRateLimit[], RateLimiter<Rule>>()
  return (server) => {
    const known = bySource.get(server.rateLimits)
    if (known !== undefined) return known
    const signature = JSON.stringify(server.rateLimits)
    let current = byName.get(server.name)
    if (current?.signature !== signature) {
      const rules = server.rateLimits.map((r) => ({ ...r, matches: r.tools === undefined ? undefined : anyOf(r.tools.map(compileGlob)) }))
      current = { signature, limiter: new RateLimiter(`server:${server.name}`, rules, backend) }
      byName.set(server.name, current)
    }
    bySource.set(server.rateLimits, current.limiter)
    return current.limiter
  }
}

function anyOf (matchers: readonly NameMatcher[]): NameMatcher {
  return (name) => matchers.some((m) => m(name))
}

/** 429 for the whole POST: the limited requests get -31029, the rest of a batch "not processed". */
async function refuse (exchange: McpExchange, limited: ReadonlyMap<string | number, Limited<Rule>>, reply: FastifyReply, sink: RecordSink): Promise<FastifyReply> {
  const server = exchange.server.name
  let retryAfter = 1
  const answers = []
  for (const op of exchange.operations) {
    if (op.kind !== 'request' || op.id === undefined) continue
    const hit = limited.get(op.id)
    const record = exchange.records.get(op.id)
    if (hit === undefined) {
      answers.push(jsonRpcError(op.id, -32600, 'Request not processed: another request in this batch was refused'))
      if (record !== undefined) finishRecord(exchange, record, 'invalid_request', sink, 'batch_refused', 429)
      continue
    }
    const { rule } = hit
    retryAfter = Math.max(retryAfter, hit.retryAfterSeconds)
    const error = new GatewayError('PORTCULLIS_ERR_RATE_LIMITED', `${rule.rate} per ${rule.per}`)
    answers.push(jsonRpcError(op.id, error.rpcCode, error.publicMessage))
    sink.metrics.rateLimited.inc({ server, limit: `rate_${rule.per}` })
    if (record !== undefined) finishRecord(exchange, record, 'invalid_request', sink, error.code, 429)
    if (hit.first) {
      sink.log.warn({ 'event.name': 'mcp.rate_limited', 'portcullis.server': server, 'portcullis.limit': `rate_${rule.per}`, 'portcullis.limit.rate': rule.rate, retry_after_s: hit.retryAfterSeconds },
        `rate limit ${rule.rate} per ${rule.per} reached on ${server}; further refusals in this window are counted, not logged`)
    }
  }
  return await reply.code(429)
    .header('retry-after', String(retryAfter))
    .header('cache-control', 'no-store')
    .header('content-type', 'application/json')
    .send(JSON.stringify(exchange.batch ? answers : answers[0]))
}
