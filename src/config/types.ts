/**
 * The validated, defaulted, frozen configuration (design.md §4).
 *
 * Only `config/load.ts` produces values of these types; every other module
 * receives them already checked. Durations carry their unit in the name.
 */

export interface Config {
  /** Base of every resource id and of the issuer; no trailing slash. */
  readonly publicUrl: string
  readonly listen: ListenConfig
  readonly limits: LimitsConfig
  readonly admin: AdminConfig
  readonly authorization: AuthorizationConfig
  readonly store: StoreConfig | undefined
  readonly servers: Readonly<Record<string, ServerConfig>>
  /** Where the config was read from (a path, or `<inline>`), for messages. */
  readonly source: string
}

export interface ListenConfig {
  readonly host: string
  readonly port: number
  /** Browser Origins accepted besides publicUrl's origin (exact `scheme://host[:port]`). */
  readonly allowedOrigins: readonly string[]
  /** Extension: how long SIGTERM waits for open requests and streams before closing them. Default 10000. */
  readonly drainTimeoutMs: number
  /**
   * How other replicas reach this one (design §7): a bridged session lives where its process or
   * stream lives, and the other replicas forward its requests here. Default: http://{host}:{port}
   * as bound (an unspecified host becomes loopback); in Kubernetes http://$(POD_IP):8080.
   */
  readonly advertiseUrl: string | undefined
  /**
   * The balancers (IP addresses or CIDR ranges) whose X-Forwarded-For is believed when the gateway
   * needs a client's address (the /oauth/* limits); default none: the peer address counts.
   */
  readonly trustProxy: readonly string[]
}

export interface LimitsConfig {
  /** Largest MCP request body accepted (default 4 MiB); larger → 413. */
  readonly maxBodyBytes: number
  /** Open SSE streams one principal may hold per server on one replica (default 64); more → 429. */
  readonly maxStreamsPerPrincipal: number
  /** Longest wait for a connection to an upstream (default 5 s); longer → 503 + Retry-After. */
  readonly upstreamWaitMs: number
  /** To receive a request's headers (default 10 s). */
  readonly headersTimeoutMs: number
  /** To receive a whole request, headers and body (default 30 s); responses (streams) are not bounded by it. */
  readonly requestTimeoutMs: number
  /** An SSE stream whose client reads nothing for this long is closed (default 30 s). */
  readonly streamStallMs: number
  /** Unread bytes one stream may hold before it is closed at once (default 1 MiB). */
  readonly maxStreamBufferBytes: number
}

export interface AdminConfig {
  /** default 127.0.0.1 */
  readonly host: string
  readonly port: number
  /** a bearer token for everything on the admin listener but /healthz, /readyz and (unless metricsRequireToken) /metrics */
  readonly token: string | undefined
  readonly metricsRequireToken: boolean
  /** the console links each trace id to this URL, `{traceId}` replaced (e.g. Grafana's explore) */
  readonly traceUrlTemplate: string | undefined
}

/** A token bucket: `points` requests per `durationSeconds`, refilled continuously. */
export interface Rate {
  /** as written in the config: `N/s`, `N/min`, `N/h` */
  readonly rate: string
  readonly points: number
  readonly durationSeconds: number
}

export type OAuthEndpoint = 'token' | 'authorize' | 'callback' | 'register' | 'consent'

/** `authorization.rateLimits`: /oauth/* per client address or per client id. */
export interface OAuthRateLimit extends Rate {
  readonly per: 'address' | 'client'
  /** the endpoints that count (undefined: all of /oauth/*) */
  readonly endpoints: readonly OAuthEndpoint[] | undefined
}

/** `servers.*.rateLimits`: per subject, client or the whole server; optionally only calls to some tools. */
export interface ServerRateLimit extends Rate {
  readonly per: 'subject' | 'client' | 'server'
  /** tool names or globs whose calls count (undefined: every request to the server) */
  readonly tools: readonly string[] | undefined
}

/** `none`: a public client (no secret), accepted only for the authorization-code grant, never for jwt-bearer. */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'

export interface ClientConfig {
  readonly clientId: string
  readonly auth: ClientAuthMethod
  readonly secret: string | undefined
  readonly jwksUri: string | undefined
  readonly jwks: { readonly keys: readonly Readonly<Record<string, unknown>>[] } | undefined
  /** exact redirect URIs for the federated authorization-code login (default: none, so no browser login) */
  readonly redirectUris: readonly string[]
}

