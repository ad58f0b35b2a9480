import type { IdentityProviderConfig } from '../../config/types.ts'
import { isLoopback } from '../../config/urls.ts'
import type { TrustedIssuer } from '../grants/jwt-bearer-id-jag.ts'
import { OAuthError, type OAuthReason } from '../errors.ts'
import { fetchJson, isObject, type FetchLimits } from './http.ts'
import { s256 } from './pkce.ts'

/** The trusted IdP the federated login goes to, and the gateway's OIDC client registration there. */
export interface LoginIdp {
  readonly trusted: TrustedIssuer
  readonly login: NonNullable<IdentityProviderConfig['login']>
}

export interface IdpEndpoints {
  readonly authorizationEndpoint: string
  readonly tokenEndpoint: string
  /** RFC 9207: the IdP puts `iss` in its authorization responses, so one without it is refused */
  readonly issParameter: boolean
}

const IDP_LIMITS: FetchLimits = { timeoutMs: 5_000, maxBytes: 512 * 1024 }
const DISCOVERY_MAX_AGE_MS = 10 * 60_000
/** The OIDC scopes asked of the IdP: the identity claims the rules use live in the ID token. */
const IDP_SCOPE = 'openid email profile'

/**
 * The IdP's OIDC discovery document (of the *configured* issuer, whose `issuer` must equal it:
 * OIDC Discovery §4.3), cached for ten minutes; its endpoints must be https except on loopback.
 */
export class IdpDiscovery {
  readonly #issuer: string
  #cached: { endpoints: IdpEndpoints, at: number } | undefined

  constructor (issuer: string) {
    this.#issuer = issuer
  }

  async endpoints (): Promise<IdpEndpoints> {
    if (this.#cached !== undefined && Date.now() - this.#cached.at < DISCOVERY_MAX_AGE_MS) return this.#cached.endpoints
    let endpoints: IdpEndpoints
    try {
      const { status, body } = await fetchJson(`${this.#issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {}, IDP_LIMITS)
      if (status !== 200 || !isObject(body)) throw new Error(`discovery answered HTTP ${status}`)
      if (body.issuer !== this.#issuer) throw new Error('discovery document names another issuer')
      endpoints = {
        authorizationEndpoint: endpointUrl(body.authorization_endpoint),
        tokenEndpoint: endpointUrl(body.token_endpoint),
        issParameter: body.authorization_response_iss_parameter_supported === true,
      }
    } catch (err) {
      throw new OAuthError('temporarily_unavailable', 'The identity provider cannot be reached; try again later', 'idp_discovery_failed', { cause: err })
    }
    this.#cached = { endpoints, at: Date.now() }
    return endpoints
  }
}

function endpointUrl (value: unknown): string {
  if (typeof value !== 'string' || !URL.canParse(value)) throw new Error('discovery document lacks an endpoint')
  const url = new URL(value)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) throw new Error('IdP endpoints must be https')
  return value
}

/** Our OIDC authorization request (code flow, PKCE S256, `state`, `nonce`) at the IdP. */
export function idpAuthorizationUrl (endpoints: IdpEndpoints, idp: LoginIdp, callbackUrl: string,
  login: { readonly state: string, readonly nonce: string, readonly verifier: string }): string {
  const url = new URL(endpoints.authorizationEndpoint)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', idp.login.clientId)
  url.searchParams.set('redirect_uri', callbackUrl)
  url.searchParams.set('scope', IDP_SCOPE)
  url.searchParams.set('state', login.state)
  url.searchParams.set('nonce', login.nonce)
  url.searchParams.set('code_challenge', s256(login.verifier))
  url.searchParams.set('code_challenge_method', 'S256')
  return url.href
}

/** The IdP's code for its ID token, at its token endpoint, as the client the gateway is registered as there. */
export async function exchangeIdpCode (endpoints: IdpEndpoints, idp: LoginIdp, callbackUrl: string, code: string, verifier: string): Promise<string> {
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: callbackUrl, code_verifier: verifier })
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  const { clientId, clientSecret } = idp.login
  if (clientSecret === undefined) form.set('client_id', clientId)
  else headers.authorization = `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`
  let answer
  try {
    answer = await fetchJson(endpoints.tokenEndpoint, { method: 'POST', headers, body: form.toString() }, IDP_LIMITS)
  } catch (err) {
    throw denied('The identity provider did not answer the code exchange', 'idp_token_failed', err)
  }
  if (answer.status !== 200 || !isObject(answer.body)) throw denied('The identity provider refused the code exchange', 'idp_token_refused')
  const idToken = answer.body.id_token
  if (typeof idToken !== 'string') throw denied('The identity provider returned no ID token', 'idp_no_id_token')
  return idToken
}

/** RFC 6749 §2.3.1: each part form-urlencoded before joining with ':'. */
function formEncode (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

export function denied (description: string, reason: OAuthReason, cause?: unknown): OAuthError {
  return new OAuthError('access_denied', description, reason, { cause })
}
