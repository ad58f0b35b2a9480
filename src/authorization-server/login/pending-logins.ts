import { timingSafeEqual } from 'node:crypto'
import type { Store } from '../../store/store.ts'
import { failingClosed, parseStored } from '../shared-state.ts'
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
 * Logins between `/oauth/authorize` and `/oauth/callback`, in the shared store under the SHA-256
 * of our `state` (the IdP may send the browser back to any replica), each usable once — taken
 * with GETDEL, so only one replica answers a callback — and for ten minutes. A cookie scoped to
 * the callback path binds each to the browser that started it: a callback replayed or forged
 * from elsewhere lacks it (the store keeps only the cookie's digest).
 */
export class PendingLogins {
  readonly #store: Store
  readonly #secureCookies: boolean

  constructor (store: Store, secureCookies: boolean) {
    this.#store = failingClosed(store)
    this.#secureCookies = secureCookies
  }

  async begin (login: Omit<PendingLogin, 'nonce' | 'verifier' | 'browserBinding'>): Promise<StartedLogin & { readonly pending: PendingLogin }> {
    const state = randomToken()
    const binding = randomToken()
    const pending: PendingLogin = { ...login, nonce: randomToken(), verifier: randomToken(), browserBinding: digest(binding) }
    if (!await this.#store.setIfAbsent(loginKey(state), JSON.stringify(pending), LOGIN_TTL_MS)) throw new Error('a fresh login state collided')
    return { state, pending, cookie: this.#cookie(state, binding, LOGIN_TTL_MS / 1000) }
  }

  /** The pending login for `state`, removed in the same step: a callback is answered once, by one replica. */
  async take (state: string): Promise<PendingLogin | undefined> {
    const value = await this.#store.take(loginKey(state))
    if (value === undefined) return undefined
    const login = parseStored(value, isPendingLogin)
    // JSON drops an absent client state; give it back its own member.
    return { ...login, clientState: login.clientState }
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

function loginKey (state: string): string {
  return `login:${digest(state)}`
}

function isPendingLogin (value: unknown): value is PendingLogin {
  if (typeof value !== 'object' || value === null) return false
  const login = value as Partial<Record<keyof PendingLogin, unknown>>
  return ['clientId', 'redirectUri', 'codeChallenge', 'resource', 'nonce', 'verifier', 'browserBinding'].every((name) => typeof login[name as keyof PendingLogin] === 'string') &&
    (login.clientState === undefined || typeof login.clientState === 'string') && Array.isArray(login.scopes)
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
