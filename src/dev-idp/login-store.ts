/**
 * The dev IdP's login state: authorization requests waiting at the user picker (ten minutes,
 * used once) and the authorization codes issued from them (one minute, used once). In memory,
 * bounded: this is a dev IdP.
 */
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/** A validated OIDC authorization request (code flow, PKCE S256). */
export interface LoginRequest {
  readonly clientId: string
  readonly redirectUri: string
  readonly state: string | undefined
  readonly nonce: string | undefined
  readonly codeChallenge: string
  readonly scope: string
}

export interface IssuedCode {
  readonly request: LoginRequest
  readonly sub: string
  readonly authTime: number
}

export class LoginStore {
  readonly #requests = new LRUCache<string, LoginRequest>({ max: 10_000, ttl: 10 * 60_000 })
  readonly #codes = new LRUCache<string, IssuedCode>({ max: 10_000, ttl: 60_000 })

  /** Park a request for the picker; the returned transaction id is the form's hidden field. */
  park (request: LoginRequest): string {
    const tx = randomBytes(24).toString('base64url')
    this.#requests.set(tx, request)
    return tx
  }

  /** The parked request, removed. */
  resume (tx: string): LoginRequest | undefined {
    const request = this.#requests.get(tx)
    this.#requests.delete(tx)
    return request
  }

  issueCode (issued: IssuedCode): string {
    const code = randomBytes(32).toString('base64url')
    this.#codes.set(code, issued)
    return code
  }

  /** The code's grant, removed: a second redemption finds nothing. */
  redeem (code: string): IssuedCode | undefined {
    const issued = this.#codes.get(code)
    this.#codes.delete(code)
    return issued
  }
}
