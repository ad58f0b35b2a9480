import type { IncomingHttpHeaders } from 'node:http'
import type { Principal } from '../authn/principal.ts'
import { GatewayError } from '../errors.ts'

/**
 * Request headers that never go upstream (protocol.md §5.5).
 * - hop-by-hop (RFC 9110 §7.6.1) and framing headers, recomputed for the re-serialised body;
 * - the client's credentials: "The MCP server MUST NOT pass through the token it received
 *   from the MCP client" — Authorization, Cookie, Proxy-Authorization and DPoP are consumed here;
 * - Origin/Referer: validated by the gateway; a browser origin would trip the upstream's own
 *   DNS-rebinding check;
 * - Accept-Encoding: responses are inspected, so they must arrive uncompressed;
 * - Mcp-Session-Id: the client holds a sealed id; the upstream gets its own id back from it.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host', 'content-length', 'content-encoding', 'expect', 'http2-settings',
  'authorization', 'proxy-authorization', 'cookie', 'dpop',
  'origin', 'referer', 'accept-encoding',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip',
  // the client's session id is the gateway's sealed one; the upstream is sent its own (if any)
  'mcp-session-id',
])

/** Response headers a client may see; everything else from the upstream stays behind. */
const FORWARDED_RESPONSE_HEADERS = [
  'content-type', 'cache-control', 'mcp-session-id', 'mcp-protocol-version', 'x-accel-buffering',
  'allow', 'retry-after', 'etag', 'last-modified', 'vary',
] as const

/**
 * The headers of the upstream request: the client's, minus what must not cross (above and any
 * header the client's `Connection` names — stripped first, so a client can't use Connection to
 * remove a header the gateway adds), then the configured upstream headers, which always win.
 *
 * Names are also compared folded (case, and `_` as `-`): a CGI or WSGI upstream reads
 * `X_Forwarded_User` and `X-Forwarded-User` as one variable, HTTP_X_FORWARDED_USER, and keeps the
 * first value — the client's. Beyond that, no client header with `_` in its name is forwarded
 * (nginx's `underscores_in_headers off`): the gateway cannot know every header an upstream
 * trusts, and no MCP client needs one — except `Mcp-Param-*`, which 2026-07-28 requires an
 * intermediary to forward and which folds onto no other `Mcp-Param-*` of the gateway's.
 */
export function buildUpstreamRequestHeaders (
  incoming: IncomingHttpHeaders,
  configured: Readonly<Record<string, string>>,
  principal: Principal | null,
  traceFields?: Readonly<Record<string, string>>
): Record<string, string> {
  const connectionListed = listedInConnection(incoming.connection)
  const gatewayOwned = new Set([...Object.keys(configured), ...Object.keys(traceFields ?? {})].map(fold))
  const out: Record<string, string> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name)) continue
    const folded = name.includes('_') ? fold(name) : name
    if (gatewayOwned.has(folded) || connectionListed?.has(folded) === true) continue
    if (folded !== name && (!folded.startsWith('mcp-param-') || DROPPED_FOLDED.has(folded))) continue
    out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  for (const name in configured) out[name.toLowerCase()] = expandClaimTemplate(configured[name]!, principal)
  // the gateway's own trace context replaces whatever the client sent
  if (traceFields !== undefined) for (const name in traceFields) out[name] = traceFields[name]!
  return out
}

/** A header name as a CGI/WSGI upstream sees it: case and `_`/`-` folded. */
function fold (name: string): string {
  return name.toLowerCase().replaceAll('_', '-')
}

const DROPPED_FOLDED = new Set([...DROPPED_REQUEST_HEADERS].map(fold))

function listedInConnection (value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === 'keep-alive') return undefined
  const names = new Set<string>()
  for (const part of value.split(',')) {
    const name = fold(part.trim())
    if (name !== '') names.add(name)
  }
  return names
}

const TEMPLATE = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g

/**
 * `{{claim}}` → the principal's claim, per request. A claim the principal lacks, or a value
 * that could split the header (CR, LF, NUL), refuses the request: an upstream that trusts an
 * identity header must never receive a forged or empty one.
 */
export function expandClaimTemplate (template: string, principal: Principal | null): string {
  if (!template.includes('{{')) return template
  return template.replace(TEMPLATE, (_match, claim: string) => {
    const value = principal === null ? undefined : claimValue(principal, claim)
    if (value === undefined) {
      throw new GatewayError('PORTCULLIS_ERR_UNAUTHENTICATED', `this MCP server needs the identity claim ${claim}`)
    }
    if (/[\r\n\0]/.test(value)) throw new GatewayError('PORTCULLIS_ERR_INVALID_REQUEST', `claim ${claim} cannot be sent as a header`)
    return value
  })
}

function claimValue (principal: Principal, claim: string): string | undefined {
  if (claim === 'sub') return principal.subject
  if (claim === 'client_id') return principal.clientId
  const value = principal.claims[claim]
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',')
  return undefined
}

/** Copy the response headers a client may see onto `target`. */
export function pickResponseHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = headers[name]
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

export function headerValue (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
