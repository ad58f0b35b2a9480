import type { ReloadEntry } from './sources.ts'

/** The last 50 reloads, newest first. */
export class ReloadHistory {
  readonly #entries: ReloadEntry[] = []

  add (applied: boolean, restartNeeded: readonly string[]): void {
    this.#entries.unshift({ at: new Date().toISOString(), applied, restartNeeded: [...restartNeeded] })
    if (this.#entries.length > 50) this.#entries.pop()
  }

  list (): ReloadEntry[] {
    return [...this.#entries]
  }
}
