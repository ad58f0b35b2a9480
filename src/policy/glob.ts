/**
 * A rule name pattern: exact, or a glob where `*` matches any run of characters and `?` exactly
 * one. Compared exactly — no case folding, no Unicode normalisation (tool names "SHOULD be
 * considered case-sensitive"): `Delete_repo` and `delete_repo` are different tools, and a
 * homoglyph is a different name.
 */
export type NameMatcher = (name: string) => boolean

export function compileGlob (pattern: string): NameMatcher {
  if (!pattern.includes('*') && !pattern.includes('?')) return (name) => name === pattern
  if (pattern === '*') return () => true
  let source = '^'
  for (const ch of pattern) {
    if (ch === '*') source += '[\\s\\S]*'
    else if (ch === '?') source += '[\\s\\S]'
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')
  }
  // The u flag makes `?` one code point, so a name can't be matched by splitting a surrogate pair.
  const re = new RegExp(`${source}$`, 'u')
  return (name) => re.test(name)
}
