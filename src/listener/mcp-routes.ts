import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import type { StateHolder } from '../state.ts'
import type { AuthorizationContext } from '../authorization-server/authorization-server.ts'
import { finishRefused, type RecordSink } from '../telemetry/records.ts'
import { GatewayError, isGatewayError } from '../errors.ts'
import { mcpPipeline } from '../pipeline.ts'
import { registerMcpBodyParser } from './body.ts'
import { allowedOrigins, preflight } from './origin.ts'
import { sendGatewayError } from './reply-error.ts'
import { runStages } from './run-stages.ts'
import type { Sessions } from '../session/sessions.ts'
import type { GetStreams } from './get-streams.ts'

export interface McpRoutesOptions {
  readonly config: Config
  readonly holder: StateHolder
  readonly auth: AuthorizationContext
  readonly sink: RecordSink
  readonly sessions: Sessions
  /** the GET streams open to clients, ended when the replica drains */
  readonly getStreams: GetStreams
}

/** The MCP endpoint `/mcp/{server}`: an encapsulated context with its own body parser and errors. */
export async function mcpRoutes (app: FastifyInstance, { config, holder, auth, sink, sessions, getStreams }: McpRoutesOptions): Promise<void> {
  const pipeline = mcpPipeline(config, holder, auth, sink, sessions, getStreams)
  registerMcpBodyParser(app, config.limits.maxBodyBytes)
  app.setErrorHandler(mcpErrorHandler(sink))
  app.route({
    method: ['POST', 'GET', 'DELETE'],
    url: '/mcp/:server',
    onRequest: runStages('mcpOnRequest', pipeline.onRequest),
    preHandler: runStages('mcpPreHandler', pipeline.preHandler),
    handler: pipeline.handler,
  })
  app.options('/mcp/:server', preflight(allowedOrigins(config)))
  app.route({
    method: ['PUT', 'PATCH'],
    url: '/mcp/:server',
    handler: async function methodNotAllowed () {
      throw new GatewayError('PORTCULLIS_ERR_METHOD_NOT_ALLOWED', undefined, { headers: { allow: 'GET, POST, DELETE' } })
    },
  })
}

/** 5xx answers that shed load by design rather than report a fault. */
const SHED: ReadonlySet<string> = new Set(['PORTCULLIS_ERR_CIRCUIT_OPEN', 'PORTCULLIS_ERR_UPSTREAM_BUSY', 'PORTCULLIS_ERR_TOO_MANY_SESSIONS'])

/**
 * Every failure on the MCP endpoint becomes a JSON-RPC error body with the right HTTP status,
 * carrying the request's id when the body held exactly one request. Never a stack trace:
 * unexpected errors are logged and answered with a fixed message.
 */
function mcpErrorHandler (sink: RecordSink) {
  return function mcpErrorHandler (this: FastifyInstance, err: FastifyError | GatewayError, request: FastifyRequest, reply: FastifyReply): void {
    const failure = toGatewayError(err)
    const exchange = request.mcp
    const server = exchange?.server.name
    // An answer the gateway gives on purpose (an open circuit, a full pool, a session cap) is
    // counted by its metric and one warn line, not an error with a stack per request.
    if (SHED.has(failure.code)) request.log.warn({ code: failure.code, server }, failure.message)
    else if (failure.statusCode >= 500) request.log.error({ err, server }, failure.message)
    if (failure.code === 'PORTCULLIS_ERR_CLIENT_CLOSED') return
    // Refused (4xx) before any request of the body was judged: counted and audited here, the
    // audit line in place of the log line. Requests of a parsed body end through their records.
    if (failure.statusCode < 500 && exchange !== null && exchange.records.size === 0 && exchange.messages.every((m) => m.kind === 'request')) {
      try {
        finishRefused(exchange, failure, sink)
      } catch (e) {
        request.log.error({ err: e }, 'could not record the end of a request')
      }
    } else if (failure.statusCode < 500) {
      request.log.info({ code: failure.code, statusCode: failure.statusCode, server }, failure.message)
    }
    answerError(failure, request, reply)
  }
}

function answerError (failure: GatewayError, request: FastifyRequest, reply: FastifyReply): void {
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy()
    return
  }
  const messages = request.mcp?.messages ?? []
  const only = messages.length === 1 ? messages[0] : undefined
  const id = only !== undefined && only.kind === 'request' ? only.id : null
  void sendGatewayError(reply, failure, id)
}

function toGatewayError (err: FastifyError | GatewayError): GatewayError {
  if (isGatewayError(err)) return err
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new GatewayError('PORTCULLIS_ERR_BODY_TOO_LARGE')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new GatewayError('PORTCULLIS_ERR_UNSUPPORTED_MEDIA_TYPE')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', 'Content-Length does not match the body')
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', undefined, { cause: err })
  }
  return new GatewayError('PORTCULLIS_ERR_INTERNAL', undefined, { cause: err })
}
