/**
 * Loading the configuration (design.md §4), as a pipeline of named steps:
 *
 *   parseYaml → substituteEnv → validateSchema → runChecks → buildConfig → deepFreeze
 *
 * Everything is validated before anything listens, and every problem of a file is reported at
 * once: the stages after YAML parsing keep going past a problem and skip only what it spoiled.
 */
import { readFile } from 'node:fs/promises'
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Document, type YAMLError } from 'yaml'
import { buildConfig, deepFreeze } from './build.ts'
import { type CheckContext, runChecks } from './checks.ts'
import { ConfigError, formatPath, type PathSegment, type Problem } from './errors.ts'
import type { RawConfig } from './raw.ts'
import type { Config } from './types.ts'
import { validateSchema } from './validate.ts'

export { ConfigError, type Problem } from './errors.ts'
export { configWarnings } from './build.ts'

export type Env = Record<string, string | undefined>

export async function loadConfig (path: string, env: Env = process.env): Promise<Config> {
  return parseConfig(await readConfigFile(path), { source: path, env })
}

/** A config file's text; a file that can't be read is a ConfigError naming it (and why). */
export async function readConfigFile (path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable'
    throw new ConfigError(path, [{ path, message: `cannot read the file (${code})` }])
  }
}

export function parseConfig (text: string, opts: { source: string; env: Env }): Config {
  const document = parseYaml(text, opts.source)
  const substituted = substituteEnv(document, opts.env)
  const schemaProblems = validateSchema(substituted.value)
  // Any part the schema refused, or whose ${VAR} was unset, is left out of the cross-field checks.
  const spoiled = [...substituted.problems, ...schemaProblems.filter((p) => !p.unknownKey)].map((p) => p.path)
  const checkProblems: LocatedProblem[] = []
  const ctx: CheckContext = {
    report: (path, message) => { checkProblems.push({ path, message }) },
    valid: (path, options) => !spoiled.some((bad) => isPrefix(bad, path) || (options?.shallow !== true && isPrefix(path, bad))),
  }
  // The cast is what the schema promised; the checks consult ctx.valid before trusting any part.
  runChecks(substituted.value as RawConfig, ctx)
  const problems = dedupe(substituted.problems, [...schemaProblems, ...checkProblems])
  if (problems.length > 0) throw new ConfigError(opts.source, problems)
  return deepFreeze(buildConfig(substituted.value as RawConfig, opts.source))
}

/** YAML 1.2 core schema; duplicate keys, unknown tags and multiple documents are errors. */
export function parseYaml (text: string, source: string): unknown {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter })
  const problems = [...doc.errors, ...doc.warnings].map((error) => yamlProblem(error, doc, lineCounter, source))
  if (problems.length > 0) throw new ConfigError(source, problems)
  try {
    // maxAliasCount bounds "billion laughs" alias expansion
    return doc.toJS({ maxAliasCount: 100 })
  } catch (error) {
    throw new ConfigError(source, [{ path: source, message: error instanceof Error ? error.message : 'cannot read the YAML' }])
  }
}

// The pretty form of a YAML error quotes the surrounding lines, which may hold a secret:
// report only the position and the parser's one-line message.
function yamlProblem (error: YAMLError, doc: Document, lines: LineCounter, source: string): Problem {
  const { line, col } = lines.linePos(error.pos[0])
  const keyPath = error.code === 'DUPLICATE_KEY' ? keyPathAt(doc.contents, error.pos[0], []) : undefined
  if (keyPath !== undefined) return { path: formatPath(keyPath), message: `duplicate key (line ${line}, col ${col})` }
  return { path: `${source}:${line}:${col}`, message: error.message }
}

function keyPathAt (node: unknown, offset: number, path: PathSegment[]): PathSegment[] | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) return [...path, key]
      const found = keyPathAt(pair.value, offset, [...path, key])
      if (found !== undefined) return found
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = keyPathAt(item, offset, [...path, i])
      if (found !== undefined) return found
    }
  }
  return undefined
}

interface LocatedProblem {
  readonly path: readonly PathSegment[]
  readonly message: string
}

/** `$${` is a literal `${`; `${NAME}` a variable; any other `${` is a mistake worth reporting. */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{/g

/**
 * Replaces `${NAME}` in every string value (never in keys). `{{claim}}` templates are left for
 * per-request expansion. An unset variable is reported by name and path, never by value.
 */
export function substituteEnv (value: unknown, env: Env): { value: unknown; problems: LocatedProblem[] } {
  const problems: LocatedProblem[] = []
  const walk = (node: unknown, path: PathSegment[]): unknown => {
    if (typeof node === 'string') return substituteString(node, env, (message) => problems.push({ path, message }))
    if (Array.isArray(node)) return node.map((item: unknown, i) => walk(item, [...path, i]))
    if (typeof node === 'object' && node !== null) {
      // fromEntries defines own properties, so a `__proto__` key stays a key (and the schema refuses it)
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...path, key])]))
    }
    return node
  }
  return { value: walk(value, []), problems }
}

function substituteString (text: string, env: Env, report: (message: string) => void): string {
  return text.replace(REFERENCE, (match: string, name: string | undefined) => {
    if (match === '$${') return '${'
    if (name === undefined) {
      report('has a ${ that is not a ${NAME} reference (NAME is [A-Za-z_][A-Za-z0-9_]*); write $${ for a literal ${')
      return ''
    }
    const resolved = env[name]
    if (resolved === undefined) report(`environment variable ${name} is not set`)
    return resolved ?? ''
  })
}

function isPrefix (prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i])
}

/** One problem per path and message; a path whose ${VAR} failed gets no follow-on complaints. */
function dedupe (envProblems: readonly LocatedProblem[], others: readonly LocatedProblem[]): Problem[] {
  const envPaths = new Set(envProblems.map((problem) => formatPath(problem.path)))
  const seen = new Set<string>()
  const out: Problem[] = []
  for (const [i, problem] of [...envProblems, ...others].entries()) {
    const path = formatPath(problem.path)
    const key = `${path}\n${problem.message}`
    if (seen.has(key) || (i >= envProblems.length && envPaths.has(path))) continue
    seen.add(key)
    out.push({ path, message: problem.message })
  }
  return out
}
