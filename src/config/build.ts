/**
 * From the validated YAML to the typed `Config` (types.ts), and the warnings printed at start.
 *
 * Runs only when the schema and every check passed. Every map keyed by a name from the file
 * (servers, headers, env, claims) has a null prototype, so that looking up a request's
 * server name such as `constructor` finds nothing rather than Object.prototype's members.
 */
import type { Config, PolicyRule, Rate, ServerConfig, UpstreamConfig } from './types.ts'
import { RESERVED_CLAIMS } from './checks.ts'
import { formatPath } from './errors.ts'
import { isLoopback } from './urls.ts'
import type { RawConfig, RawRule, RawServer, RawUpstream, StringOrList } from './raw.ts'
import { upstreamTransport } from './schema.ts'

export function buildConfig (raw: RawConfig, source: string): Config {
  // design.md §4: publicUrl is the base of every resource id, so it carries no trailing slash
  const publicUrl = raw.publicUrl.endsWith('/') ? raw.publicUrl.slice(0, -1) : raw.publicUrl
  const { authorization: auth } = raw
  return {
    publicUrl,
    listen: { ...raw.listen, allowedOrigins: [...raw.listen.allowedOrigins], advertiseUrl: raw.listen.advertiseUrl?.replace(/\/+$/, ''), trustProxy: [...raw.listen.trustProxy] },
    limits: { ...raw.limits },
    admin: { host: raw.admin.host, port: raw.admin.port, token: raw.admin.token, metricsRequireToken: raw.admin.metricsRequireToken, traceUrlTemplate: raw.admin.traceUrlTemplate },
    authorization: {
      issuer: auth.issuer ?? publicUrl,
      signingKeys: auth.signingKeys,
      accessTokenTtlSeconds: auth.accessTokenTtlSeconds,
      assertion: { ...auth.assertion },
      clients: auth.clients.map((client) => ({
        clientId: client.clientId,
        auth: client.auth,
        secret: client.secret,
        jwksUri: client.jwksUri,
        jwks: client.jwks === undefined ? undefined : { keys: client.jwks.keys.map((key) => ({ ...key })) },
        redirectUris: [...client.redirectUris],
      })),
      identityProviders: auth.identityProviders.map((idp) => ({
        issuer: idp.issuer,
        jwksUri: idp.jwksUri,
        algorithms: [...idp.algorithms],
        allowedClients: idp.allowedClients === undefined ? undefined : [...idp.allowedClients],
        claims: record(Object.entries(idp.claims)),
        login: idp.login === undefined ? undefined : { clientId: idp.login.clientId, clientSecret: idp.login.clientSecret },
      })),
      registration: { ...auth.registration, allowedRedirectHosts: [...auth.registration.allowedRedirectHosts] },
      consent: { ...auth.consent },
      rateLimits: auth.rateLimits.map((limit) => ({ ...parseRate(limit.rate), per: limit.per, endpoints: limit.endpoints === undefined ? undefined : [...limit.endpoints] })),
    },
    store: raw.store === undefined ? undefined : { url: raw.store.url, keyPrefix: raw.store.keyPrefix },
    servers: record(Object.entries(raw.servers).map(([name, server]) => [name, buildServer(name, server, publicUrl)])),
    source,
  }
}

function buildServer (name: string, server: RawServer, publicUrl: string): ServerConfig {
  return {
    name,
    resource: `${publicUrl}/mcp/${name}`,
    upstream: buildUpstream(server.upstream),
    scopes: [...server.scopes],
    tools: buildRules(server.tools, 'tools'),
    prompts: buildRules(server.prompts, 'prompts'),
    resources: buildRules(server.resources, 'resources'),
    mode: server.mode,
    auth: server.auth,
    rateLimits: server.rateLimits.map((limit) => ({ ...parseRate(limit.rate), per: limit.per, tools: limit.tools === undefined ? undefined : [...limit.tools] })),
    circuitBreaker: { ...server.circuitBreaker },
  }
}

const PERIOD_SECONDS = { s: 1, min: 60, h: 3600 } as const

/** `N/s`, `N/min`, `N/h` (the schema checked the shape). */
export function parseRate (rate: string): Rate {
  const [n, unit] = rate.split('/') as [string, keyof typeof PERIOD_SECONDS]
  return { rate, points: Number(n), durationSeconds: PERIOD_SECONDS[unit] }
}

