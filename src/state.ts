import type { FastifyBaseLogger } from 'fastify'
import type { Config } from './config/types.ts'
import { UpstreamRegistry } from './upstream/registry.ts'
import { compilePolicy, type CompiledPolicy } from './policy/decide.ts'
import type { Metrics } from './telemetry/metrics.ts'
import type { Sessions } from './session/sessions.ts'

/**
 * Everything a request is judged and forwarded by, built from one config. A request reads the
 * state once, when it starts (resolveServer), and uses that snapshot to the end — so a reload
 * that swaps the state never mixes two configs within one request.
 */
export interface GatewayState {
  readonly config: Config
  readonly upstreams: UpstreamRegistry
  readonly policies: ReadonlyMap<string, CompiledPolicy>
}

export function buildState (config: Config, log: FastifyBaseLogger, metrics: Metrics, sessions: Sessions, previous?: GatewayState): GatewayState {
  return Object.freeze({
    config,
    upstreams: new UpstreamRegistry(config, log, metrics, sessions, previous?.upstreams),
    policies: new Map(Object.values(config.servers).map((server) => [server.name, compilePolicy(server)])),
  })
}

/** The current state; swapped atomically (one assignment) by a reload. */
export class StateHolder {
  current: GatewayState
  constructor (initial: GatewayState) {
    this.current = initial
  }
}
