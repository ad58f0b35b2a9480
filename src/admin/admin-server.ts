import Fastify, { type FastifyInstance } from 'fastify'
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client'
import { VERSION } from '../version.ts'

export interface Readiness {
  /** true once listening with a valid config, false again while draining */
  ready: boolean
}

/**
 * The admin listener, apart from client traffic: liveness, readiness and metrics.
 * TODO(telemetry): the metrics of design.md §6 are declared in telemetry/metrics.ts.
 */
export function buildAdminServer (readiness: Readiness): { admin: FastifyInstance; registry: Registry } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  new Gauge({ name: 'portcullis_build_info', help: 'Portcullis version', labelNames: ['version'], registers: [registry] }).set({ version: VERSION }, 1)

  const admin = Fastify({ logger: false })
  admin.get('/healthz', async function healthz () {
    return { status: 'ok' }
  })
  admin.get('/readyz', async function readyz (_request, reply) {
    if (!readiness.ready) return await reply.code(503).send({ status: 'not ready' })
    return { status: 'ready' }
  })
  admin.get('/metrics', async function metrics (_request, reply) {
    return await reply.header('content-type', registry.contentType).send(await registry.metrics())
  })
  return { admin, registry }
}
