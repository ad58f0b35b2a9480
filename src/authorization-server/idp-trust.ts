import { request } from 'undici'
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { IdentityProviderConfig } from '../config/types.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { isLoopback } from '../config/urls.ts'
import { OAuthError } from './errors.ts'

export interface KeySourceOptions {
  /** bound on one fetch of a discovery document or JWKS */
  readonly timeoutMs: number
  /** an unknown `kid` triggers at most one refetch per this period */
  readonly cooldownMs: number
  /** keys older than this are fetched again by the next grant that needs them (it waits, once per cooldown); a failed fetch keeps the old keys */
  readonly maxAgeMs: number
  /** largest discovery document or JWKS accepted */
  readonly maxBytes: number
}

export const DEFAULT_KEY_SOURCE: KeySourceOptions = { timeoutMs: 5_000, cooldownMs: 30_000, maxAgeMs: 10 * 60_000, maxBytes: 512 * 1024 }

/**
 * The signing keys of one trusted IdP (EMA §7.4.1: from the configured `jwksUri`, or from the
 * discovery document of the *configured* issuer, whose `issuer` must equal it). Keys, once
 * fetched, are kept through an IdP outage; with no usable key the grant fails closed and fast
 * (`temporarily_unavailable`) instead of waiting on a dead IdP for every request.
 */
export class IdpKeySource {
  readonly issuer: string
  readonly #config: IdentityProviderConfig
  readonly #opts: KeySourceOptions
  readonly #metrics: Metrics
  #jwks: JWTVerifyGetKey | undefined
  #kids = new Set<string>()
  #fetchedAt = 0
  #lastAttempt = 0
  #lastError: { readonly at: number; readonly message: string } | undefined
  #inFlight: Promise<void> | undefined

  constructor (config: IdentityProviderConfig, metrics: Metrics, opts: KeySourceOptions = DEFAULT_KEY_SOURCE) {
    this.issuer = config.issuer
    this.#config = config
    this.#opts = opts
    this.#metrics = metrics
  }

  /** The key lookup for jose's jwtVerify, after making sure a key with this `kid` is known if it can be. */
  async keysFor (kid: string | undefined): Promise<JWTVerifyGetKey> {
    const now = Date.now()
    const stale = now - this.#fetchedAt > this.#opts.maxAgeMs
    const unknownKid = kid !== undefined && !this.#kids.has(kid)
    const mayFetch = now - this.#lastAttempt > this.#opts.cooldownMs
    if (this.#jwks === undefined || ((unknownKid || stale) && mayFetch)) {
      try {
        await this.#refresh()
      } catch (err) {
        if (this.#jwks === undefined) {
          throw new OAuthError('temporarily_unavailable', 'The identity provider\'s keys are unavailable; try again later', 'jwks_unavailable', { cause: err })
        }
      }
    }
    if (this.#jwks === undefined) {
      throw new OAuthError('temporarily_unavailable', 'The identity provider\'s keys are unavailable; try again later', 'jwks_unavailable')
    }
    return this.#jwks
  }

  /** For the console: when the keys were last fetched (epoch ms, 0 never), their kids, and the last failure. */
  get state (): { readonly fetchedAt: number; readonly kids: readonly string[]; readonly lastError: { readonly at: number; readonly message: string } | undefined } {
    return { fetchedAt: this.#fetchedAt, kids: [...this.#kids], lastError: this.#lastError }
  }

  /** One fetch at a time; concurrent callers share it. */
  #refresh (): Promise<void> {
    this.#inFlight ??= this.#fetchKeys().finally(() => { this.#inFlight = undefined })
    return this.#inFlight
  }

  async #fetchKeys (): Promise<void> {
    this.#lastAttempt = Date.now()
    try {
      const jwksUri = this.#config.jwksUri ?? await this.#discoverJwksUri()
      const jwks = await this.#fetchJson(jwksUri)
      if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new Error('JWKS without keys')
      const set = jwks as JSONWebKeySet
      this.#jwks = createLocalJWKSet(set)
      this.#kids = new Set(set.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'))
      this.#fetchedAt = Date.now()
      this.#metrics.jwksFetches.inc({ issuer: this.issuer, outcome: 'success' })
      this.#metrics.jwksLastSuccess.set({ issuer: this.issuer }, this.#fetchedAt / 1000)
    } catch (err) {
      this.#metrics.jwksFetches.inc({ issuer: this.issuer, outcome: 'failure' })
      this.#lastError = { at: Date.now(), message: String((err as Error).message ?? err).slice(0, 200) }
      throw err
    }
  }

  async #discoverJwksUri (): Promise<string> {
    const doc = await this.#fetchJson(`${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)
    if (typeof doc !== 'object' || doc === null) throw new Error('discovery document is not an object')
    const { issuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown }
    // OIDC Discovery §4.3: the issuer in the document MUST be identical to the one used to find it.
    if (issuer !== this.issuer) throw new Error('discovery document names another issuer')
    if (typeof jwksUri !== 'string') throw new Error('discovery document has no jwks_uri')
    const url = new URL(jwksUri)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) throw new Error('jwks_uri must be https')
    return jwksUri
  }

  /** GET a JSON document: bounded in time and size, no redirects followed. */
  async #fetchJson (url: string): Promise<unknown> {
    const signal = AbortSignal.timeout(this.#opts.timeoutMs)
    // undici's request() follows no redirects: a 3xx is a failure like any other non-200.
    const res = await request(url, { method: 'GET', headers: { accept: 'application/json' }, signal })
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new Error(`HTTP ${res.statusCode}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > this.#opts.maxBytes) {
        res.body.destroy()
        throw new Error('document too large')
      }
      chunks.push(chunk as Buffer)
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  }
}
