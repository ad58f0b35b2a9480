import { LRUCache } from 'lru-cache'
import { timingSafeEqual } from 'node:crypto'
import { digest, randomToken } from './pkce.ts'

/** A login in progress at the IdP: what the client asked for, and the secrets of our own OIDC request. */
export interface PendingLogin {
  readonly clientId: string
  readonly redirectUri: string
  readonly clientState: string | undefined
  readonly codeChallenge: string
  readonly resource: string
  readonly scopes: readonly string[]
  /** our OIDC `nonce` and PKCE verifier towards the IdP */
  readonly nonce: string
  readonly verifier: string
  /** SHA-256 of the value of the cookie that ties the login to the browser that started it */
  readonly browserBinding: string
}

export interface StartedLogin {
  /** our `state` towards the IdP: the key of the pending login */
  readonly state: string
  /** the `Set-Cookie` value that binds it to this browser */
  readonly cookie: string
}

export const CALLBACK_PATH = '/oauth/callback'
const LOGIN_TTL_MS = 10 * 60_000

/**
 * Logins between `/oauth/authorize` and `/oauth/callback`, keyed by our `state`, each usable once
 * and for ten minutes. A cookie scoped to the callback path binds each to the browser that
 * started it: a callback replayed or forged from elsewhere lacks it.
 * TODO(scale-out): share through the store, or keep the login sticky to one replica.
 */
export class PendingLogins {
  readonly #logins = new LRUCache<string, PendingLogin>({ max: 10_000, ttl: LOGIN_TTL_MS })
  readonly #secureCookies: boolean

  constructor (secureCookies: boolean) {
    this.#secureCookies = secureCookies
  }

  begin (login: Omit<PendingLogin, 'nonce' | 'verifier' | 'browserBinding'>): StartedLogin & { readonly pending: PendingLogin } {
    const state = randomToken()
    const binding = randomToken()
    const pending: PendingLogin = { ...login, nonce: randomToken(), verifier: randomToken(), browserBinding: digest(binding) }
    this.#logins.set(state, pending)
    return { state, pending, cookie: this.#cookie(state, binding, LOGIN_TTL_MS / 1000) }
  }

  /** The pending login for `state`, removed: a callback is answered once. */
  take (state: string): PendingLogin | undefined {
    const login = this.#logins.get(state)
    if (login !== undefined) this.#logins.delete(state)
    return login
  }

  /** Whether the request's cookies carry the binding of the login started under `state`. */
  boundToBrowser (state: string, login: PendingLogin, cookieHeader: string | undefined): boolean {
    const value = readCookie(cookieHeader, cookieName(state))
    if (value === undefined) return false
    return timingSafeEqual(Buffer.from(digest(value)), Buffer.from(login.browserBinding))
  }

  /** The `Set-Cookie` that removes the binding once the callback is answered. */
  clearCookie (state: string): string {
    return this.#cookie(state, '', 0)
  }

  #cookie (state: string, value: string, maxAgeSeconds: number): string {
    return `${cookieName(state)}=${value}; Path=${CALLBACK_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${this.#secureCookies ? '; Secure' : ''}`
  }
}

/** One cookie per login, so two logins in one browser do not overwrite each other. */
function cookieName (state: string): string {
  return `portcullis_login_${digest(state).slice(0, 16)}`
}

function readCookie (header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
