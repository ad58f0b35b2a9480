/**
 * Problems found while loading a configuration, and how their paths are written.
 *
 * A problem names the exact place in the file (`servers.github.upstream.url`,
 * `authorization.clients[1].secret`) and says what is wrong with it. Messages never
 * repeat the offending value: it may be a secret, or may have come from `${ENV}`.
 */

export type PathSegment = string | number

export interface Problem {
  readonly path: string
  readonly message: string
}

/** Keys that read well after a dot; anything else is quoted so that `servers["a.b"]` stays unambiguous. */
const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/

export function formatPath (segments: readonly PathSegment[]): string {
  let out = ''
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`
    else out += `[${JSON.stringify(segment)}]`
  }
  return out === '' ? '(root)' : out
}

export class ConfigError extends Error {
  readonly code = 'PORTCULLIS_CONFIG_INVALID'
  readonly source: string
  readonly problems: readonly Problem[]

  constructor (source: string, problems: readonly Problem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
    super([`invalid configuration ${source} (${count}):`, ...problems.map(formatProblem)].join('\n'))
    this.name = 'ConfigError'
    this.source = source
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })))
  }
}

export function formatProblem (problem: Problem): string {
  return `${problem.path}: ${problem.message}`
}
