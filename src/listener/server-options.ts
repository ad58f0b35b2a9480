import type { Server } from 'node:http'
import { LogController, type FastifyHttpOptions } from 'fastify'
import type { Config } from '../config/types.ts'

/** Node/Fastify server options for the client listener. */
export function serverOptions (config: Config): FastifyHttpOptions<Server> {
  return {
    // Receiving a request — headers, then body — is bounded (a client sending a byte every few
    // seconds holds no socket for long); the response is not: Node's requestTimeout stops at the
    // request's last byte, so SSE streams that live for hours are untouched.
    requestTimeout: config.limits.requestTimeoutMs,
    http: {
      // Node refuses a headers timeout longer than the request timeout
      headersTimeout: Math.min(config.limits.headersTimeoutMs, config.limits.requestTimeoutMs),
      requestTimeout: config.limits.requestTimeoutMs,
      // how often both are checked (Node's default, 30 s, would let them run over by as much)
      connectionsCheckingInterval: checkingInterval(config),
    },
    // No socket idle timeout: a quiet SSE stream is the streams' own business (keep-alives).
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

/** a quarter of the shorter timeout, between 50 ms and 1 s: they run over by at most that */
function checkingInterval (config: Config): number {
  const shorter = Math.min(config.limits.headersTimeoutMs, config.limits.requestTimeoutMs)
  return Math.min(1000, Math.max(50, Math.floor(shorter / 4)))
}
