import { LRUCache } from 'lru-cache'
import { digest, randomToken } from './pkce.ts'

/** What an authorization code stands for: who logged in, for which client, redirect URI, PKCE challenge and resource. */
export interface CodeGrant {
  readonly clientId: string
  readonly redirectUri: string
  readonly codeChallenge: string
  /** the one MCP server (its resource id) the code is for */
  readonly resource: string
  readonly scopes: readonly string[]
  readonly subject: string
  readonly idpIssuer: string
  /** identity claims already mapped for the access token */
  readonly claims: Readonly<Record<string, unknown>>
}

interface Entry {
  readonly grant: CodeGrant
  state: 'fresh' | 'redeemed' | 'replayed'
  /** access tokens issued from it, to revoke on replay */
  readonly tokens: Array<{ readonly jti: string, readonly expiresAt: number }>
}

export interface AuthorizationCodeOptions {
  /** how long a fresh code may be redeemed (OAuth 2.1 §4.1.2: short; RFC 6749: at most 10 min) */
  readonly codeTtlMs: number
  /** how long a redeemed code is remembered, so a replay can still revoke: the access-token lifetime */
  readonly rememberRedeemedMs: number
}

/**
 * Single-use, short-lived authorization codes (RFC 6749 §4.1.2, §10.5). Kept by the SHA-256 of
 * the code, never the code. Each check-and-set is atomic within a process.
 * TODO(scale-out): a Redis implementation of the same operations, so replicas share codes.
 */
export class AuthorizationCodes {
  readonly #opts: AuthorizationCodeOptions
  readonly #entries = new LRUCache<string, Entry>({ max: 100_000 })

  constructor (opts: AuthorizationCodeOptions) {
    this.#opts = opts
  }

  /** A new code for `grant`. */
  issue (grant: CodeGrant): string {
    const code = randomToken()
    this.#entries.set(digest(code), { grant, state: 'fresh', tokens: [] }, { ttl: this.#opts.codeTtlMs })
    return code
  }

  /** The code's grant and whether it was redeemed already; undefined when unknown or expired. */
  find (code: string): { readonly grant: CodeGrant, readonly redeemed: boolean } | undefined {
    const entry = this.#entries.get(digest(code))
    return entry === undefined ? undefined : { grant: entry.grant, redeemed: entry.state !== 'fresh' }
  }

  /** Redeem it: true the first time; after that it is remembered as long as its tokens live. */
  redeem (code: string): boolean {
    const key = digest(code)
    const entry = this.#entries.get(key)
    if (entry?.state !== 'fresh') return false
    entry.state = 'redeemed'
    this.#entries.set(key, entry, { ttl: this.#opts.rememberRedeemedMs })
    return true
  }

  /** A redeemed code was presented again: mark it, and return what it issued so that it is revoked. */
  replayed (code: string): ReadonlyArray<{ readonly jti: string, readonly expiresAt: number }> {
    const entry = this.#entries.get(digest(code))
    if (entry === undefined) return []
    entry.state = 'replayed'
    return [...entry.tokens]
  }

  /** Remember a token issued from the code; false if the code was replayed meanwhile (then revoke it too). */
  recordToken (code: string, jti: string, expiresAt: number): boolean {
    const entry = this.#entries.get(digest(code))
    if (entry === undefined) return false
    entry.tokens.push({ jti, expiresAt })
    return entry.state !== 'replayed'
  }
}
