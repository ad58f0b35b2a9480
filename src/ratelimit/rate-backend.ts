import type { FastifyBaseLogger } from 'fastify'
import type { Store } from '../store/store.ts'
import { RedisStore } from '../store/redis-store.ts'
import type { RateBackend } from './rate-limiter.ts'

const FALLBACK_LOG_INTERVAL_MS = 60_000

/** Redis when the store is Redis (replicas count together), else memory; fallbacks are logged at most once a minute with their count. */
export function rateBackend (store: Store, keyPrefix: string, log: FastifyBaseLogger): RateBackend {
  let fallbacks = 0
  let nextLog = 0
  return {
    redis: store instanceof RedisStore ? store.limiterClient : undefined,
    keyPrefix,
    up: () => store.up,
    onFallback () {
      fallbacks++
      const now = Date.now()
      if (now < nextLog) return
      log.warn({ 'event.name': 'ratelimit.fallback', count: fallbacks },
        'rate limits counted in this replica\'s memory: the store did not answer (each replica now allows the whole limit)')
      fallbacks = 0
      nextLog = now + FALLBACK_LOG_INTERVAL_MS
    },
  }
}
