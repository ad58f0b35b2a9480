/**
 * The YAML shape of the configuration (design.md §4) as one closed JSON Schema, and its defaults.
 *
 * Closed means `additionalProperties: false` on every object: a misspelt or renamed key is an
 * error, never silently ignored. Shape and defaults live here; rules that relate one field to
 * another live in `checks.ts`. `errorText` is an annotation of ours that replaces ajv's wording
 * for the keyword that failed (see `validate.ts`).
 */
import type { RawUpstream, Transport } from './raw.ts'

/** setTimeout fires at once for delays above 2^31 - 1 ms, so no duration may exceed it. */
export const MAX_TIMER_MS = 2_147_483_647

export const DEFAULTS = {
  listen: {
    host: '0.0.0.0',
    port: 8080,
    allowedOrigins: [],
    drainTimeoutMs: 10_000, // 10 s for open requests and streams after SIGTERM
    trustProxy: [], // addresses of the balancers whose X-Forwarded-For is believed
  },
  store: { keyPrefix: 'portcullis:' },
  limits: {
    maxBodyBytes: 4_194_304, // 4 MiB
    maxStreamsPerPrincipal: 64, // open SSE streams (POST answers and GET streams) of one principal, per server and replica
    upstreamWaitMs: 5_000, // longest wait for an upstream connection before 503 + Retry-After
    headersTimeoutMs: 10_000, // to receive a request's headers
    requestTimeoutMs: 30_000, // to receive a whole request (headers and body); not the response
    streamStallMs: 30_000, // an SSE stream whose client reads nothing for this long is closed
    maxStreamBufferBytes: 1_048_576, // what one stream may hold unread before it is closed at once
  },
  // loopback unless said otherwise: metrics and the console are for the platform, not the world
  admin: { host: '127.0.0.1', port: 9464, metricsRequireToken: false },
  authorization: {
    accessTokenTtlSeconds: 900, // 15 min
    assertion: {
      maxLifetimeSeconds: 600, // 10 min between an ID-JAG's iat and exp
      clockSkewSeconds: 30, // 30 s
    },
    // RFC 7591 §2: token_endpoint_auth_method defaults to client_secret_basic
    clientAuth: 'client_secret_basic',
    algorithms: ['RS256', 'ES256'],
    registration: {
      dynamic: false,
      clientIdMetadataDocuments: false,
      allowedRedirectHosts: ['localhost', '127.0.0.1'],
      maxClients: 10_000, // dynamically registered clients at once (a quota, never an LRU)
      unusedClientTtlSeconds: 2_592_000, // 30 days without a login or token request: the registration expires
    },
    consent: { rememberSeconds: 2_592_000 }, // 30 days per user, client, resource and scopes
    // /oauth/* per client address and per client id (design §4)
    rateLimits: [
      { per: 'address', rate: '120/min' },
      { per: 'client', rate: '600/min' },
      { per: 'address', rate: '20/h', endpoints: ['register'] },
    ],
  },
  server: { scopes: [], mode: 'enforce', auth: 'required' },
  // after this many failures in a row the upstream is not called for halfOpenAfterMs; then one probe
  circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
  streamableHttp: {
    connectTimeoutMs: 5_000, // 5 s
    headersTimeoutMs: 30_000, // 30 s to the upstream's response headers
    bodyTimeoutMs: 0, // no limit: SSE streams stay open and rely on keep-alives
    maxConnections: 1_024, // each open SSE stream holds a connection (undici's default pool is 128)
    tlsVerify: true,
  },
  sse: { connectTimeoutMs: 5_000, headersTimeoutMs: 30_000, tlsVerify: true }, // 5 s, 30 s
  stdio: {
    args: [],
    env: {},
    maxSessions: 32, // child processes at once
    maxSessionsPerPrincipal: 8, // of which one principal may hold
    idleTimeoutMs: 600_000, // 10 min without traffic closes a session
    requestTimeoutMs: 120_000, // 2 min without an answer gives a JSON-RPC timeout error
  },
} as const

