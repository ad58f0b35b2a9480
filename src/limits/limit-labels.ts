/**
 * The `limit` label of portcullis_rate_limited_total: which limit refused a request with 429. A
 * value outside the set fails typecheck (telemetry/metrics.ts takes only these), so a typo cannot
 * start a new series. Alerts, the soak report and tests depend on them: add, never rename.
 */
export const RATE_LIMITED_LABELS = [
  // per-principal concurrency caps (over-limit.ts: LimitName)
  'streams', 'stdio_sessions', 'sse_sessions',
  // authorization.rateLimits on /oauth/* (server `_oauth`), by their `per`
  'address', 'client',
  // servers.*.rateLimits: `rate_${per}`
  'rate_subject', 'rate_client', 'rate_server',
] as const
export type RateLimitedLabel = typeof RATE_LIMITED_LABELS[number]
