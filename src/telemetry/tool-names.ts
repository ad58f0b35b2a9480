import type { CompiledPolicy } from '../policy/decide.ts'

/** Most upstream-listed tool names remembered per server, so a hostile upstream can't mint labels either. */
const MAX_LISTED_PER_SERVER = 1000

/**
 * Bounded metric labels for tool names (design.md §6): a name the rules mention or the upstream's
 * tools/list offered is itself; anything a client makes up is `_unknown`, so a client can't mint
 * a series per call.
 */
export class ToolNames {
  readonly #listed = new Map<string, Set<string>>()

  remember (server: string, names: readonly string[]): void {
    let set = this.#listed.get(server)
    if (set === undefined) this.#listed.set(server, set = new Set())
    for (const name of names) {
      if (set.size >= MAX_LISTED_PER_SERVER) break
      if (name.length <= 128) set.add(name)
    }
  }

  label (policy: CompiledPolicy, name: string | undefined): string {
    if (name === undefined) return '_unknown'
    return policy.namedTools.has(name) || this.#listed.get(policy.server)?.has(name) === true ? name : '_unknown'
  }
}
