/**
 * Cross-field rules that a JSON Schema cannot say, one named function each (the way
 * node-oidc-provider's configuration runs its `check*()` list), so a report says which rule fired.
 *
 * The checks run even when the schema found problems, so that one run reports everything; each
 * one first asks `ctx.valid(path)` and skips any part whose shape the schema did not accept.
 * Messages never repeat a value (it may be a secret, or come from `${ENV}`): the path says where.
 */
import type { PathSegment } from './errors.ts'
import { formatPath } from './errors.ts'
import { isIP } from 'node:net'
import { isLoopback, parseUrl, withoutSlash } from './urls.ts'
import type { RawConfig, RawRule, RawServer } from './raw.ts'
import { UPSTREAM_KEYS, upstreamTransport } from './schema.ts'

export interface CheckContext {
  report(path: readonly PathSegment[], message: string): void
  /**
   * The schema accepted the value at `path` and everything above it, and (unless `shallow`)
   * everything below it: only then may a check rely on the declared types there.
   */
  valid(path: readonly PathSegment[], opts?: { shallow?: boolean }): boolean
}

type Check = (config: RawConfig, ctx: CheckContext) => void

export const CHECKS: readonly Check[] = [
  checkPublicUrl,
  checkIssuer,
  checkListeners,
  checkAllowedOrigins,
  checkTrustedUrls,
  checkClients,
  checkIdentityProviders,
  checkStore,
  checkAdvertiseUrl,
  checkTrustProxy,
  checkServerNames,
  checkUpstream,
  checkHeaders,
  checkRuleEffects,
  checkPolicyIds,
  checkRuleScopes,
]

export function runChecks (config: RawConfig, ctx: CheckContext): void {
  for (const check of CHECKS) check(config, ctx)
}

export const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** Claims every access token carries; an identity-provider mapping must not overwrite them. */
export const RESERVED_CLAIMS = ['iss', 'aud', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp', 'nbf', 'idp_iss', 'cnf', 'act', 'may_act']

export function checkPublicUrl (config: RawConfig, ctx: CheckContext): void {
  if (ctx.valid(['publicUrl'])) checkOwnUrl(config.publicUrl, ['publicUrl'], ctx)
}

export function checkIssuer (config: RawConfig, ctx: CheckContext): void {
  const issuer = ctx.valid(['authorization', 'issuer']) ? config.authorization.issuer : undefined
  if (issuer !== undefined) checkOwnUrl(issuer, ['authorization', 'issuer'], ctx)
}

/** Our own URLs are compared byte for byte by clients, so they must already be in WHATWG form. */
function checkOwnUrl (value: string, path: readonly PathSegment[], ctx: CheckContext): void {
  const url = parseUrl(value)
  if (url === undefined) return ctx.report(path, 'must be an absolute http(s) URL')
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return ctx.report(path, 'must be an http or https URL')
  if (url.username !== '' || url.password !== '') return ctx.report(path, 'must not contain credentials')
  if (value.includes('?')) return ctx.report(path, 'must not have a query')
  if (value.includes('#')) return ctx.report(path, 'must not have a fragment')
  if (withoutSlash(url.href) !== withoutSlash(value)) {
    ctx.report(path, 'must be in canonical form (lower-case scheme and host, no default port, no dot segments)')
  }
}

export function checkListeners (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['listen', 'port']) || !ctx.valid(['admin', 'port'])) return
  if (config.listen.port !== 0 && config.listen.port === config.admin.port) {
    ctx.report(['admin', 'port'], 'must differ from listen.port')
  }
}

export function checkAllowedOrigins (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['listen', 'allowedOrigins'])) return
  config.listen.allowedOrigins.forEach((origin, i) => {
    const url = parseUrl(origin)
    if (url === undefined || url.origin === 'null' || url.origin !== origin) {
      ctx.report(['listen', 'allowedOrigins', i], 'must be an origin, scheme://host[:port], with no path or trailing slash')
    }
  })
}

/** design.md §5: trusted issuers and JWKS URLs must be https, except on loopback addresses. */
export function checkTrustedUrls (config: RawConfig, ctx: CheckContext): void {
  const checkTrusted = (value: string | undefined, path: readonly PathSegment[], isIssuer: boolean): void => {
    if (value === undefined || !ctx.valid(path)) return
    const url = parseUrl(value)
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) return ctx.report(path, 'must be an absolute https URL')
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      return ctx.report(path, 'must be https (http is accepted only on loopback hosts: 127.0.0.0/8, ::1, localhost)')
    }
    if (url.username !== '' || url.password !== '') return ctx.report(path, 'must not contain credentials')
    // RFC 8414 §2: an issuer identifier has no query or fragment components
    if (isIssuer && (value.includes('?') || value.includes('#'))) ctx.report(path, 'must not have a query or fragment')
  }
  const idps = ['authorization', 'identityProviders']
  eachValid(ctx, idps, () => config.authorization.identityProviders, (idp, at) => {
    checkTrusted(idp.issuer, [...at, 'issuer'], true)
    checkTrusted(idp.jwksUri, [...at, 'jwksUri'], false)
  }, true)
  const clients = ['authorization', 'clients']
  eachValid(ctx, clients, () => config.authorization.clients, (client, at) => checkTrusted(client.jwksUri, [...at, 'jwksUri'], false), true)
}

