/**
 * How resource rules judge an RFC 6570 URI template (`resources/templates/list`, a
 * `completion/complete` ref): each `{…}` expression stands for any string at all, so a template
 * stands for every URI it can expand to. Deny wins on any overlap: a deny rule that matches even
 * one expansion hides the template (completing `file:///{path}` would name files under a denied
 * `file:///secret/*`). An allow rule admits it only when it matches every expansion: each
 * expression must fall inside a `*` of the glob (`file:///public/*` admits
 * `file:///public/{name}`, not `file:///{dir}/x`). A template without expressions is judged as
 * the URI it is.
 */

/** one token of a glob or a template: a character, or a wildcard */
type Token = string | typeof ANY | typeof ONE
/** glob `*`, template `{…}`: any run of characters */
const ANY = 0
/** glob `?`: one character */
const ONE = 1

/** The template as tokens, or undefined when it is not a template (an unclosed or empty `{}`). */
export function parseTemplate (template: string): Token[] | undefined {
  const tokens: Token[] = []
  let i = 0
  while (i < template.length) {
    const ch = template[i]!
    if (ch === '}') return undefined
    if (ch !== '{') {
      const cp = String.fromCodePoint(template.codePointAt(i)!)
      tokens.push(cp)
      i += cp.length
      continue
    }
    const end = template.indexOf('}', i)
    if (end === -1 || end === i + 1 || template.slice(i + 1, end).includes('{')) return undefined
    tokens.push(ANY)
    i = end + 1
  }
  return tokens
}

/** The template with each expression replaced by `x`: what normalization is checked on. */
export function skeleton (tokens: readonly Token[]): string {
  return tokens.map((t) => typeof t === 'string' ? t : 'x').join('')
}

/** The tokens before the query: a literal `?`, or a `{?…}` / `{&…}` expression. */
export function withoutQuery (template: string, tokens: readonly Token[]): Token[] | undefined {
  const literal = tokens.indexOf('?')
  const expr = /\{[?&]/.exec(template)
  if (literal === -1 && expr === null) return undefined
  // count the tokens before the expression: characters and earlier expressions
  const exprToken = expr === null ? -1 : parseTemplate(template.slice(0, expr.index))!.length
  const cut = literal === -1 ? exprToken : exprToken === -1 ? literal : Math.min(literal, exprToken)
  return tokens.slice(0, cut)
}

export function globTokens (pattern: string): Token[] {
  return Array.from(pattern, (ch) => ch === '*' ? ANY : ch === '?' ? ONE : ch)
}

/** Whether some string is both an expansion of the template and matched by the glob. */
export function overlaps (glob: readonly Token[], template: readonly Token[]): boolean {
  const n = glob.length
  const m = template.length
  // can[i][j]: glob[i..] and template[j..] share a string
  const can = new Uint8Array((n + 1) * (m + 1))
  const at = (i: number, j: number): boolean => can[i * (m + 1) + j] === 1
  for (let i = n; i >= 0; i--) {
    for (let j = m; j >= 0; j--) {
      let ok: boolean
      if (i === n && j === m) ok = true
      else if (i < n && glob[i] === ANY) ok = at(i + 1, j) || (j < m && at(i, j + 1))
      else if (j < m && template[j] === ANY) ok = at(i, j + 1) || (i < n && at(i + 1, j))
      else if (i === n || j === m) ok = false
      else ok = (glob[i] === ONE || glob[i] === template[j]) && at(i + 1, j + 1)
      if (ok) can[i * (m + 1) + j] = 1
    }
  }
  return at(0, 0)
}

/**
 * Whether the glob matches every expansion of the template: each expression is swallowed by a
 * glob `*`. Sound, not complete (`*?` covers `a{x}` but is not seen to): a template it cannot
 * prove covered stays hidden.
 */
export function covers (glob: readonly Token[], template: readonly Token[]): boolean {
  const n = glob.length
  const m = template.length
  const can = new Uint8Array((n + 1) * (m + 1))
  const at = (i: number, j: number): boolean => can[i * (m + 1) + j] === 1
  for (let i = n; i >= 0; i--) {
    for (let j = m; j >= 0; j--) {
      let ok: boolean
      if (i === n) ok = j === m
      else if (glob[i] === ANY) ok = at(i + 1, j) || (j < m && at(i, j + 1))
      else if (j === m || template[j] === ANY) ok = false
      else ok = (glob[i] === ONE || glob[i] === template[j]) && at(i + 1, j + 1)
      if (ok) can[i * (m + 1) + j] = 1
    }
  }
  return at(0, 0)
}
