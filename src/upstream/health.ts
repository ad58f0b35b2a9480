import type { Metrics } from '../telemetry/metrics.ts'

export interface ServerHealth {
  /** ISO 8601 of the last answer from the upstream */
  readonly lastSuccessAt: string | undefined
  /** the last failure: when, and its reason label (refused, timeout, status_5xx …; never a message) */
  readonly lastError: { readonly at: string; readonly reason: string } | undefined
}

/** Per server: when its upstream last answered, and its last failure. Reasons are fixed labels. */
export class UpstreamHealth {
  readonly #servers = new Map<string, { lastSuccessAt: string | undefined; lastError: ServerHealth['lastError'] }>()

  answered (server: string): void {
    this.#entry(server).lastSuccessAt = new Date().toISOString()
  }

  failed (server: string, reason: string): void {
    this.#entry(server).lastError = { at: new Date().toISOString(), reason }
  }

  of (server: string): ServerHealth {
    const entry = this.#servers.get(server)
    return { lastSuccessAt: entry?.lastSuccessAt, lastError: entry?.lastError }
  }

  #entry (server: string): { lastSuccessAt: string | undefined; lastError: ServerHealth['lastError'] } {
    let entry = this.#servers.get(server)
    if (entry === undefined) this.#servers.set(server, entry = { lastSuccessAt: undefined, lastError: undefined })
    return entry
  }
}

/**
 * One health table per gateway, found through the gateway's Metrics — the object every upstream
 * already holds — so the upstreams need no new constructor argument to report to it.
 */
const tables = new WeakMap<Metrics, UpstreamHealth>()

export function upstreamHealth (metrics: Metrics): UpstreamHealth {
  let table = tables.get(metrics)
  if (table === undefined) tables.set(metrics, table = new UpstreamHealth())
  return table
}