/** Visits the items of the list at `path` that the schema accepted, skipping the others. */
function eachValid<T> (
  ctx: CheckContext,
  path: readonly PathSegment[],
  items: () => readonly T[],
  visit: (item: T, at: PathSegment[], index: number) => void,
  shallow = false
): void {
  if (!ctx.valid(path, { shallow: true })) return
  items().forEach((item, i) => {
    if (ctx.valid([...path, i], { shallow })) visit(item, [...path, i], i)
  })
}

export function checkClients (config: RawConfig, ctx: CheckContext): void {
  const at = ['authorization', 'clients']
  const seen = new Map<string, number>()
  eachValid(ctx, at, () => config.authorization.clients, (client, _path, i) => {
    const first = seen.get(client.clientId)
    if (first === undefined) seen.set(client.clientId, i)
    else ctx.report([...at, i, 'clientId'], `duplicates ${formatPath([...at, first, 'clientId'])}`)
    if (client.auth === 'private_key_jwt') {
      if (client.secret !== undefined) ctx.report([...at, i, 'secret'], 'is not used with private_key_jwt')
      if ((client.jwksUri === undefined) === (client.jwks === undefined)) {
        ctx.report([...at, i], 'private_key_jwt needs exactly one of jwksUri or jwks')
      }
    } else if (client.auth === 'none') {
      // a public client: nothing to authenticate with, so only the PKCE-bound authorization code
      for (const key of ['secret', 'jwksUri', 'jwks'] as const) {
        if (client[key] !== undefined) ctx.report([...at, i, key], 'is not used by a public client (auth: none)')
      }
      if (client.redirectUris.length === 0) ctx.report([...at, i, 'redirectUris'], 'is required for a public client (auth: none): it can only log in through a browser')
    } else {
      if (client.secret === undefined) ctx.report([...at, i, 'secret'], `is required for ${client.auth}`)
      for (const key of ['jwksUri', 'jwks'] as const) {
        if (client[key] !== undefined) ctx.report([...at, i, key], 'is only used with private_key_jwt')
      }
    }
    client.redirectUris.forEach((uri, j) => checkRedirectUri(uri, [...at, i, 'redirectUris', j], ctx))
  })
}

/** OAuth 2.1 §2.3: absolute, no fragment; https, or http on a loopback host (RFC 8252 §7.3). Compared exactly at login. */
function checkRedirectUri (value: string, path: readonly PathSegment[], ctx: CheckContext): void {
  const url = parseUrl(value)
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) return ctx.report(path, 'must be an absolute http(s) URL')
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) return ctx.report(path, 'must be https (http is accepted only on loopback hosts)')
  if (url.username !== '' || url.password !== '') return ctx.report(path, 'must not contain credentials')
  if (value.includes('#')) ctx.report(path, 'must not have a fragment')
}

export function checkIdentityProviders (config: RawConfig, ctx: CheckContext): void {
  const at = ['authorization', 'identityProviders']
  const clientIds = ctx.valid(['authorization', 'clients']) ? new Set(config.authorization.clients.map((c) => c.clientId)) : undefined
  const ownIssuer = ctx.valid(['authorization', 'issuer']) && ctx.valid(['publicUrl']) ? (config.authorization.issuer ?? config.publicUrl) : undefined
  const seen = new Map<string, number>()
  let firstLogin: number | undefined
  eachValid(ctx, at, () => config.authorization.identityProviders, (idp, _path, i) => {
    if (idp.login !== undefined) {
      // the federated login has no IdP chooser (yet): one IdP is where every browser login goes
      if (firstLogin === undefined) firstLogin = i
      else ctx.report([...at, i, 'login'], `only one identity provider may have login; ${formatPath([...at, firstLogin, 'login'])} has it`)
    }
    const first = seen.get(idp.issuer)
    if (first === undefined) seen.set(idp.issuer, i)
    else ctx.report([...at, i, 'issuer'], `duplicates ${formatPath([...at, first, 'issuer'])}`)
    if (ownIssuer !== undefined && withoutSlash(idp.issuer) === withoutSlash(ownIssuer)) {
      ctx.report([...at, i, 'issuer'], 'must not be our own issuer: the gateway would trust the tokens it issues as ID-JAGs')
    }
    idp.allowedClients?.forEach((clientId, j) => {
      if (clientIds !== undefined && !clientIds.has(clientId)) {
        ctx.report([...at, i, 'allowedClients', j], 'names no client in authorization.clients')
      }
    })
    for (const claim of Object.keys(idp.claims)) {
      if (RESERVED_CLAIMS.includes(claim)) ctx.report([...at, i, 'claims', claim], 'is a claim the gateway sets itself and cannot be mapped')
    }
  })
}

