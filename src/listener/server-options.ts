import { LogController, type FastifyServerOptions } from 'fastify'
import type { Config } from '../config/types.ts'

/** Node/Fastify server options for the client listener. */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    // SSE responses and GET streams live for hours: no whole-request timeout.
    requestTimeout: 0,
    connectionTimeout: 0,
    // Longer than common load-balancer idle timeouts (AWS ALB 60 s), so the LB closes first.
    keepAliveTimeout: 72_000,
    bodyLimit: config.limits.maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Client-supplied request ids would let a client forge log correlation.
    requestIdHeader: false,
    // Every MCP and token request writes its own audit line; Fastify's two access lines per
    // request would triple the log volume on the hot path.
    logController: new LogController({ disableRequestLogging: true }),
    // request.ip is the client's address for the /oauth/* limits: the peer's, or — from a balancer
    // named in listen.trustProxy — the nearest untrusted one in X-Forwarded-For. Requests are still
    // not judged by their Host: replicas behind one load balancer share publicUrl.
    trustProxy: config.listen.trustProxy.length === 0 ? false : [...config.listen.trustProxy],
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 100 },
    exposeHeadRoutes: false,
  }
}
