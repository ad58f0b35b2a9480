/**
 * The YAML as the schema (schema.ts) describes it, after validation: defaults filled in,
 * cross-field rules (checks.ts) not yet applied. build.ts turns it into `Config`.
 */
import type { ClientAuthMethod, OAuthEndpoint, PolicyMode, ServerAuth } from './types.ts'

export type Transport = 'streamable-http' | 'sse' | 'stdio'
export type StringOrList = string | string[]
export interface RawRule {
  id?: string
  allow?: StringOrList
  deny?: StringOrList
  scopes?: string[]
  claims?: Record<string, StringOrList>
}
export interface RawUpstream {
  url?: string
  transport?: Transport
  command?: string
  args?: string[]
  env?: Record<string, string>
  cwd?: string
  headers: Record<string, string>
  connectTimeoutMs?: number
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
  maxConnections?: number
  tlsVerify?: boolean
  maxSessions?: number
  maxSessionsPerPrincipal?: number
  idleTimeoutMs?: number
  requestTimeoutMs?: number
}
export interface RawServer {
  upstream: RawUpstream
  scopes: string[]
  tools?: RawRule[]
  prompts?: RawRule[]
  resources?: RawRule[]
  mode: PolicyMode
  auth: ServerAuth
  rateLimits: Array<{ per: 'subject' | 'client' | 'server'; rate: string; tools?: string[] }>
  circuitBreaker: { consecutiveFailures: number; halfOpenAfterMs: number }
}
export interface RawClient {
  clientId: string
  auth: ClientAuthMethod
  secret?: string
  jwksUri?: string
  jwks?: { keys: Record<string, unknown>[] }
  redirectUris: string[]
}
export interface RawIdentityProvider {
  issuer: string
  jwksUri?: string
  algorithms: string[]
  allowedClients?: string[]
  claims: Record<string, string>
  login?: { clientId: string; clientSecret?: string }
}
export interface RawConfig {
  publicUrl: string
  listen: { host: string; port: number; allowedOrigins: string[]; drainTimeoutMs: number; advertiseUrl?: string; trustProxy: string[] }
  limits: { maxBodyBytes: number; maxStreamsPerPrincipal: number; upstreamWaitMs: number; headersTimeoutMs: number; requestTimeoutMs: number; streamStallMs: number; maxStreamBufferBytes: number }
  admin: { host: string; port: number; token?: string; metricsRequireToken: boolean; traceUrlTemplate?: string }
  authorization: {
    issuer?: string
    signingKeys?: string
    accessTokenTtlSeconds: number
    assertion: { maxLifetimeSeconds: number; clockSkewSeconds: number }
    clients: RawClient[]
    identityProviders: RawIdentityProvider[]
    registration: { dynamic: boolean; clientIdMetadataDocuments: boolean; allowedRedirectHosts: string[]; maxClients: number; unusedClientTtlSeconds: number }
    consent: { rememberSeconds: number }
    rateLimits: Array<{ per: 'address' | 'client'; rate: string; endpoints?: OAuthEndpoint[] }>
  }
  store?: { url: string; keyPrefix: string }
  servers: Record<string, RawServer>
}
