import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { VERSION } from '../version.ts'

/**
 * Every Prometheus metric of the gateway, declared once (design.md §6). Labels are bounded:
 * `server` is a configured name, `reason` and `error` come from fixed sets in code, `issuer` from
 * the configured trusted issuers.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly tokenRequests = new Counter({
    name: 'portcullis_token_requests_total',
    help: 'Token endpoint requests by grant type and outcome; rejections carry the OAuth error and a reason',
    labelNames: ['grant_type', 'outcome', 'error', 'reason'] as const,
    registers: [this.registry],
  })

  readonly accessTokenValidations = new Counter({
    name: 'portcullis_access_token_validations_total',
    help: 'Access tokens checked on MCP requests (cache hits included), by result and reason',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  })

  readonly jwksFetches = new Counter({
    name: 'portcullis_jwks_fetches_total',
    help: 'Fetches of trusted IdPs\' discovery documents and JWKS, by issuer and outcome',
    labelNames: ['issuer', 'outcome'] as const,
    registers: [this.registry],
  })

  constructor () {
    collectDefaultMetrics({ register: this.registry })
    new Gauge({ name: 'portcullis_build_info', help: 'Portcullis version', labelNames: ['version'], registers: [this.registry] })
      .set({ version: VERSION }, 1)
  }
}
