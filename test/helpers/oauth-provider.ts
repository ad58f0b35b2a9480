import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'

/**
 * The smallest OAuthClientProvider an MCP application would write: everything in memory, the
 * "browser redirect" recorded for the test to follow. Works with SDK 1.x and, structurally, 2.x.
 */
export class MemoryOAuthProvider implements OAuthClientProvider {
  readonly redirectUrl: string
  readonly #authMethod: 'none' | 'client_secret_basic' | 'client_secret_post'
  registered: (OAuthClientInformationMixed & { client_secret?: string, token_endpoint_auth_method?: string }) | undefined
  saved: OAuthTokens | undefined
  authorizationUrl: URL | undefined
  lastState: string | undefined
  #verifier = ''

  constructor (redirectUrl: string, authMethod: 'none' | 'client_secret_basic' | 'client_secret_post') {
    this.redirectUrl = redirectUrl
    this.#authMethod = authMethod
  }

  get clientMetadata (): OAuthClientMetadata {
    return {
      client_name: 'federated test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: this.#authMethod,
    }
  }

  state (): string {
    this.lastState = `st-${Math.random().toString(36).slice(2)}`
    return this.lastState
  }

  clientInformation (): OAuthClientInformationMixed | undefined { return this.registered }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.registered = info }
  tokens (): OAuthTokens | undefined { return this.saved }
  saveTokens (tokens: OAuthTokens): void { this.saved = tokens }
  redirectToAuthorization (url: URL): void { this.authorizationUrl = url }
  saveCodeVerifier (verifier: string): void { this.#verifier = verifier }
  codeVerifier (): string { return this.#verifier }
}
