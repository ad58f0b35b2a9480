import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts, type RateLimiterAbstract } from 'rate-limiter-flexible'

/** A limit: `points` requests per `durationSeconds` for one key. */
export interface RateRule {
  readonly points: number
  readonly durationSeconds: number
}

/** Where the counters live: Redis (every replica counts together), or this process. */
export interface RateBackend {
  /** a node-redis client; undefined: process memory */
  readonly redis: unknown
  /** prepended to every Redis key (the store's keyPrefix) */
  readonly keyPrefix: string
  /** the store's health (its PING): false → straight to the fallback, no command sent */
  readonly up: () => boolean
  /** a decision was made with this process's fallback counters because Redis did not answer */
  readonly onFallback: () => void
}

export interface Limited<R> {
  readonly rule: R
  readonly key: string
  /** whole seconds until the rule lets this key through again (at least 1) */
  readonly retryAfterSeconds: number
  /** the first rejection of this key in its window (log it once, count them all) */
  readonly first: boolean
}

/** Keys from callers (client ids, addresses) are unauthenticated: bounded before they reach Redis. */
export const MAX_KEY_LENGTH = 200
/** A Redis that has not answered a rate-limit INCR by then is treated as down for that request. */
const REDIS_TIMEOUT_MS = 250

/**
 * Rate limits by rule and key, with rate-limiter-flexible: fixed windows of `durationSeconds`
 * counted atomically in Redis (one Lua INCR per rule) when there is a Redis, else in memory.
 * Redis down, or silent for 250 ms → the same rule in this process's memory (the library's
 * insurance limiter), counted through `onFallback`: limits then hold per replica, never fail
 * open, and a hung Redis costs a request 250 ms per hook at most (the store's own timeout is 1 s).
 * Reusable: the /oauth/* limits use it, and so can `servers.*.rateLimits`.
 */
export class RateLimiter<R extends RateRule> {
  readonly #rules: ReadonlyArray<{ rule: R, shared: RateLimiterAbstract, local: RateLimiterAbstract }>
  readonly #up: () => boolean

  /** `name` keeps the counters of different users of one Redis apart (e.g. `oauth`, `server:files`). */
  constructor (name: string, rules: readonly R[], backend: RateBackend) {
    this.#up = backend.up
    this.#rules = rules.map((rule, i) => {
      const opts = { keyPrefix: `${backend.keyPrefix}rl:${name}:${i}`, points: rule.points, duration: rule.durationSeconds }
      if (backend.redis === undefined) {
        const local = new RateLimiterMemory(opts)
        return { rule, shared: local, local }
      }
      const local = new FallbackLimiter(opts, backend.onFallback)
      // not connected: rejected at once, no command sent; the wrapper's timeout covers a hung one
      const redis = new RateLimiterRedis({ ...opts, storeClient: backend.redis, useRedisPackage: true, rejectIfRedisNotReady: true })
      return { rule, shared: new RLWrapperTimeouts({ limiter: redis, timeoutMs: REDIS_TIMEOUT_MS, insuranceLimiter: local }), local }
    })
  }

  /**
   * Count one request against every rule `keyOf` gives a key for (undefined: the rule does not
   * apply); the first rule over its limit, or undefined when the request may go on.
   */
  async check (keyOf: (rule: R) => string | undefined): Promise<Limited<R> | undefined> {
    const up = this.#up()
    const results = await Promise.all(this.#rules.map(async ({ rule, shared, local }) => {
      const key = keyOf(rule)?.slice(0, MAX_KEY_LENGTH)
      if (key === undefined) return undefined
      try {
        await (up ? shared : local).consume(key)
        return undefined
      } catch (err) {
        // An Error: neither Redis nor the fallback could count; let the request through.
        if (!(err instanceof RateLimiterRes)) return undefined
        return { rule, key, retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)), first: err.consumedPoints === rule.points + 1 }
      }
    }))
    return results.find((r) => r !== undefined)
  }
}

/** The insurance limiter: process memory, reporting each decision it makes. */
class FallbackLimiter extends RateLimiterMemory {
  readonly #onUse: () => void

  constructor (opts: { keyPrefix: string, points: number, duration: number }, onUse: () => void) {
    super(opts)
    this.#onUse = onUse
  }

  override async consume (key: string | number, points?: number, options?: Record<string, unknown>): Promise<RateLimiterRes> {
    this.#onUse()
    return await super.consume(key, points, options)
  }
}
