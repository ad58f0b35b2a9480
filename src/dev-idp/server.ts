/**
 * `buildDevIdp`: the dev IdP (design.md §8) as a Fastify app. One route per plugin; nothing
 * listens until `listen()`. Keys are generated (or read from `signing.keysFile`) here, so
 * building is asynchronous.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { JSONWebKeySet, JWTPayload } from 'jose'
import { authorizeRoute } from './authorize.ts'
import type { DevIdpConfig } from './config.ts'
import { createContext } from './context.ts'
import { discoveryRoutes } from './discovery.ts'
import { jwksRoute } from './jwks.ts'
import { loadSigningKeys } from './keys.ts'
import { TYP_ID_JAG } from './oauth.ts'
import { TOKEN_BODY_LIMIT, tokenRoute } from './token-endpoint.ts'

export interface DevIdpDeps {
  /** pino options, or `false` for silence; default: JSON lines at info to stdout */
  readonly logger?: FastifyServerOptions['logger']
  /** an existing pino-compatible logger */
  readonly loggerInstance?: FastifyBaseLogger
}

export interface DevIdp {
  readonly app: FastifyInstance
  /** the issuer identifier; without `issuer` in the config and with port 0, known only after listen() */
  readonly issuer: string
  /** the public JWKS served at /jwks */
  readonly jwks: JSONWebKeySet
  /** listens on config.listen; returns the bound URL */
  listen (): Promise<string>
  close (): Promise<void>
  /** test hook: signs exactly `claims` with the current key; header defaults to `{alg, kid, typ: oauth-id-jag+jwt}` */
  signIdJag (claims: JWTPayload, header?: Record<string, unknown>): Promise<string>
  /** test hook: signs exactly `claims` as an ID token (`typ: JWT`) with the current key */
  signIdToken (claims: JWTPayload): Promise<string>
}

export async function buildDevIdp (config: DevIdpConfig, deps: DevIdpDeps = {}): Promise<DevIdp> {
  const keys = await loadSigningKeys(config.signing.alg, config.signing.keysFile)
  let boundUrl: string | undefined
  const { host, port } = config.listen
  const configured = config.issuer ?? (port === 0 ? undefined : `http://${host.includes(':') ? `[${host}]` : host}:${port}`)
  const issuer = (): string => {
    const value = configured ?? boundUrl
    if (value === undefined) throw new Error('the dev IdP issuer is known only once it listens (port 0 and no issuer configured)')
    return value
  }
  const ctx = createContext(config, keys, issuer)

  const app = Fastify({
    ...(deps.loggerInstance === undefined ? { logger: deps.logger ?? devIdpLoggerOptions() } : { loggerInstance: deps.loggerInstance }),
    bodyLimit: TOKEN_BODY_LIMIT,
    requestIdHeader: false,
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    routerOptions: { ignoreTrailingSlash: false },
  })
  void app.register(discoveryRoutes, { ctx })
  void app.register(jwksRoute, { ctx })
  void app.register(tokenRoute, { ctx })
  void app.register(authorizeRoute, { ctx })

  return {
    app,
    get issuer () { return issuer() },
    jwks: keys.jwks,
    async listen () {
      const address = await app.listen({ host, port })
      boundUrl = address
      return address
    },
    async close () { await app.close() },
    signIdJag: async (claims, header = {}) => await keys.sign(claims, TYP_ID_JAG, header),
    signIdToken: async (claims) => await keys.sign(claims, 'JWT'),
  }
}

/**
 * JSON log lines. No header is logged and the URL loses its query string; the redaction paths
 * are a second line of defence: no route logs a body, password, secret or token.
 */
export function devIdpLoggerOptions (level = process.env['PORTCULLIS_LOG_LEVEL'] ?? 'info', stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  return {
    level,
    ...(stream !== undefined && { stream }),
    serializers: {
      req (req: { method: string; url: string; remoteAddress?: string }) {
        const q = req.url.indexOf('?')
        return { method: req.method, url: q === -1 ? req.url : req.url.slice(0, q), remoteAddress: req.remoteAddress }
      },
    },
    redact: {
      paths: ['req.headers', '*.authorization', '*.password', '*.secret', '*.client_secret', '*.subject_token',
        '*.access_token', '*.id_token', '*.assertion', '*.body'],
      censor: '[redacted]',
    },
  }
}
