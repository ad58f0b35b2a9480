import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { AdminConfig } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'

export interface Readiness {
  /** true once listening with a valid config and loaded keys, false again while draining */
  ready: boolean
}

const CHALLENGE = 'Bearer realm="portcullis-admin"'
/** Also offered to browsers, so that opening the console prompts for the token (RFC 7617). */
const BASIC_CHALLENGE = 'Basic realm="portcullis-admin", charset="UTF-8"'

/**
 * The admin listener, apart from client traffic: liveness, readiness and metrics. With
 * `admin.token`, everything but the probes (and /metrics, unless metricsRequireToken) needs it.
 */
export function buildAdminServer (readiness: Readiness, metrics: Metrics, config: AdminConfig): FastifyInstance {
  const admin = Fastify({ logger: false })
  if (config.token !== undefined) {
    admin.addHook('onRequest', adminTokenGuard(config.token, ['/healthz', '/readyz', ...(config.metricsRequireToken ? [] : ['/metrics'])]))
  }
  admin.get('/healthz', async function healthz () {
    return { status: 'ok' }
  })
  admin.get('/readyz', async function readyz (_request, reply) {
    if (!readiness.ready) return await reply.code(503).send({ status: 'not ready' })
    return { status: 'ready' }
  })
  admin.get('/metrics', async function metricsRoute (_request, reply) {
    return await reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics())
  })
  return admin
}

/**
 * `Authorization: Bearer <token>`, or `Basic` with the token as the password (any user name: a
 * browser's prompt), in exactly one header, compared in constant time (SHA-256 of both, so not
 * even the length leaks). Missing or wrong → 401, the same answer whatever was wrong, with a
 * Basic challenge too when a browser asks for a page. Only the routes in `open` (matched routes,
 * not raw URLs) pass without it; an unknown path is a 401 too, not a 404, so paths cannot be probed.
 */
function adminTokenGuard (token: string, open: readonly string[]): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const expected = sha256(token)
  const openRoutes = new Set(open)
  return async function adminToken (request, reply) {
    if (openRoutes.has(request.routeOptions.url ?? '')) return undefined
    const given = presentedToken(request)
    if (given !== undefined && timingSafeEqual(sha256(given), expected)) return undefined
    const browser = /\btext\/html\b/i.test(request.headers.accept ?? '')
    return await reply.code(401).header('www-authenticate', browser ? [CHALLENGE, BASIC_CHALLENGE] : CHALLENGE)
      .header('cache-control', 'no-store').send({ error: 'unauthorized' })
  }
}

/**
 * The token of the only Authorization header: `Bearer <token>`, or `Basic <base64(user:token)>`
 * in strict, padded base64 of UTF-8 with a colon in it. Anything else is no token at all.
 */
function presentedToken (request: FastifyRequest): string | undefined {
  // Node keeps the first of repeated Authorization headers and drops the rest: refuse them instead.
  const count = request.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'authorization').length
  if (count !== 1) return undefined
  const header = request.headers.authorization ?? ''
  const bearer = /^Bearer (\S+)$/i.exec(header)?.[1]
  if (bearer !== undefined) return bearer
  const basic = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header)?.[1]
  if (basic === undefined) return undefined
  const bytes = Buffer.from(basic, 'base64')
  // Node's decoder skips what it cannot read: only an exact round trip is base64
  if (bytes.toString('base64') !== basic) return undefined
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return undefined
  }
  const colon = text.indexOf(':')
  return colon === -1 ? undefined : text.slice(colon + 1)
}

function sha256 (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
