import { ToolNames } from '../../telemetry/tool-names.ts'

/** ToolNames that also keep, per server, the names of the upstream's last tools/list (at most 1000). */
export class ListedTools extends ToolNames {
  readonly #last = new Map<string, readonly string[]>()

  override remember (server: string, names: readonly string[]): void {
    super.remember(server, names)
    this.#last.set(server, names.slice(0, 1000))
  }

  last (server: string): readonly string[] {
    return this.#last.get(server) ?? []
  }
}
