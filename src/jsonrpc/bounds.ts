/**
 * Bounds on the client-chosen strings the gateway judges, names in audit lines and echoes in
 * errors, checked before any policy runs: a 900 KB tool name is refused, not judged, logged and
 * sent back. Lengths are in characters (code points), as the MCP spec counts them.
 */

/** "Tool names SHOULD be between 1 and 128 characters"; prompt and method names likewise */
export const MAX_NAME_CHARS = 128
/** resource URIs and URI templates */
export const MAX_URI_CHARS = 2048
/** string request ids and progress tokens */
export const MAX_ID_CHARS = 256

/** Whether `s` has more than `max` code points, without counting a huge string to its end. */
export function longerThan (s: string, max: number): boolean {
  if (s.length <= max) return false
  if (s.length > 2 * max) return true
  let count = 0
  for (const _ of s) if (++count > max) return true
  return false
}
