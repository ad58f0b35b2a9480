import { StoreUnavailable, type Store } from '../../store/store.ts'
import { failingClosed, parseStored, ttlUntil } from '../shared-state.ts'
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

export interface IssuedToken {
  readonly jti: string
  /** epoch seconds */
  readonly expiresAt: number
}

/** The stored value of one code. */
interface Entry {
  readonly grant: CodeGrant
  readonly state: 'fresh' | 'redeemed' | 'replayed'
  /** access tokens issued from it, to revoke on replay */
  readonly tokens: readonly IssuedToken[]
  /** when the store forgets it (epoch ms): every rewrite keeps this lifetime */
  readonly until: number
}

export interface AuthorizationCodeOptions {
  /** how long a fresh code may be redeemed (OAuth 2.1 §4.1.2: short; RFC 6749: at most 10 min) */
  readonly codeTtlMs: number
  /** how long a redeemed code is remembered, so a replay can still revoke: the access-token lifetime */
  readonly rememberRedeemedMs: number
}

/** A state change: the new entry to write (none: nothing changes) and the answer. */
type Change<T> = (entry: Entry) => { readonly next?: Entry, readonly result: T }

const CAS_ATTEMPTS = 5

/**
 * Single-use, short-lived authorization codes (RFC 6749 §4.1.2, §10.5) in the shared store, one
 * JSON value per code under the SHA-256 of the code (a dump of the store redeems nothing). Every
 * state change is read, modify, compare-and-set — retried when another replica changed it
 * first — so a code is redeemed once across all replicas.
 */
export class AuthorizationCodes {
  readonly #store: Store
  readonly #opts: AuthorizationCodeOptions

  constructor (store: Store, opts: AuthorizationCodeOptions) {
    this.#store = failingClosed(store)
    this.#opts = opts
  }

  /** A new code for `grant`. */
  async issue (grant: CodeGrant): Promise<string> {
    const code = randomToken()
    const entry: Entry = { grant, state: 'fresh', tokens: [], until: Date.now() + this.#opts.codeTtlMs }
    if (!await this.#store.setIfAbsent(codeKey(code), JSON.stringify(entry), this.#opts.codeTtlMs)) throw new Error('a fresh authorization code collided')
    return code
  }

  /** The code's grant and whether it was redeemed already; undefined when unknown or expired. */
  async find (code: string): Promise<{ readonly grant: CodeGrant, readonly redeemed: boolean } | undefined> {
    const value = await this.#store.get(codeKey(code))
    if (value === undefined) return undefined
    const entry = parseStored(value, isEntry)
    return { grant: entry.grant, redeemed: entry.state !== 'fresh' }
  }

  /** Redeem it: true the first time; after that it is remembered as long as its tokens live. */
  async redeem (code: string): Promise<boolean> {
    return await this.#update(code, false, (entry) => entry.state !== 'fresh'
      ? { result: false }
      : { next: { ...entry, state: 'redeemed', until: Date.now() + this.#opts.rememberRedeemedMs }, result: true })
  }

  /** A redeemed code was presented again: mark it, and return what it issued so that it is revoked. */
  async replayed (code: string): Promise<readonly IssuedToken[]> {
    return await this.#update<readonly IssuedToken[]>(code, [], (entry) => entry.state === 'replayed'
      ? { result: entry.tokens }
      : { next: { ...entry, state: 'replayed' }, result: entry.tokens })
  }

  /** Remember a token issued from the code; false if the code was replayed meanwhile (then revoke it too). */
  async recordToken (code: string, jti: string, expiresAt: number): Promise<boolean> {
    return await this.#update(code, false, (entry) => ({ next: { ...entry, tokens: [...entry.tokens, { jti, expiresAt }] }, result: entry.state !== 'replayed' }))
  }

  /** Read, change, compare-and-set; on a lost race read again. `missing`: the answer for an unknown or expired code. */
  async #update<T> (code: string, missing: T, change: Change<T>): Promise<T> {
    const key = codeKey(code)
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const value = await this.#store.get(key)
      if (value === undefined) return missing
      const { next, result } = change(parseStored(value, isEntry))
      if (next === undefined || await this.#store.compareAndSet(key, value, JSON.stringify(next), ttlUntil(next.until))) return result
    }
    // Fail closed: the caller answers 503 rather than guess.
    throw new StoreUnavailable('the authorization code kept changing under concurrent updates')
  }
}

function codeKey (code: string): string {
  return `code:${digest(code)}`
}

function isEntry (value: unknown): value is Entry {
  if (typeof value !== 'object' || value === null) return false
  const entry = value as Partial<Record<keyof Entry, unknown>>
  return typeof entry.grant === 'object' && entry.grant !== null && typeof entry.until === 'number' && Array.isArray(entry.tokens) &&
    (entry.state === 'fresh' || entry.state === 'redeemed' || entry.state === 'replayed')
}