/** An IdP signs ID-JAGs with its private key: `none` needs no key at all, and HS* a secret we would share. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const
export const TRANSPORTS: readonly Transport[] = ['streamable-http', 'sse', 'stdio']
/** Which upstream keys each transport understands; any other upstream key is refused by checkUpstream. */
export const UPSTREAM_KEYS = {
  'streamable-http': ['url', 'transport', 'headers', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs', 'maxConnections', 'tlsVerify'],
  sse: ['url', 'transport', 'headers', 'connectTimeoutMs', 'headersTimeoutMs', 'tlsVerify'],
  stdio: ['command', 'transport', 'headers', 'args', 'env', 'cwd', 'maxSessions', 'maxSessionsPerPrincipal', 'idleTimeoutMs', 'requestTimeoutMs'],
} as const

/** Mirrors the schema's if/then/else below, which picks the defaults to apply. */
export function upstreamTransport (upstream: RawUpstream): Transport {
  if (upstream.command !== undefined) return 'stdio'
  return upstream.transport === 'sse' ? 'sse' : 'streamable-http'
}

// --- schema building blocks --------------------------------------------------------------

type Schema = Record<string, unknown>

const text: Schema = { type: 'string', minLength: 1 }
const flag = (value: boolean): Schema => ({ type: 'boolean', default: value })
const int = (minimum: number, maximum: number, value?: number): Schema =>
  value === undefined ? { type: 'integer', minimum, maximum } : { type: 'integer', minimum, maximum, default: value }
const ms = (minimum: number, value?: number): Schema => int(minimum, MAX_TIMER_MS, value)
const port = (value: number): Schema => int(0, 65_535, value)
const list = (items: Schema, value?: readonly unknown[]): Schema => ({ type: 'array', items, ...(value && { default: value }) })
const uniqueList = (items: Schema, value?: readonly unknown[]): Schema => ({ ...list(items, value), uniqueItems: true })
const closed = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  ...extra,
})

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const scopeToken: Schema = { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', errorText: 'must be a scope token (printable ASCII, no spaces or quotes)' }
const CLAIM_NAME = '^[A-Za-z0-9_.-]+$'
const claimName: Schema = { type: 'string', pattern: CLAIM_NAME, errorText: 'must be a claim name ([A-Za-z0-9_.-])' }
/** A list of strings, or one string standing for a list of one. */
const oneOrMore: Schema = { type: ['string', 'array'], minLength: 1, minItems: 1, items: text }

/** The console's link to a trace: an http(s) URL, no credentials, `{traceId}` after the host. */
const traceUrlTemplate: Schema = {
  type: 'string',
  pattern: '^https?://[A-Za-z0-9.:\\[\\]-]+[/?#][\\x21-\\x7E]*\\{traceId\\}[\\x21-\\x7E]*$',
  errorText: 'must be an http(s) URL with {traceId} in its path, query or fragment, e.g. https://grafana.example.com/explore?traceId={traceId}',
}

/** `N/s`, `N/min` or `N/h`: a token bucket of N that refills over that period. */
const rate: Schema = { type: 'string', pattern: '^[1-9][0-9]{0,8}/(s|min|h)$', errorText: 'must be N/s, N/min or N/h (N a positive integer)' }
const serverRateLimit: Schema = closed({
  per: { enum: ['subject', 'client', 'server'] },
  rate,
  tools: { ...uniqueList(text), minItems: 1 },
}, { required: ['per', 'rate'] })
const oauthRateLimit: Schema = closed({
  per: { enum: ['address', 'client'] },
  rate,
  endpoints: { ...uniqueList({ enum: ['token', 'authorize', 'callback', 'register', 'consent'] }), minItems: 1 },
}, { required: ['per', 'rate'] })

const rule: Schema = closed({
  id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$', errorText: 'must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' },
  allow: oneOrMore,
  deny: oneOrMore,
  scopes: uniqueList(scopeToken),
  claims: { type: 'object', propertyNames: claimName, additionalProperties: oneOrMore },
})

const upstream: Schema = closed(
  {
    url: text,
    transport: { enum: [...TRANSPORTS] },
    command: text,
    args: list({ type: 'string' }),
    env: { type: 'object', propertyNames: { pattern: '^[^=\\x00]+$', errorText: 'must be an environment variable name' }, additionalProperties: { type: 'string' } },
    cwd: text,
    headers: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    connectTimeoutMs: ms(1),
    headersTimeoutMs: ms(1),
    bodyTimeoutMs: ms(0),
    maxConnections: int(1, 65_536),
    tlsVerify: { type: 'boolean' },
    maxSessions: int(1, 65_536),
    maxSessionsPerPrincipal: int(1, 65_536),
    idleTimeoutMs: ms(1),
    requestTimeoutMs: ms(1),
  },
  {
    // ajv applies defaults inside then/else (not inside if/anyOf/oneOf), so the transport picks them.
    if: { properties: { command: true }, required: ['command'] },
    then: { type: 'object', properties: defaultsFor(DEFAULTS.stdio) },
    else: {
      if: { properties: { transport: { const: 'sse' } }, required: ['transport'] },
      then: { type: 'object', properties: defaultsFor(DEFAULTS.sse) },
      else: { type: 'object', properties: defaultsFor(DEFAULTS.streamableHttp) },
    },
  }
)

function defaultsFor (values: Record<string, unknown>): Record<string, Schema> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, { default: value }]))
}

