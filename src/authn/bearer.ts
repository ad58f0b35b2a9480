/** RFC 6750 §2.1: `Bearer` (any case), one space, one b64token. */
const BEARER = /^bearer ([A-Za-z0-9\-._~+/]+=*)$/i

export type BearerExtraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'malformed'; readonly why: string }

/**
 * Exactly one bearer token from the Authorization header. Tokens in the query string are never
 * accepted (MCP: "Access tokens MUST NOT be included in the URI query string"), and a request
 * carrying one is malformed even if a header token is present too.
 */
export function extractBearer (authorization: string | undefined, url: string): BearerExtraction {
  const q = url.indexOf('?')
  if (q !== -1 && new URLSearchParams(url.slice(q + 1)).has('access_token')) {
    return { kind: 'malformed', why: 'Access tokens are not accepted in the query string' }
  }
  if (authorization === undefined) return { kind: 'none' }
  const match = BEARER.exec(authorization.trim())
  if (match?.[1] === undefined) return { kind: 'malformed', why: 'The Authorization header must be "Bearer <token>"' }
  return { kind: 'token', token: match[1] }
}