function buildRules (rules: RawRule[] | undefined, list: string): PolicyRule[] | undefined {
  return rules?.map((rule, i) => ({
    id: rule.id ?? `${list}[${i}]`,
    effect: rule.allow === undefined ? 'deny' : 'allow',
    names: toList(rule.allow ?? rule.deny ?? []),
    scopes: [...(rule.scopes ?? [])],
    claims: record(Object.entries(rule.claims ?? {}).map(([claim, values]) => [claim, toList(values)])),
  }))
}

function buildUpstream (upstream: RawUpstream): UpstreamConfig {
  const headers = record(Object.entries(upstream.headers))
  const transport = upstreamTransport(upstream)
  switch (transport) {
    case 'stdio':
      return {
        transport,
        headers,
        command: defaulted(upstream.command),
        args: [...defaulted(upstream.args)],
        env: record(Object.entries(defaulted(upstream.env))),
        cwd: upstream.cwd,
        maxSessions: defaulted(upstream.maxSessions),
        maxSessionsPerPrincipal: defaulted(upstream.maxSessionsPerPrincipal),
        idleTimeoutMs: defaulted(upstream.idleTimeoutMs),
        requestTimeoutMs: defaulted(upstream.requestTimeoutMs),
      }
    case 'sse':
      return {
        transport,
        headers,
        url: defaulted(upstream.url),
        connectTimeoutMs: defaulted(upstream.connectTimeoutMs),
        headersTimeoutMs: defaulted(upstream.headersTimeoutMs),
        tlsVerify: defaulted(upstream.tlsVerify),
      }
    case 'streamable-http':
      return {
        transport,
        headers,
        url: defaulted(upstream.url),
        connectTimeoutMs: defaulted(upstream.connectTimeoutMs),
        headersTimeoutMs: defaulted(upstream.headersTimeoutMs),
        bodyTimeoutMs: defaulted(upstream.bodyTimeoutMs),
        maxConnections: defaulted(upstream.maxConnections),
        tlsVerify: defaulted(upstream.tlsVerify),
      }
  }
}

/** The schema's defaults (and checkUpstream) guarantee these; a miss is a bug in schema.ts. */
function defaulted<T> (value: T | undefined): T {
  if (value === undefined) throw new Error('portcullis: a schema default is missing for an upstream field')
  return value
}

function toList (value: StringOrList): string[] {
  return typeof value === 'string' ? [value] : [...value]
}

function record<T> (entries: Iterable<readonly [string, T]>): Record<string, T> {
  const out: Record<string, T> = Object.create(null)
  for (const [key, value] of entries) out[key] = value
  return out
}

export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/** Things that are allowed but that an operator should know about, printed at start and by `check`. */
export function configWarnings (config: Config): string[] {
  const warnings: string[] = []
  if (config.authorization.signingKeys === undefined) {
    warnings.push('authorization.signingKeys is not set: an ephemeral signing key is used, and tokens do not survive a restart')
  }
  if (!isLoopback(config.admin.host) && config.admin.token === undefined) {
    warnings.push(`admin.host is ${config.admin.host} and admin.token is not set: anyone who reaches port ${config.admin.port} reads the metrics and the console`)
  }
  const url = new URL(config.publicUrl)
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) warnings.push('publicUrl is http on a non-loopback host: tokens travel in clear text')
  const { registration } = config.authorization
  if ((registration.dynamic || registration.clientIdMetadataDocuments) && !config.authorization.identityProviders.some((idp) => idp.login !== undefined)) {
    warnings.push('authorization.registration lets clients register, but no identity provider has login: they have nothing to log in to')
  }
  const mappedClaims = new Set([...RESERVED_CLAIMS, ...config.authorization.identityProviders.flatMap((idp) => Object.keys(idp.claims))])
  for (const server of Object.values(config.servers)) {
    const at = formatPath(['servers', server.name])
    if (server.auth === 'none') warnings.push(`${at}.auth is none: requests are not authenticated`)
    if (server.tools === undefined) warnings.push(`${at}.tools is absent: no tool is allowed`)
    if (server.mode === 'shadow') warnings.push(`${at}.mode is shadow: policy decisions are logged but not enforced`)
    if (server.upstream.transport !== 'stdio' && !server.upstream.tlsVerify) warnings.push(`${at}.upstream.tlsVerify is false: the upstream's certificate is not verified`)
    for (const list of ['tools', 'prompts', 'resources'] as const) {
      for (const rule of server[list] ?? []) {
        for (const claim of Object.keys(rule.claims)) {
          if (!mappedClaims.has(claim)) warnings.push(`${at}.${list} rule ${rule.id} needs claim ${claim}, which no identity provider maps: it never matches`)
        }
      }
    }
  }
  return warnings
}