const server: Schema = closed(
  {
    upstream,
    scopes: uniqueList(scopeToken, DEFAULTS.server.scopes),
    tools: list(rule),
    prompts: list(rule),
    resources: list(rule),
    mode: { enum: ['enforce', 'shadow'], default: DEFAULTS.server.mode },
    auth: { enum: ['required', 'none'], default: DEFAULTS.server.auth },
    rateLimits: list(serverRateLimit, []),
    circuitBreaker: closed({
      consecutiveFailures: int(1, 10_000, DEFAULTS.circuitBreaker.consecutiveFailures),
      halfOpenAfterMs: ms(100, DEFAULTS.circuitBreaker.halfOpenAfterMs),
    }, { default: {} }),
  },
  { required: ['upstream'] }
)

/** RFC 7517/7518 public JWK members; private ones (`d`, `p`, `k`, …) have no place in a client's config. */
const publicJwk: Schema = closed(
  Object.fromEntries(
    ['use', 'alg', 'kid', 'x5u', 'x5t', 'x5t#S256', 'crv', 'x', 'y', 'n', 'e']
      .map((name): [string, Schema] => [name, { type: 'string' }])
      .concat([
        ['kty', { enum: ['RSA', 'EC', 'OKP'], errorText: 'must be RSA, EC or OKP (public keys only)' }],
        ['key_ops', list({ type: 'string' })],
        ['x5c', list({ type: 'string' })],
      ])
  ),
  { required: ['kty'] }
)

const client: Schema = closed(
  {
    clientId: text,
    auth: { enum: [...CLIENT_AUTH_METHODS], default: DEFAULTS.authorization.clientAuth },
    secret: text,
    jwksUri: text,
    jwks: closed({ keys: { ...list(publicJwk), minItems: 1 } }, { required: ['keys'] }),
    redirectUris: uniqueList(text, []),
  },
  { required: ['clientId'] }
)

const identityProvider: Schema = closed(
  {
    issuer: text,
    jwksUri: text,
    algorithms: {
      ...uniqueList({ enum: [...ASYMMETRIC_ALGORITHMS], errorText: `must be an asymmetric algorithm (${ASYMMETRIC_ALGORITHMS.join(', ')}); none and HS* are refused` }, DEFAULTS.authorization.algorithms),
      minItems: 1,
    },
    allowedClients: { ...uniqueList(text), minItems: 1 },
    claims: { type: 'object', propertyNames: claimName, additionalProperties: claimName, default: {} },
    login: closed({ clientId: text, clientSecret: text }, { required: ['clientId'] }),
  },
  { required: ['issuer'] }
)

