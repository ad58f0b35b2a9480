import Fastify, { type FastifyInstance } from 'fastify'
import type { Metrics } from '../telemetry/metrics.ts'

export interface Readiness {
  /** true once listening with a valid config and loaded keys, false again while draining */
  ready: boolean
}

/** The admin listener, apart from client traffic: liveness, readiness and metrics. */
export function buildAdminServer (readiness: Readiness, metrics: Metrics): FastifyInstance {
  const admin = Fastify({ logger: false })
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
