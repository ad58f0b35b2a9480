import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { LogDestination } from './telemetry/log-destination.ts'
import type { Config } from './config/types.ts'
import type { UpstreamRegistry } from './upstream/registry.ts'
import type { Upstream } from './upstream/upstream.ts'
import { StateHolder, buildState } from './state.ts'
import { DecisionRing } from './telemetry/decision-ring.ts'
import { restartOnlyChanges } from './reload.ts'
import { createPseudonymizer } from './telemetry/pseudonym.ts'
import { auditLogger } from './telemetry/audit-logger.ts'
import { mcpRoutes } from './listener/mcp-routes.ts'
import { buildAdminServer, type Readiness } from './admin/admin-server.ts'
import { AuthorizationContext, authorizationServer } from './authorization-server/authorization-server.ts'
import { Metrics } from './telemetry/metrics.ts'
import type { KeySourceOptions } from './authorization-server/idp-trust.ts'
import { serverOptions } from './listener/server-options.ts'
import './listener/request-decorations.ts'
import type { AddressInfo } from 'node:net'
import type { Store } from './store/store.ts'
import { MemoryStore } from './store/memory-store.ts'
import { RedisStore } from './store/redis-store.ts'
import { Sessions } from './session/sessions.ts'
import { sessionKeysFromEnv } from './session/session-keys.ts'
import { peerRoutes } from './listener/peer-routes.ts'
import { upstreamHealth } from './upstream/health.ts'
import { consoleRoutes } from './admin/console/plugin.ts'
import { gatewaySources } from './admin/console/gateway-sources.ts'
import { ListedTools } from './admin/console/listed-tools.ts'
import { ReloadHistory } from './admin/console/reload-history.ts'
import { Replicas } from './admin/console/replicas.ts'
import { GetStreams } from './listener/get-streams.ts'
import { VERSION } from './version.ts'

/** how long a starting replica waits to hear the shared sets before it reports ready without them */
const SYNC_WAIT_MS = 2000

export interface GatewayDeps {
  /** pino options, or `false` for silence; the default logs JSON lines at info to stdout */
  readonly logger?: FastifyServerOptions['logger']
  /** an existing pino-compatible logger (tests capture lines with it) */
  readonly loggerInstance?: FastifyBaseLogger
  /** timings of trusted-IdP key fetches (defaults: 5 s timeout, 30 s refetch cooldown, 10 min max age) */
  readonly idpKeys?: Partial<KeySourceOptions>
  /** the environment (PORTCULLIS_AUDIT_PSEUDONYM_KEY, PORTCULLIS_SESSION_KEY); default process.env */
  readonly env?: Record<string, string | undefined>
  /** the shared store; default: Redis at store.url, else process memory */
  readonly store?: Store
  /** where the JSON log lines go when neither `logger` nor `loggerInstance` is given; default stdout */
  readonly logDestination?: LogDestination
}

export interface Gateway {
  readonly app: FastifyInstance
  readonly admin: FastifyInstance
  /** the upstreams of the current config */
  readonly registry: UpstreamRegistry
  readonly holder: StateHolder
  readonly metrics: Metrics
  readonly auth: AuthorizationContext
  /** what replicas share (design §7): Redis with store.url, else process memory */
  readonly store: Store
  /** session ids, peer authentication and this replica's advertise URL */
  readonly sessions: Sessions
  /**
   * Swap in a new, already validated config atomically (SIGHUP). Requests in flight finish under
   * the config they started with; unchanged upstreams and their open streams are kept. Returns
   * the paths that need a restart instead (then nothing changed).
   */
  reload (next: Config): Promise<{ applied: boolean; restartNeeded: string[] }>
  /** listen on config.listen and config.admin (port 0 picks free ports); returns the bound URLs */
  listen (): Promise<{ url: string; adminUrl: string }>
  /** stop taking requests, let open ones finish for up to listen.drainTimeoutMs, then close the rest */
  close (): Promise<void>
}

/**
 * Build the gateway for a validated config. No side effects at import or build time: nothing
 * listens, no process is spawned, until `listen()`; only main.ts touches signals and ports.
 */
