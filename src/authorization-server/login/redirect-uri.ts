import { isLoopback } from '../../config/urls.ts'

const MAX_REDIRECT_URI = 2048

/**
 * Why a client may not register `value` as a redirect URI, or undefined when it may. The rules of
 * OAuth 2.1 §2.3 and RFC 8252 §7.3 for clients nobody vetted (dynamic registration, metadata
 * documents): an absolute https URL, or http on a loopback host; no fragment, no credentials; and
 * the host must be one the operator allows. At the authorization endpoint redirect URIs are then
 * compared as exact strings, so "registered" means byte for byte.
 */
export function redirectUriProblem (value: string, allowedHosts: readonly string[]): string | undefined {
  if (value.length > MAX_REDIRECT_URI) return 'is too long'
  if (!URL.canParse(value)) return 'is not an absolute URL'
  const url = new URL(value)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL'
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) return 'must be https unless the host is loopback'
  if (url.username !== '' || url.password !== '') return 'must not contain credentials'
  if (value.includes('#')) return 'must not have a fragment'
  const host = url.hostname.toLowerCase()
  if (!allowedHosts.some((allowed) => allowed.toLowerCase() === host)) return 'names a host this gateway does not allow for redirects'
  return undefined
}

/** The redirect URI with `params` added to its query (RFC 6749 §4.1.2: keep the query it has). */
export function withParams (redirectUri: string, params: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(redirectUri)
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value)
  return url.href
}
