import type { UpstreamErrorReason } from '../errors.ts'
import type { Metrics } from '../telemetry/metrics.ts'

export interface ServerHealth {
  /** ISO 8601 of the last answer from the upstream */
  readonly lastSuccessAt: string | undefined
  /** the last failure: when, and its reason label (refused, timeout, status_5xx …; never a message) */
  readonly lastError: { readonly at: string; readonly reason: UpstreamErrorReason } | undefined
}

interface Entry {
  /** epoch ms: kept as a number on the request path, formatted only when read */
  lastSuccessAt: number
  lastError: { readonly at: number; readonly reason: UpstreamErrorReason } | undefined
}

/** Per server: when its upstream last answered, and its last failure. Reasons are fixed labels. */
export class UpstreamHealth {
  readonly #servers = new Map<string, Entry>()

  /** on every answer: one clock read and one store, nothing formatted */
  answered (server: string): void {
    this.#entry(server).lastSuccessAt = Date.now()
  }

  failed (server: string, reason: UpstreamErrorReason): void {
    this.#entry(server).lastError = { at: Date.now(), reason }
  }

  of (server: string): ServerHealth {
    const entry = this.#servers.get(server)
    return {
      lastSuccessAt: entry === undefined || entry.lastSuccessAt === 0 ? undefined : new Date(entry.lastSuccessAt).toISOString(),
      lastError: entry?.lastError === undefined ? undefined : { at: new Date(entry.lastError.at).toISOString(), reason: entry.lastError.reason },
    }
  }

  #entry (server: string): Entry {
    let entry = this.#servers.get(server)
    if (entry === undefined) this.#servers.set(server, entry = { lastSuccessAt: 0, lastError: undefined })
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