export function buildGateway (config: Config, deps: GatewayDeps = {}): Gateway {
  /** stdout, unless the caller brings its own logger */
  const stdout = deps.loggerInstance === undefined && deps.logger === undefined ? deps.logDestination ?? stdoutDestination() : undefined
  const app = Fastify({
    ...serverOptions(config),
    ...(deps.loggerInstance === undefined ? { logger: deps.logger ?? loggerOptions(undefined, stdout) } : { loggerInstance: deps.loggerInstance }),
  })
  app.decorateRequest('mcp', null)
  app.decorateRequest('upstream', null)
  const metrics = new Metrics()
  metrics.logLinesDropped(() => stdout?.dropped ?? 0)
  if (stdout !== undefined) {
    stdout.onDropsEnded = (dropped) => {
      app.log.warn({ dropped }, 'log lines dropped: stdout\'s reader fell behind by more than the gateway holds for it (portcullis_log_lines_dropped_total)')
    }
  }
  const env = deps.env ?? process.env
  const redis = deps.store === undefined && config.store !== undefined
    ? new RedisStore({ url: config.store.url, keyPrefix: config.store.keyPrefix, log: app.log })
    : undefined
  const store = deps.store ?? redis ?? new MemoryStore()
  if (config.store !== undefined) metrics.storeUp(() => store.up)
  const sessions = new Sessions(sessionKeysFromEnv(env), store, app.log, config.listen.advertiseUrl)
  if (sessions.ephemeralKey) {
    app.log.warn('PORTCULLIS_SESSION_KEY is not set (or shorter than 32 characters): MCP session ids are sealed with a key only this process knows — ' +
      'sessions end with a restart, and replicas cannot serve each other\'s sessions. Give every replica the same key.')
  }
  const holder = new StateHolder(buildState(config, app.log, metrics, sessions))
  /** upstreams replaced by a reload that may still hold open streams or bridged sessions */
  const retiring = new Set<Upstream>()
  const pseudonyms = createPseudonymizer(env)
  if (pseudonyms.ephemeral) app.log.warn('PORTCULLIS_AUDIT_PSEUDONYM_KEY is not set (or shorter than 32 characters): audit pseudonyms change at every restart and differ between replicas')
  const decisions = new DecisionRing()
  const toolNames = new ListedTools()
  const sink = { metrics, toolNames, log: app.log, audit: auditLogger(app.log), pseudonym: pseudonyms.pseudonym, decisions }
  /** the GET streams open to clients, ended first when the replica drains (kept across reloads) */
  const getStreams = new GetStreams()
  metrics.sessionCounts = () => Object.keys(holder.current.config.servers)
    .map((name): [string, number] => [name, holder.current.upstreams.get(name)?.sessionCount() ?? 0])
  const auth = new AuthorizationContext(config, metrics, deps.idpKeys, { store })
  // Plugins load in order before anything listens: keys first, then the routes that use them.
  void app.register(async function loadSigningKeys () { await auth.loadKeys(app.log) })
  void app.register(mcpRoutes, { config, holder, auth, sink, sessions, getStreams })
  void app.register(peerRoutes, { holder, sessions, maxBodyBytes: config.limits.maxBodyBytes, getStreams })
  void app.register(authorizationServer, { auth, metrics })

  const readiness: Readiness = { ready: false }
  let closing = false
  const admin = buildAdminServer(readiness, metrics, config.admin)
  const reloads = new ReloadHistory()
  const replicas = config.store === undefined ? undefined : new Replicas(store, VERSION)
  void admin.register(consoleRoutes, {
    sources: gatewaySources({ holder, metrics, auth, health: upstreamHealth(metrics), decisions, toolNames, reloads, replicas, traceUrlTemplate: config.admin.traceUrlTemplate }),
  })

  return {
    app,
    admin,
    get registry () { return holder.current.upstreams },
    holder,
    metrics,
    auth,
    store,
    sessions,
    async reload (next) {
      const previous = holder.current
      const restartNeeded = restartOnlyChanges(previous.config, next)
      if (restartNeeded.length > 0) {
        reloads.add(false, restartNeeded)
        return { applied: false, restartNeeded }
      }
      holder.current = buildState(next, app.log, metrics, sessions, previous)
      for (const retired of holder.current.upstreams.retiredFrom(previous.upstreams)) {
        retiring.add(retired)
        retired.retire().catch((err: unknown) => app.log.warn({ err }, 'retiring an upstream failed'))
      }
      reloads.add(true, [])
      return { applied: true, restartNeeded }
    },
    async listen () {
      // Connecting to Redis does not hold up the start: until it answers, grants fail closed (503).
      redis?.start()
      const url = await app.listen({ host: config.listen.host, port: config.listen.port })
      if (config.listen.advertiseUrl === undefined) sessions.self = boundUrl(config.listen.host, app.server.address() as AddressInfo)
      replicas?.start(sessions.self)
      const adminUrl = await admin.listen({ host: config.admin.host, port: config.admin.port })
      // Into the Service once this replica has heard the shared revocations and ended sessions —
      // or, with the store unreachable, after SYNC_WAIT_MS anyway (MCP traffic does not need it, §7).
      let timer: NodeJS.Timeout | undefined
      void Promise.race([store.synced(), new Promise<void>((resolve) => { timer = setTimeout(resolve, SYNC_WAIT_MS) })])
        .then(() => { clearTimeout(timer); if (!closing) readiness.ready = true })
      return { url, adminUrl }
    },
    async close () {
      // The drain: out of the Service first; GET streams end (clients reopen them elsewhere); the
      // listener stops accepting, and requests arriving on open connections get 503; requests in
      // flight — tool calls and their SSE answers — finish, for listen.drainTimeoutMs at most; only
      // then do upstream pools and bridged sessions close.
      closing = true
      readiness.ready = false
      replicas?.stop()
      getStreams.drain()
      const timer = setTimeout(() => app.server.closeAllConnections(), config.listen.drainTimeoutMs)
      timer.unref()
      // A keep-alive connection whose request finishes during the drain would otherwise stay open
      // (keepAliveTimeout) and hold the close until the timeout: close connections as they go idle.
      const idle = setInterval(() => app.server.closeIdleConnections(), 100)
      idle.unref()
      try {
        await app.close()
        clearInterval(idle)
        await holder.current.upstreams.close()
        await Promise.allSettled([...retiring].map((u) => u.close()))
      } finally {
        clearTimeout(timer)
        clearInterval(idle)
        await admin.close()
        await store.close()
      }
    },
  }
}

