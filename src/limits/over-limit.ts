import { GatewayError } from '../errors.ts'
import type { Metrics } from '../telemetry/metrics.ts'

/** Which limit refused a request: the `limit` label of portcullis_rate_limited_total. */
export type LimitName = 'streams' | 'stdio_sessions' | 'sse_sessions'

/** Seconds a client is told to wait before trying again when a concurrency cap refused it. */
const RETRY_AFTER_SECONDS = '5'

/** The refusal of a request over a limit (429 + Retry-After), counted. */
export function overLimit (metrics: Metrics, server: string, limit: LimitName, detail: string): GatewayError {
  metrics.rateLimited.inc({ server, limit })
  return new GatewayError('PORTCULLIS_ERR_RATE_LIMITED', detail, { headers: { 'retry-after': RETRY_AFTER_SECONDS } })
}