export interface IdentityProviderConfig {
  readonly issuer: string
  readonly jwksUri: string | undefined
  readonly algorithms: readonly string[]
  readonly allowedClients: readonly string[] | undefined
  /** access-token claim name → ID-JAG claim name */
  readonly claims: Readonly<Record<string, string>>
  readonly login: { readonly clientId: string; readonly clientSecret: string | undefined } | undefined
}

export interface AuthorizationConfig {
  /** Defaults to publicUrl. Published byte-identically everywhere. */
  readonly issuer: string
  readonly signingKeys: string | undefined
  readonly accessTokenTtlSeconds: number
  readonly assertion: { readonly maxLifetimeSeconds: number; readonly clockSkewSeconds: number }
  readonly clients: readonly ClientConfig[]
  readonly identityProviders: readonly IdentityProviderConfig[]
  readonly registration: {
    readonly dynamic: boolean
    readonly clientIdMetadataDocuments: boolean
    readonly allowedRedirectHosts: readonly string[]
    /** dynamically registered clients at once (a quota: the next registration is refused) */
    readonly maxClients: number
    /** a dynamic client not used for this long expires */
    readonly unusedClientTtlSeconds: number
  }
  /** the consent page for clients the operator did not register (design §5) */
  readonly consent: { readonly rememberSeconds: number }
  readonly rateLimits: readonly OAuthRateLimit[]
}

export interface StoreConfig {
  /** redis:// or rediss://, credentials in the URL */
  readonly url: string
  /** prepended to every key (default `portcullis:`) */
  readonly keyPrefix: string
}

export type PolicyMode = 'enforce' | 'shadow'
export type ServerAuth = 'required' | 'none'

export interface PolicyRule {
  /** explicit `id`, or derived as `tools[2]` */
  readonly id: string
  readonly effect: 'allow' | 'deny'
  /** exact names or globs (`*` matches any run of characters, `?` one character) */
  readonly names: readonly string[]
  /** token must hold every listed scope */
  readonly scopes: readonly string[]
  /** claim name → accepted values; the claim must contain one of them */
  readonly claims: Readonly<Record<string, readonly string[]>>
}

export interface ServerConfig {
  readonly name: string
  /** `{publicUrl}/mcp/{name}` */
  readonly resource: string
  readonly upstream: UpstreamConfig
  readonly scopes: readonly string[]
  /** undefined = no tools allowed (warned at start) */
  readonly tools: readonly PolicyRule[] | undefined
  /** undefined = allowed to anyone authorized for the server */
  readonly prompts: readonly PolicyRule[] | undefined
  readonly resources: readonly PolicyRule[] | undefined
  readonly mode: PolicyMode
  readonly auth: ServerAuth
  readonly rateLimits: readonly ServerRateLimit[]
  /** failures in a row (refused, timeout, 5xx, 401) after which calls fail fast for halfOpenAfterMs, then one probe */
  readonly circuitBreaker: { readonly consecutiveFailures: number; readonly halfOpenAfterMs: number }
}

interface UpstreamCommon {
  /** Sent upstream; `${ENV}` already substituted; `{{claim}}` templates remain for per-request expansion. */
  readonly headers: Readonly<Record<string, string>>
}

export interface StreamableHttpUpstream extends UpstreamCommon {
  readonly transport: 'streamable-http'
  readonly url: string
  readonly connectTimeoutMs: number
  /** time to the upstream's response headers */
  readonly headersTimeoutMs: number
  /** longest silence inside a response body (0 = none; SSE streams rely on keep-alives) */
  readonly bodyTimeoutMs: number
  /** upstream connections kept per gateway process (each open SSE stream holds one) */
  readonly maxConnections: number
  /** verify the upstream's TLS certificate (https only); default true */
  readonly tlsVerify: boolean
}

export interface SseUpstream extends UpstreamCommon {
  readonly transport: 'sse'
  /** the upstream's GET SSE endpoint */
  readonly url: string
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly tlsVerify: boolean
}

export interface StdioUpstream extends UpstreamCommon {
  readonly transport: 'stdio'
  readonly command: string
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string | undefined
  /** at most this many child processes (one per client session) at once */
  readonly maxSessions: number
  /** of which one principal may hold this many */
  readonly maxSessionsPerPrincipal: number
  /** a session with no traffic for this long is closed and its process killed */
  readonly idleTimeoutMs: number
  /** a request without an answer for this long gets a JSON-RPC timeout error */
  readonly requestTimeoutMs: number
}

export type UpstreamConfig = StreamableHttpUpstream | SseUpstream | StdioUpstream
