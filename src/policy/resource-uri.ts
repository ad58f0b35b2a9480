/**
 * Resource rules match URIs as strings, but an upstream resolves them: `file:///public/%70rivate`,
 * `FILE:///public/private` and `file:///public/x/../private` all name `file:///public/private` to
 * an upstream that decodes, folds case or resolves dot segments. So a URI is judged only in its
 * RFC 3986 §6.2.2 normal form, and only when that form is unambiguous.
 *
 * The gateway does not rewrite a URI into its normal form: a URI not already in it is refused
 * like a resource that does not exist. Rewriting would send the upstream a URI its client never
 * sent — one an upstream that compares its own URIs as strings (the MCP SDKs do) may not know,
 * and one a 2026-07-28 `Mcp-Name` header would no longer mirror. Clients take URIs from the
 * upstream's own lists, which are filtered by the same test, so nothing listed is refused.
 */

const HEX = /^[0-9A-Fa-f]{2}$/
/** RFC 3986 unreserved: decoded when percent-encoded (§6.2.2.2) */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/
/** every character RFC 3986 allows unencoded: unreserved, gen-delims, sub-delims and `%` */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The RFC 3986 §6.2.2 normal form of an absolute URI — scheme and host lowercased, percent-encoded
 * unreserved characters decoded and the other percent-encodings' hex uppercased, dot segments
 * removed (§5.2.4) — or undefined when what the URI names stays ambiguous after that:
 * - a character a URI cannot hold raw (controls, space, `\`, non-ASCII …), invalid percent-encoding;
 * - an encoded control character (`%00`…`%1F`, `%7F`), or encoded bytes that are not UTF-8
 *   (overlong `%C0%AF` is a `/` to a lax decoder);
 * - in the authority or path, an encoded `/` or `\` (`%2F`, `%5C`): a segment separator to an
 *   upstream that decodes first;
 * - an encoded `%` before two hex digits (`%252F`): a different URI to an upstream that decodes twice;
 * - an empty path segment (`a//b`): most file systems and routers merge it away;
 * - a fragment: never the resource's own, and ignored by an upstream that strips it.
 */
export function normalizeUri (uri: string): string | undefined {
  if (!URI_CHARS.test(uri) || uri.includes('#')) return undefined
  const scheme = SCHEME.exec(uri)?.[0]
  if (scheme === undefined) return undefined
  let rest = uri.slice(scheme.length)
  const q = rest.indexOf('?')
  const query = q === -1 ? undefined : rest.slice(q + 1)
  if (q !== -1) rest = rest.slice(0, q)
  let authority: string | undefined
  if (rest.startsWith('//')) {
    const end = rest.indexOf('/', 2)
    authority = end === -1 ? rest.slice(2) : rest.slice(2, end)
    rest = end === -1 ? '' : rest.slice(end)
  }
  const host = authority === undefined ? undefined : percentNormalize(lowercaseHost(authority), true)
  const encodedPath = percentNormalize(rest, true)
  const normalQuery = query === undefined ? undefined : percentNormalize(query, false)
  if (host === null || encodedPath === null || normalQuery === null) return undefined
  const path = removeDotSegments(encodedPath)
  if (path.includes('//')) return undefined
  return scheme.toLowerCase() + (host === undefined ? '' : `//${host}`) + path + (normalQuery === undefined ? '' : `?${normalQuery}`)
}

/**
 * Whether the policy judges this URI: in RFC 3986 normal form, and also in the WHATWG URL form an
 * upstream's `new URL()` would turn it into (`file://localhost/x` is `file:///x` there).
 */
export function isJudgeableUri (uri: string): boolean {
  return normalizeUri(uri) === uri && URL.canParse(uri) && new URL(uri).href === uri
}

/** The host of an authority lowercased; userinfo is case-sensitive. */
function lowercaseHost (authority: string): string {
  const at = authority.lastIndexOf('@')
  return authority.slice(0, at + 1) + authority.slice(at + 1).toLowerCase()
}

/** Percent-encodings normalized (see normalizeUri), or null when one is ambiguous. */
function percentNormalize (part: string, hierarchical: boolean): string | null {
  if (!part.includes('%')) return part
  let out = ''
  let i = 0
  while (i < part.length) {
    if (part[i] !== '%') {
      out += part[i++]
      continue
    }
    // a run of encoded bytes: decoded together, so a multi-byte character is checked whole
    const bytes: number[] = []
    while (part[i] === '%') {
      const hex = part.slice(i + 1, i + 3)
      if (!HEX.test(hex)) return null
      bytes.push(parseInt(hex, 16))
      i += 3
    }
    for (let k = 0; k < bytes.length; k++) {
      const b = bytes[k]!
      if (b < 0x20 || b === 0x7f) return null
      if (hierarchical && (b === 0x2f || b === 0x5c)) return null
      // `%25` then two hex digits: raw ones, or the `%` of the next encoded byte
      if (b === 0x25 && (k + 1 < bytes.length || HEX.test(part.slice(i, i + 2)))) return null
    }
    // whole characters only: a lone, overlong or interrupted UTF-8 sequence is refused
    if (bytes.some((b) => b >= 0x80)) {
      try {
        utf8.decode(Uint8Array.from(bytes))
      } catch {
        return null
      }
    }
    for (const b of bytes) {
      const ch = String.fromCharCode(b)
      out += b < 0x80 && UNRESERVED.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  return out
}

/** RFC 3986 §5.2.4 remove_dot_segments. */
export function removeDotSegments (path: string): string {
  let input = path
  let output = ''
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3)
    else if (input.startsWith('./')) input = input.slice(2)
    else if (input.startsWith('/./')) input = input.slice(2)
    else if (input === '/.') input = '/'
    else if (input.startsWith('/../') || input === '/..') {
      input = input === '/..' ? '/' : input.slice(3)
      output = output.slice(0, Math.max(output.lastIndexOf('/'), 0))
    } else if (input === '.' || input === '..') input = ''
    else {
      const next = input.indexOf('/', 1)
      const segment = next === -1 ? input : input.slice(0, next)
      output += segment
      input = input.slice(segment.length)
    }
  }
  return output
}
