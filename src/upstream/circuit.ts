import type { FastifyBaseLogger } from 'fastify'
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel'
import { GatewayError, isGatewayError } from '../errors.ts'
import type { ServerConfig } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'

/** Failures that are not the upstream's: a client that left, our own connection queue. */
const NOT_THE_UPSTREAMS = new Set(['PORTCULLIS_ERR_CLIENT_CLOSED', 'PORTCULLIS_ERR_UPSTREAM_BUSY', 'PORTCULLIS_ERR_RATE_LIMITED', 'PORTCULLIS_ERR_TOO_MANY_SESSIONS'])

/**
 * A circuit breaker per upstream (cockatiel): after `consecutiveFailures` failures in a row —
 * refused, reset, timed out, 5xx, 401 — calls fail fast with 503 + Retry-After for
 * `halfOpenAfterMs` instead of piling up on a dead upstream; then one call probes it, and its
 * success closes the circuit again (its failure opens it for another period).
 * `portcullis_upstream_circuit_open{server}` is 1 while calls are held back (open or half-open).
 */
export class UpstreamCircuit {
  readonly #policy: CircuitBreakerPolicy
  readonly #halfOpenAfterMs: number
  #openedAt = 0
  /** no failure counted since the last success: the breaker has nothing to reset */
  #clean = true

  constructor (server: ServerConfig, metrics: Metrics, log: FastifyBaseLogger) {
    const { consecutiveFailures, halfOpenAfterMs } = server.circuitBreaker
    this.#halfOpenAfterMs = halfOpenAfterMs
    this.#policy = circuitBreaker(handleWhen((err) => this.#counts(err)), {
      halfOpenAfter: halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(consecutiveFailures),
    })
    const gauge = metrics.upstreamCircuitOpen.labels({ server: server.name })
    gauge.set(0)
    this.#policy.onBreak(() => {
      this.#openedAt = Date.now()
      gauge.set(1)
      log.warn({ server: server.name, consecutiveFailures, halfOpenAfterMs }, 'upstream circuit open: calls fail fast until a probe succeeds')
    })
    this.#policy.onReset(() => {
      gauge.set(0)
      log.info({ server: server.name }, 'upstream circuit closed: the probe succeeded')
    })
  }

  #counts (err: unknown): boolean {
    return !(isGatewayError(err) && NOT_THE_UPSTREAMS.has(err.code))
  }

  /**
   * Run one upstream call through the breaker; while it is open, refuse without calling. The
   * common case — closed, no failure counted since the last success — calls directly: a success
   * then changes nothing in a ConsecutiveBreaker, so only a failure needs reporting to it, and the
   * hot path skips cockatiel's bookkeeping (test/bench/README.md).
   */
  async run<T> (call: () => Promise<T>): Promise<T> {
    if (this.#clean && this.#policy.state === CircuitState.Closed) {
      try {
        return await call()
      } catch (err) {
        if (this.#counts(err)) {
          this.#clean = false
          // the breaker counts it as if it had run the call itself
          await this.#policy.execute(() => { throw err }).catch(() => {})
        }
        throw err
      }
    }
    try {
      const result = await this.#policy.execute(call)
      if (this.#policy.state === CircuitState.Closed) this.#clean = true
      return result
    } catch (err) {
      if (!(err instanceof BrokenCircuitError)) throw err
      // half-open with its probe under way, or open: the same answer, with when to try again
      const wait = this.#policy.state === CircuitState.HalfOpen ? 1_000 : this.#openedAt + this.#halfOpenAfterMs - Date.now()
      throw new GatewayError('PORTCULLIS_ERR_CIRCUIT_OPEN', undefined, { cause: err, headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) } })
    }
  }
}