export function checkStore (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['store']) || config.store === undefined) return
  const url = parseUrl(config.store.url)
  if (url?.protocol !== 'redis:' && url?.protocol !== 'rediss:') ctx.report(['store', 'url'], 'must be a redis:// or rediss:// URL')
}

/** listen.trustProxy: IP addresses or CIDR ranges that parse, with a prefix the address family allows. */
export function checkTrustProxy (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['listen', 'trustProxy'])) return
  config.listen.trustProxy.forEach((entry, i) => {
    const [address = '', prefix] = entry.split('/')
    const family = isIP(address)
    const max = family === 6 ? 128 : 32
    if (family === 0 || (prefix !== undefined && Number(prefix) > max)) ctx.report(['listen', 'trustProxy', i], 'must be an IP address or CIDR range')
  })
}

/** listen.advertiseUrl: where the other replicas send a bridged session's requests — an http(s) origin, nothing more. */
export function checkAdvertiseUrl (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['listen', 'advertiseUrl'])) return
  const value = config.listen.advertiseUrl
  if (value === undefined) return
  const url = parseUrl(value)
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' ||
      url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    ctx.report(['listen', 'advertiseUrl'], 'must be an http(s) URL with a host and port only, such as http://10.0.0.7:8080')
  }
}

export function checkServerNames (config: RawConfig, ctx: CheckContext): void {
  if (!ctx.valid(['servers'], { shallow: true })) return
  for (const name of Object.keys(config.servers)) {
    if (!SERVER_NAME.test(name)) ctx.report(['servers', name], `server name must match ${SERVER_NAME.source} (it is part of URLs)`)
  }
}

export function checkUpstream (config: RawConfig, ctx: CheckContext): void {
  forEachServer(config, ctx, (server, at) => {
    const upstream = server.upstream
    const path = [...at, 'upstream']
    if (!ctx.valid(path)) return
    if ((upstream.url === undefined) === (upstream.command === undefined)) {
      const problem = upstream.url === undefined ? 'needs url (an HTTP upstream) or command (a stdio one)' : 'has both url and command; give exactly one'
      return ctx.report(path, problem)
    }
    if (upstream.command !== undefined && upstream.transport !== undefined && upstream.transport !== 'stdio') {
      return ctx.report([...path, 'transport'], `transport ${upstream.transport} requires url, not command`)
    }
    if (upstream.url !== undefined && upstream.transport === 'stdio') {
      return ctx.report([...path, 'transport'], 'transport stdio requires command, not url')
    }
    const transport = upstreamTransport(upstream)
    const allowed: readonly string[] = UPSTREAM_KEYS[transport]
    for (const key of Object.keys(upstream)) {
      const known = Object.values(UPSTREAM_KEYS).some((keys: readonly string[]) => keys.includes(key))
      if (known && !allowed.includes(key)) ctx.report([...path, key], `is not used by ${transport} upstreams`)
    }
    if (upstream.url !== undefined) {
      const url = parseUrl(upstream.url)
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) ctx.report([...path, 'url'], 'must be an absolute http(s) URL')
      else if (url.username !== '' || url.password !== '') ctx.report([...path, 'url'], 'must not contain credentials; send them in headers')
      else if (url.hash !== '' || upstream.url.includes('#')) ctx.report([...path, 'url'], 'must not have a fragment')
    }
    // spawn() throws on a NUL byte; say so now rather than at the first session
    const strings: [PathSegment[], string | undefined][] = [
      [[...path, 'command'], upstream.command],
      [[...path, 'cwd'], upstream.cwd],
      ...(upstream.args ?? []).map((arg, i): [PathSegment[], string] => [[...path, 'args', i], arg]),
      ...Object.entries(upstream.env ?? {}).map(([name, value]): [PathSegment[], string] => [[...path, 'env', name], value]),
    ]
    for (const [where, value] of strings) if (value?.includes('\0')) ctx.report(where, 'must not contain a NUL character')
  })
}

