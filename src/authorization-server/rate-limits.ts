import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OAuthEndpoint, OAuthRateLimit } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Store } from '../store/store.ts'
import { escapeHtml } from './login/responses.ts'
import { claimedClientId } from './token-endpoint.ts'
import { RateLimiter, type Limited } from '../ratelimit/rate-limiter.ts'
import { rateBackend } from '../ratelimit/rate-backend.ts'

const ENDPOINTS: ReadonlySet<string> = new Set<OAuthEndpoint>(['token', 'authorize', 'callback', 'register', 'consent'])
/** endpoints a browser navigates to: an HTML page for people, JSON for programs */
const BROWSER_ENDPOINTS: ReadonlySet<string> = new Set<OAuthEndpoint>(['authorize', 'callback', 'consent'])

export interface OAuthRateLimitOptions {
  readonly limits: readonly OAuthRateLimit[]
  readonly store: Store
  readonly keyPrefix: string
  readonly metrics: Metrics
}

/**
 * `authorization.rateLimits` on /oauth/*: per client address (request.ip, which honours
 * listen.trustProxy) before the body is read, per client id once it is. Over a limit: 429 with
 * Retry-After and `temporarily_unavailable` (JSON; an HTML page for a browser at the login
 * endpoints), `portcullis_rate_limited_total{server="_oauth",limit}` and one audit line per key
 * and window. Call before the routes are registered: the hooks apply to this context.
 */
export function oauthRateLimits (app: FastifyInstance, opts: OAuthRateLimitOptions): void {
  if (opts.limits.length === 0) return
  const limiter = new RateLimiter('oauth', opts.limits, rateBackend(opts.store, opts.keyPrefix, app.log))
  const check = async (request: FastifyRequest, reply: FastifyReply, per: OAuthRateLimit['per']): Promise<FastifyReply | undefined> => {
    const endpoint = endpointOf(request.url)
    if (endpoint === null) return undefined
    const limited = await limiter.check((rule) => rule.per === per && applies(rule, endpoint) ? keyOf(request, per, endpoint) : undefined)
    if (limited === undefined) return undefined
    opts.metrics.rateLimited.inc({ server: '_oauth', limit: per })
    if (limited.first) audit(request, endpoint, limited)
    return await tooManyRequests(request, reply, endpoint, limited)
  }
  app.addHook('onRequest', async function oauthAddressLimits (request, reply) { return await check(request, reply, 'address') })
  app.addHook('preHandler', async function oauthClientLimits (request, reply) { return await check(request, reply, 'client') })
}

/** the endpoint named by an /oauth/* path; undefined for other /oauth/* paths; null outside /oauth/ */
function endpointOf (url: string): string | undefined | null {
  const path = url.split('?', 1)[0] ?? ''
  if (!path.startsWith('/oauth/')) return null
  const name = path.slice('/oauth/'.length)
  return ENDPOINTS.has(name) ? name : undefined
}

function applies (rule: OAuthRateLimit, endpoint: string | undefined): boolean {
  return rule.endpoints === undefined || (endpoint !== undefined && rule.endpoints.includes(endpoint as OAuthEndpoint))
}

/** The address, or the client id the request claims (unauthenticated: RateLimiter bounds its length). */
function keyOf (request: FastifyRequest, per: OAuthRateLimit['per'], endpoint: string | undefined): string | undefined {
  if (per === 'address') return request.ip
  if (endpoint === 'token') return claimedClientId(request)
  const clientId = (request.query as Record<string, unknown> | undefined)?.client_id
  return typeof clientId === 'string' && clientId !== '' ? clientId : undefined
}

function audit (request: FastifyRequest, endpoint: string | undefined, limited: Limited<OAuthRateLimit>): void {
  const { rule } = limited
  request.log.warn({
    'log.type': 'audit',
    'event.name': 'oauth.rate_limited',
    outcome: 'rejected',
    'portcullis.limit': rule.per,
    'portcullis.limit.rate': rule.rate,
    'portcullis.oauth.endpoint': endpoint ?? 'other',
    'client.address': request.ip,
    ...(rule.per === 'client' ? { 'portcullis.auth.client_id': limited.key } : {}),
    retry_after_s: limited.retryAfterSeconds,
  }, `rate limit ${rule.rate} per ${rule.per} reached on /oauth/${endpoint ?? '*'}; further refusals in this window are counted, not logged`)
}

/**
 * 429 + Retry-After, with `temporarily_unavailable`: the RFC 6749 code every OAuth client knows
 * as "try again later" (`slow_down` belongs to device-code polling, RFC 8628).
 */
async function tooManyRequests (request: FastifyRequest, reply: FastifyReply, endpoint: string | undefined, limited: Limited<OAuthRateLimit>): Promise<FastifyReply> {
  const who = limited.rule.per === 'address' ? 'from this address' : 'for this client'
  const description = `Too many requests ${who}; try again in ${limited.retryAfterSeconds} s`
  reply.code(429).header('retry-after', String(limited.retryAfterSeconds)).header('cache-control', 'no-store')
  if (endpoint !== undefined && BROWSER_ENDPOINTS.has(endpoint) && (request.headers.accept ?? '').includes('text/html')) {
    return await reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
      .header('x-frame-options', 'DENY')
      .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many requests</title></head>
<body><h1>Too many requests</h1><p>${escapeHtml(description)}</p>
<p>Wait a moment, then return to the application and try again.</p></body></html>
`)
  }
  // token and register answer cross-origin fetch() calls: let the client read the refusal
  return await reply.header('access-control-allow-origin', '*').send({ error: 'temporarily_unavailable', error_description: description })
}