const { registration, assertion } = DEFAULTS.authorization

export const configSchema: Schema = closed(
  {
    publicUrl: text,
    listen: closed(
      {
        host: { ...text, default: DEFAULTS.listen.host },
        port: port(DEFAULTS.listen.port),
        allowedOrigins: uniqueList(text, DEFAULTS.listen.allowedOrigins),
        drainTimeoutMs: ms(0, DEFAULTS.listen.drainTimeoutMs),
        advertiseUrl: text,
        trustProxy: uniqueList({ type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$', errorText: 'must be an IP address or CIDR range' }, DEFAULTS.listen.trustProxy),
      },
      { default: {} }
    ),
    limits: closed({
      maxBodyBytes: int(1, Number.MAX_SAFE_INTEGER, DEFAULTS.limits.maxBodyBytes),
      maxStreamsPerPrincipal: int(1, 1_000_000, DEFAULTS.limits.maxStreamsPerPrincipal),
      upstreamWaitMs: ms(1, DEFAULTS.limits.upstreamWaitMs),
      headersTimeoutMs: ms(1, DEFAULTS.limits.headersTimeoutMs),
      requestTimeoutMs: ms(1, DEFAULTS.limits.requestTimeoutMs),
      streamStallMs: ms(100, DEFAULTS.limits.streamStallMs),
      maxStreamBufferBytes: int(65_536, 1_073_741_824, DEFAULTS.limits.maxStreamBufferBytes),
    }, { default: {} }),
    admin: closed({
      host: { ...text, default: DEFAULTS.admin.host },
      port: port(DEFAULTS.admin.port),
      token: { type: 'string', minLength: 32, errorText: 'must be at least 32 characters' },
      metricsRequireToken: flag(DEFAULTS.admin.metricsRequireToken),
      traceUrlTemplate,
    }, { default: {} }),
    authorization: closed(
      {
        issuer: text,
        signingKeys: text,
        accessTokenTtlSeconds: int(1, 86_400, DEFAULTS.authorization.accessTokenTtlSeconds),
        assertion: closed(
          {
            maxLifetimeSeconds: int(1, 86_400, assertion.maxLifetimeSeconds),
            clockSkewSeconds: int(0, 60, assertion.clockSkewSeconds),
          },
          { default: {} }
        ),
        clients: list(client, []),
        identityProviders: list(identityProvider, []),
        registration: closed(
          {
            dynamic: flag(registration.dynamic),
            clientIdMetadataDocuments: flag(registration.clientIdMetadataDocuments),
            allowedRedirectHosts: uniqueList(
              { type: 'string', pattern: '^(?:[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*|\\[[0-9A-Fa-f:.]+\\])$', errorText: 'must be a host name or IP address, without scheme or port' },
              registration.allowedRedirectHosts
            ),
            maxClients: int(0, 10_000_000, registration.maxClients),
            unusedClientTtlSeconds: int(60, 315_360_000, registration.unusedClientTtlSeconds),
          },
          { default: {} }
        ),
        consent: closed({ rememberSeconds: int(0, 315_360_000, DEFAULTS.authorization.consent.rememberSeconds) }, { default: {} }),
        rateLimits: list(oauthRateLimit, DEFAULTS.authorization.rateLimits),
      },
      { default: {} }
    ),
    store: closed({
      url: text,
      keyPrefix: { type: 'string', pattern: '^[\\x21-\\x7e]{0,64}$', default: DEFAULTS.store.keyPrefix, errorText: 'must be at most 64 visible ASCII characters' },
    }, { required: ['url'] }),
    servers: { type: 'object', additionalProperties: server, minProperties: 1 },
  },
  { required: ['publicUrl', 'servers'] }
)
