/**
 * The longest string an audit field holds. Names and URIs are bounded before policy
 * (jsonrpc/bounds.ts: URIs at 2048), so this truncates nothing a valid request carries — but no
 * client-controlled value (a client id, an issuer, an error detail) can make one line huge.
 */
export const MAX_AUDIT_FIELD_CHARS = 2048
const MARKER = '…[truncated]'

/** `value`, cut to MAX_AUDIT_FIELD_CHARS with a marker when longer. */
export function auditText (value: string): string {
  if (value.length <= MAX_AUDIT_FIELD_CHARS) return value
  let cut = MAX_AUDIT_FIELD_CHARS - MARKER.length
  // never split a surrogate pair
  const code = value.charCodeAt(cut - 1)
  if (code >= 0xd800 && code <= 0xdbff) cut--
  return value.slice(0, cut) + MARKER
}

/** Every string field of an audit line through auditText, in place. */
export function capAuditFields (line: Record<string, string | number>): Record<string, string | number> {
  for (const key in line) {
    const value = line[key]
    if (typeof value === 'string' && value.length > MAX_AUDIT_FIELD_CHARS) line[key] = auditText(value)
  }
  return line
}