/** RFC 9110 §5.6.2 token */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** RFC 9110 §5.5: field values carry no control characters except horizontal tab. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/
const TEMPLATE = /\{\{(.*?)\}\}/g
const TEMPLATE_NAME = /^[A-Za-z0-9_.-]+$/
const REFUSED_HEADERS: Record<string, string> = {
  host: 'is set by the gateway from the upstream url',
  'content-length': 'is computed by the gateway',
  'mcp-session-id': 'is managed by the gateway',
  'mcp-protocol-version': 'is managed by the gateway',
  // RFC 9110 §7.6.1: hop-by-hop fields are meaningful only for a single connection
  ...Object.fromEntries(
    ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'].map(
      (name) => [name, 'is a hop-by-hop header and cannot be configured']
    )
  ),
}

export function checkHeaders (config: RawConfig, ctx: CheckContext): void {
  forEachServer(config, ctx, (server, at) => {
    const path = [...at, 'upstream', 'headers']
    if (!ctx.valid(path)) return
    const seen = new Map<string, string>()
    for (const [name, value] of Object.entries(server.upstream.headers)) {
      const where = [...path, name]
      const lower = name.toLowerCase()
      if (!HEADER_NAME.test(name)) ctx.report(where, 'is not a valid HTTP header name')
      else if (REFUSED_HEADERS[lower] !== undefined) ctx.report(where, REFUSED_HEADERS[lower])
      const first = seen.get(lower)
      if (first !== undefined) ctx.report(where, `repeats header ${first} (header names are case-insensitive)`)
      seen.set(lower, name)
      if (CONTROL.test(value)) ctx.report(where, 'value must not contain control characters (CR, LF, NUL, …)')
      const names = [...value.matchAll(TEMPLATE)].map((match) => match[1] ?? '')
      if (names.some((claim) => !TEMPLATE_NAME.test(claim))) ctx.report(where, 'a {{…}} template must name one claim: [A-Za-z0-9_.-]+')
      else if (value.replaceAll(TEMPLATE, '').includes('{{')) ctx.report(where, 'has a {{ with no closing }}')
    }
  })
}

export function checkRuleEffects (config: RawConfig, ctx: CheckContext): void {
  forEachRuleList(config, ctx, (rules, at) => {
    rules.forEach((rule, i) => {
      if (rule.allow !== undefined && rule.deny !== undefined) ctx.report([...at, i], 'has both allow and deny; a rule has exactly one')
      if (rule.allow === undefined && rule.deny === undefined) ctx.report([...at, i], 'needs allow or deny')
    })
  })
}

/** Explicit ids are what the audit log records, so within one list each names one rule. */
export function checkPolicyIds (config: RawConfig, ctx: CheckContext): void {
  forEachRuleList(config, ctx, (rules, at) => {
    const seen = new Map<string, number>()
    rules.forEach((rule, i) => {
      if (rule.id === undefined) return
      const first = seen.get(rule.id)
      if (first === undefined) seen.set(rule.id, i)
      else ctx.report([...at, i, 'id'], `repeats the id of ${formatPath([...at, first])}`)
    })
  })
}

/** Tokens hold only the server's scopes (design.md §5), so a rule needing another can never match. */
export function checkRuleScopes (config: RawConfig, ctx: CheckContext): void {
  forEachRuleList(config, ctx, (rules, at, server, serverPath) => {
    if (!ctx.valid([...serverPath, 'scopes'])) return
    rules.forEach((rule, i) => {
      rule.scopes?.forEach((scope, j) => {
        if (!server.scopes.includes(scope)) {
          ctx.report([...at, i, 'scopes', j], `is not in ${formatPath([...serverPath, 'scopes'])}, so no token holds it and the rule never matches`)
        }
      })
    })
  })
}

function forEachServer (config: RawConfig, ctx: CheckContext, visit: (server: RawServer, path: PathSegment[]) => void): void {
  if (!ctx.valid(['servers'], { shallow: true })) return
  for (const [name, server] of Object.entries(config.servers)) {
    if (ctx.valid(['servers', name], { shallow: true })) visit(server, ['servers', name])
  }
}

function forEachRuleList (
  config: RawConfig,
  ctx: CheckContext,
  visit: (rules: readonly RawRule[], path: PathSegment[], server: RawServer, serverPath: PathSegment[]) => void
): void {
  forEachServer(config, ctx, (server, serverPath) => {
    for (const list of ['tools', 'prompts', 'resources'] as const) {
      const rules = server[list]
      if (rules !== undefined && ctx.valid([...serverPath, list])) visit(rules, [...serverPath, list], server, serverPath)
    }
  })
}
