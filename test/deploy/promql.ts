/**
 * PromQL as the dashboards and rules tests see it: Grafana variables substituted, parsed with
 * Prometheus' own lezer grammar (@prometheus-io/lezer-promql, the one the Prometheus UI uses),
 * metric names and range windows read from the syntax tree rather than guessed with regexes.
 */
import { parser } from '@prometheus-io/lezer-promql'

/** What `$__rate_interval` becomes before parsing: a duration no one writes by hand. */
export const RATE_INTERVAL_STANDIN = '1m7s'

/**
 * Replace Grafana's variables with values PromQL accepts: `$__rate_interval` with a sentinel
 * duration (so its uses can be found in the tree), the other time macros with durations, and
 * template variables (`$var`, `${var}`, `${var:fmt}`, `[[var]]`) with `1`, which is valid both
 * inside a label matcher's string and where a number goes.
 */
export function substituteGrafanaVariables (expr: string): string {
  return expr
    .replaceAll('$__rate_interval', RATE_INTERVAL_STANDIN)
    .replaceAll(/\$__(?:interval_ms|interval|range_s|range_ms|range)\b/g, '5m')
    .replaceAll(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z]+)?\}|\[\[[A-Za-z_][A-Za-z0-9_]*\]\]|\$[A-Za-z_][A-Za-z0-9_]*/g, '1')
}

export interface ParsedPromQL {
  readonly expr: string
  /** human-readable syntax errors, empty when the expression parsed */
  readonly errors: readonly string[]
  /** metric names of every vector selector (`name{…}`, and `{__name__="name"}`) */
  readonly metrics: readonly string[]
  /** the range of every range selector and subquery, as written (`5m`, `1m7s` …) */
  readonly ranges: readonly string[]
  /** functions called */
  readonly functions: readonly string[]
}

export function parsePromQL (expr: string): ParsedPromQL {
  const tree = parser.parse(expr)
  const errors: string[] = []
  const metrics: string[] = []
  const ranges: string[] = []
  const functions: string[] = []
  const text = (from: number, to: number): string => expr.slice(from, to)
  tree.iterate({
    enter (node) {
      if (node.type.isError) {
        errors.push(`syntax error at ${node.from}: …${text(Math.max(0, node.from - 20), node.from)}⟨here⟩${text(node.from, node.from + 20)}…`)
        return
      }
      switch (node.name) {
        case 'VectorSelector': {
          const id = node.node.getChild('Identifier')
          if (id !== null) metrics.push(text(id.from, id.to))
          break
        }
        case 'UnquotedLabelMatcher':
        case 'QuotedLabelMatcher': {
          const matcher = text(node.from, node.to)
          const byName = /^"?__name__"?\s*=\s*"([^"]+)"$/.exec(matcher)
          if (byName?.[1] !== undefined) metrics.push(byName[1])
          break
        }
        case 'MatrixSelector':
        case 'SubqueryExpr': {
          // the range is the duration between the last '[' and its ']' (a subquery: before the ':')
          const body = text(node.from, node.to)
          const open = body.lastIndexOf('[')
          const range = body.slice(open + 1, body.indexOf(']', open)).split(':')[0]?.trim() ?? ''
          ranges.push(range)
          break
        }
        case 'FunctionIdentifier':
          functions.push(text(node.from, node.to))
          break
      }
    },
  })
  if (expr.trim() === '') errors.push('empty expression')
  return { expr, errors, metrics, ranges, functions }
}

/**
 * A Grafana variable query `label_values(selector, label)` (or `label_values(label)`): the
 * selector as PromQL, or undefined when there is none.
 */
export function labelValuesSelector (query: string): { selector: string | undefined; label: string } | undefined {
  const match = /^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/s.exec(query)
  if (match === null) return undefined
  return { selector: match[1], label: match[2] ?? '' }
}