/** The default advertise URL: the address bound, with an unspecified host (0.0.0.0, ::) as loopback. */
function boundUrl (host: string, address: AddressInfo): string {
  const ip = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${address.port}`
}

/**
 * Buffered writes to stdout: one write(2) per 4 KiB of lines instead of one per line, and at least
 * every 200 ms; flushed when the gateway stops. Synchronous: an asynchronous write waits for a
 * libuv pool thread that competes with the event loop for the same core (test/bench/README.md).
 * A reader that falls behind never stalls a request (log-destination.ts).
 */
function stdoutDestination (): LogDestination {
  return new LogDestination({ fd: 1, minLength: 4096, periodicFlush: 200 })
}

/**
 * Log lines are JSON on stdout. The request URL is logged without its query string (a token
 * there is refused, but must not be logged either), and no header is logged at all.
 */
export function loggerOptions (level = process.env.PORTCULLIS_LOG_LEVEL ?? 'info', stream: LogDestination = stdoutDestination()): FastifyServerOptions['logger'] {
  return {
    level,
    stream,
    serializers: {
      req (req: { method: string; url: string; hostname?: string; remoteAddress?: string }) {
        const q = req.url.indexOf('?')
        return { method: req.method, url: q === -1 ? req.url : req.url.slice(0, q), remoteAddress: req.remoteAddress }
      },
    },
    // No line is built from headers or bodies (the request serializer above drops both), so the
    // redaction is a narrow second line of defence; wildcard paths would cost on every line.
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
  }
}
